"""Activation, login/logout, passwords, sessions, rate limits, registration."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from memberplatform.auth.models import User
from memberplatform.extensions import db
from tests.conftest import PASSWORD

NEW_PASSWORD = "Union-Member-2020"
#: a signed CSRF token: value.timestamp.signature
CSRF_TOKEN = re.compile(r"[\w-]+\.[\w-]{6}\.[\w-]{27}")


@pytest.fixture
def roster_member(make_user):
    """A member imported from the roster: no password yet."""
    return make_user(password=None, member_no="ZGC10001", phone="13812345678", name="张三明")


def test_activation_with_member_number_and_phone(client, roster_member):
    response = client.post(
        "/auth/activate",
        data={
            "member_no": "ZGC10001",
            "phone": "138 1234 5678",
            "password": NEW_PASSWORD,
            "confirm": NEW_PASSWORD,
        },
    )
    assert response.status_code == 303 and response.headers["Location"] == "/me"
    assert "张三明" in client.get("/me").get_data(as_text=True)


@pytest.mark.parametrize(
    ("member_no", "phone"), [("ZGC10001", "13800000000"), ("ZGC99999", "13812345678")]
)
def test_activation_refused_for_wrong_details(client, roster_member, member_no, phone):
    response = client.post(
        "/auth/activate",
        data={
            "member_no": member_no,
            "phone": phone,
            "password": NEW_PASSWORD,
            "confirm": NEW_PASSWORD,
        },
    )
    assert response.status_code == 422
    assert "没有与该会员号和手机号匹配的会员" in response.get_data(as_text=True)
    assert client.get("/me").status_code == 302


def test_activation_twice_is_refused(client, app, roster_member):
    data = {
        "member_no": "ZGC10001",
        "phone": "13812345678",
        "password": NEW_PASSWORD,
        "confirm": NEW_PASSWORD,
    }
    assert client.post("/auth/activate", data=data).status_code == 303
    other = app.test_client()
    response = other.post(
        "/auth/activate", data={**data, "password": "Another-Pass-99", "confirm": "Another-Pass-99"}
    )
    assert response.status_code == 422
    assert "该账号已激活" in response.get_data(as_text=True)


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("short1", "至少 8 个字符"),
        ("x" * 129 + "yz", "最多 128 个字符"),
        ("password123", "过于常见"),
        ("aaaaaaaa", "过于常见"),
        ("x13812345678y", "过于常见"),
    ],
)
def test_password_rules_on_activation(client, roster_member, password, message):
    response = client.post(
        "/auth/activate",
        data={
            "member_no": "ZGC10001",
            "phone": "13812345678",
            "password": password,
            "confirm": password,
        },
    )
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)


def test_passwords_must_match(client, roster_member):
    response = client.post(
        "/auth/activate",
        data={
            "member_no": "ZGC10001",
            "phone": "13812345678",
            "password": NEW_PASSWORD,
            "confirm": NEW_PASSWORD + "x",
        },
    )
    assert response.status_code == 422
    assert "两次输入的密码不一致" in response.get_data(as_text=True)


def test_login_and_logout(client, make_user, auth):
    user = make_user()
    response = auth.login(user)
    assert response.status_code == 303
    assert client.get("/me").status_code == 200
    assert client.get("/auth/logout").status_code == 405  # logout is POST only
    assert auth.logout().status_code == 303
    assert client.get("/me").status_code == 302


def test_login_redirects_to_safe_next_only(client, make_user):
    user = make_user()
    ok = client.post(
        "/auth/login?next=/auth/password", data={"phone": user.phone, "password": PASSWORD}
    )
    assert ok.headers["Location"] == "/auth/password"
    client.post("/auth/logout")
    evil = client.post(
        "/auth/login?next=https://evil.example/", data={"phone": user.phone, "password": PASSWORD}
    )
    assert evil.headers["Location"] == "/me"


def test_wrong_password_and_unknown_phone_look_the_same(client, make_user, auth):
    user = make_user()
    wrong = auth.login(user, password="Wrong-Password-1")
    unknown = auth.login("13999999999", password="Wrong-Password-1")
    assert wrong.status_code == unknown.status_code == 422

    def strip(response):  # the phone typed, and the CSRF tokens: they carry the second signed
        text = response.get_data(as_text=True).replace(user.phone, "").replace("13999999999", "")
        return CSRF_TOKEN.sub("TOKEN", text)

    assert strip(wrong) == strip(unknown)
    assert "手机号或密码错误" in wrong.get_data(as_text=True)


def test_roster_member_without_password_cannot_log_in(client, roster_member, auth):
    assert auth.login(roster_member, password="anything-at-all").status_code == 422


@pytest.mark.parametrize("status", ["disabled", "pending"])
def test_disabled_and_pending_users_cannot_log_in(client, app, make_user, auth, status):
    user = make_user()
    with app.app_context():
        db.session.execute(sa.update(User).where(User.id == user.id).values(status=status))
        db.session.commit()
    response = auth.login(user)
    assert response.status_code == 422
    assert client.get("/me").status_code == 302


def test_disabling_ends_an_open_session(client, app, make_user, auth):
    user = make_user()
    auth.login(user)
    with app.app_context():
        db.session.execute(sa.update(User).where(User.id == user.id).values(status="disabled"))
        db.session.commit()
    assert client.get("/me").status_code == 302


def test_password_change_ends_other_sessions(app, make_user):
    user = make_user()
    phone_a, phone_b = app.test_client(), app.test_client()
    for c in (phone_a, phone_b):
        c.post("/auth/login", data={"phone": user.phone, "password": PASSWORD})
        assert c.get("/me").status_code == 200
    response = phone_a.post(
        "/auth/password",
        data={"current_password": PASSWORD, "password": NEW_PASSWORD, "confirm": NEW_PASSWORD},
    )
    assert response.status_code == 303
    assert phone_a.get("/me").status_code == 200  # this session continues
    assert phone_b.get("/me").status_code == 302  # the other one has ended
    fresh = app.test_client()
    ok = fresh.post("/auth/login", data={"phone": user.phone, "password": NEW_PASSWORD})
    assert ok.status_code == 303


def test_password_change_needs_current_password(client, make_user, auth):
    auth.login(make_user())
    response = client.post(
        "/auth/password",
        data={
            "current_password": "not-it-at-all",
            "password": NEW_PASSWORD,
            "confirm": NEW_PASSWORD,
        },
    )
    assert response.status_code == 422
    assert "当前密码不正确" in response.get_data(as_text=True)


def test_session_cookie_flags(app_factory, make_user):
    app = app_factory(SESSION_COOKIE_SECURE=True)
    user = make_user()
    client = app.test_client()
    response = client.post(
        "/auth/login",
        data={"phone": user.phone, "password": PASSWORD},
        base_url="https://localhost",
    )
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" in cookie
    assert app.permanent_session_lifetime.total_seconds() == 12 * 3600


def test_login_clears_the_previous_session(client, make_user):
    user = make_user()
    with client.session_transaction() as sess:
        sess["planted"] = "by-attacker"
    client.post("/auth/login", data={"phone": user.phone, "password": PASSWORD})
    with client.session_transaction() as sess:
        assert "planted" not in sess


def test_login_rate_limit_per_ip(app_factory, make_user):
    app = app_factory(
        RATELIMIT_ENABLED=True, LOGIN_LIMIT_IP="3/minute", LOGIN_LIMIT_ACCOUNT="100/hour"
    )
    client = app.test_client()
    codes = [
        client.post(
            "/auth/login", data={"phone": f"1390000{i:04d}", "password": "wrong-pass-1"}
        ).status_code
        for i in range(4)
    ]
    assert codes == [422, 422, 422, 429]
    page = client.post("/auth/login", data={"phone": "13900000000", "password": "x" * 9})
    assert "尝试次数过多" in page.get_data(as_text=True)


def test_login_rate_limit_per_account(app_factory, make_user):
    app = app_factory(
        RATELIMIT_ENABLED=True, LOGIN_LIMIT_IP="100/minute", LOGIN_LIMIT_ACCOUNT="2/hour"
    )
    user = make_user()
    codes = []
    for i in range(3):  # a different client (IP unchanged, but per-account limit applies)
        c = app.test_client()
        codes.append(
            c.post(
                "/auth/login",
                data={"phone": user.phone, "password": "nope-nope-1"},
                environ_base={"REMOTE_ADDR": f"10.0.0.{i + 1}"},
            ).status_code
        )
    assert codes == [422, 422, 429]


def test_registration_is_off_by_default(client):
    assert client.get("/auth/register").status_code == 404


def test_registration_creates_pending_account(app_factory):
    app = app_factory(SELF_REGISTRATION=True)
    client = app.test_client()
    response = client.post(
        "/auth/register",
        data={
            "name": "李四",
            "phone": "13911112222",
            "member_no": "",
            "password": NEW_PASSWORD,
            "confirm": NEW_PASSWORD,
        },
    )
    assert response.status_code == 303
    with app.app_context():
        user = db.session.scalar(sa.select(User).where(User.phone == "13911112222"))
        assert user.status == "pending"
    assert (
        client.post(
            "/auth/login", data={"phone": "13911112222", "password": NEW_PASSWORD}
        ).status_code
        == 422
    )


def test_registration_rejects_duplicate_phone(app_factory, make_user):
    app = app_factory(SELF_REGISTRATION=True)
    user = make_user()
    response = app.test_client().post(
        "/auth/register",
        data={
            "name": "王五",
            "phone": user.phone,
            "password": NEW_PASSWORD,
            "confirm": NEW_PASSWORD,
        },
    )
    assert response.status_code == 422
    assert "该手机号已注册" in response.get_data(as_text=True)
