"""Sessions and abuse: fixation, logout, cookie flags over HTTPS, rate limits (memory and Redis).

``tests/auth/test_accounts.py`` already checks that login clears planted session keys,
the session cookie flags, the per-IP and per-account login limits and that a password
change ends other sessions; these tests add what an attacker would actually try.
"""

from __future__ import annotations

import uuid

from memberplatform.extensions import limiter
from tests.conftest import PASSWORD, unavailable

NEW_PASSWORD = "Union-Member-2020"
PROBE = "/auth/password"  # a page only a logged-in user gets (200), others 302


def _login(client, user, **extra):
    return client.post("/auth/login", data={"phone": user.phone, "password": PASSWORD, **extra})


def _client_with(app, cookie_value, name="session"):
    client = app.test_client()
    client.set_cookie(name, cookie_value)
    return client


def test_session_fixation_planted_cookie_stays_anonymous(app, make_user):
    """An attacker plants a session cookie; after the victim logs in, that cookie is worthless."""
    user = make_user()
    victim = app.test_client()
    with victim.session_transaction() as sess:
        sess["locale"] = "zh_CN"  # a pre-login session the attacker knows
    planted = victim.get_cookie("session").value
    assert _login(victim, user).status_code == 303
    issued = victim.get_cookie("session").value
    assert issued != planted
    assert victim.get(PROBE).status_code == 200
    attacker = _client_with(app, planted)
    assert attacker.get(PROBE).status_code == 302


def test_session_cookie_changes_at_every_login(app, make_user):
    user = make_user()
    client = app.test_client()
    _login(client, user)
    first = client.get_cookie("session").value
    client.post("/auth/logout")
    _login(client, user)
    assert client.get_cookie("session").value != first


def test_forged_or_tampered_cookie_is_ignored(app, make_user):
    user = make_user()
    client = app.test_client()
    _login(client, user)
    value = client.get_cookie("session").value
    tampered = value[:-2] + ("AA" if not value.endswith("AA") else "BB")
    assert _client_with(app, tampered).get(PROBE).status_code == 302
    other_app_key = app.test_client()
    with other_app_key.session_transaction() as sess:
        sess["_user_id"] = f"{user.id}:not-the-token"
        sess["_fresh"] = True
    assert other_app_key.get(PROBE).status_code == 302  # right signature, wrong token


def test_logout_clears_the_session_on_this_device(app, make_user):
    user = make_user()
    client = app.test_client()
    _login(client, user)
    client.post("/auth/logout")
    assert client.get(PROBE).status_code == 302
    with client.session_transaction() as sess:
        assert "_user_id" not in sess


def test_logout_invalidates_a_copied_session_cookie(app, make_user):
    user = make_user()
    client = app.test_client()
    _login(client, user)
    stolen = client.get_cookie("session").value
    assert _client_with(app, stolen).get(PROBE).status_code == 200
    client.post("/auth/logout")
    assert _client_with(app, stolen).get(PROBE).status_code == 302


def test_logout_invalidates_a_copied_remember_cookie(app, make_user):
    user = make_user()
    client = app.test_client()
    _login(client, user, remember="y")
    stolen = client.get_cookie("remember_token").value
    assert _client_with(app, stolen, "remember_token").get(PROBE).status_code == 200
    client.post("/auth/logout")
    assert _client_with(app, stolen, "remember_token").get(PROBE).status_code == 302


def test_password_change_ends_copied_cookies_too(app, make_user):
    user = make_user()
    client = app.test_client()
    _login(client, user, remember="y")
    stolen_session = client.get_cookie("session").value
    stolen_remember = client.get_cookie("remember_token").value
    response = client.post(
        "/auth/password",
        data={"current_password": PASSWORD, "password": NEW_PASSWORD, "confirm": NEW_PASSWORD},
    )
    assert response.status_code == 303
    assert _client_with(app, stolen_session).get(PROBE).status_code == 302
    assert _client_with(app, stolen_remember, "remember_token").get(PROBE).status_code == 302
    assert client.get(PROBE).status_code == 200


def test_cookie_flags_under_https(app_factory, make_user):
    app = app_factory(SESSION_COOKIE_SECURE=True, REMEMBER_COOKIE_SECURE=True)
    user = make_user()
    client = app.test_client()
    response = client.post(
        "/auth/login",
        data={"phone": user.phone, "password": PASSWORD, "remember": "y"},
        base_url="https://localhost",
    )
    cookies = {c.split("=", 1)[0]: c for c in response.headers.getlist("Set-Cookie")}
    for name in ("session", "remember_token"):
        flags = cookies[name]
        assert "Secure" in flags and "HttpOnly" in flags and "SameSite=Lax" in flags, flags
    assert "Expires" in cookies["session"]  # permanent session, SESSION_HOURS lifetime
    page = client.get(PROBE, base_url="https://localhost")
    assert page.headers["Strict-Transport-Security"].startswith("max-age=31536000")


def test_secure_setting_from_environment_covers_both_cookies(monkeypatch, tmp_path):
    from memberplatform import settings

    monkeypatch.setenv("SESSION_COOKIE_SECURE", "true")
    config = settings.from_environment(str(tmp_path))
    assert config["SESSION_COOKIE_SECURE"] and config["REMEMBER_COOKIE_SECURE"]
    assert config["SESSION_COOKIE_HTTPONLY"] and config["REMEMBER_COOKIE_HTTPONLY"]
    assert config["PREFERRED_URL_SCHEME"] == "https"


# --- rate limits --------------------------------------------------------------------------


def test_activation_rate_limit(app_factory):
    app = app_factory(RATELIMIT_ENABLED=True, LOGIN_LIMIT_IP="3/minute")
    client = app.test_client()
    codes = [
        client.post(
            "/auth/activate",
            data={
                "member_no": f"ZGC9{i:04d}",
                "phone": "13812345678",
                "password": NEW_PASSWORD,
                "confirm": NEW_PASSWORD,
            },
        ).status_code
        for i in range(4)
    ]
    assert codes == [422, 422, 422, 429]


def test_rate_limited_page_is_localized_and_changes_nothing(app_factory, make_user):
    app = app_factory(RATELIMIT_ENABLED=True, LOGIN_LIMIT_IP="1/minute")
    user = make_user()
    client = app.test_client()
    client.post("/auth/login", data={"phone": user.phone, "password": "wrong-wrong-1"})
    refused = _login(client, user)  # right password, but over the limit
    assert refused.status_code == 429
    assert "尝试次数过多" in refused.get_data(as_text=True)
    assert client.get(PROBE).status_code == 302


def test_login_get_is_not_limited(app_factory):
    app = app_factory(RATELIMIT_ENABLED=True, LOGIN_LIMIT_IP="1/minute")
    client = app.test_client()
    assert {client.get("/auth/login").status_code for _ in range(5)} == {200}


def test_every_rate_limit_is_on_a_post(app):
    """The limiter skips reads (a request filter saves its per-request work on every
    page): that is only right while no limit applies to a GET."""
    manager = limiter.limit_manager
    limits = [limit for group in manager._decorated_limits.values() for limit in group]
    limits += [limit for group in manager._blueprint_limits.values() for limit in group]
    assert limits and all(limit.methods == ("post",) for limit in limits)
    assert not manager.default_limits and not manager.application_limits


def test_reads_skip_the_limiters_hooks_and_writes_still_pass_them(app_factory):
    from memberplatform.security import limits

    app = app_factory(RATELIMIT_ENABLED=True)
    wrapped = [
        hook.__wrapped__
        for hooks in (app.before_request_funcs[None], app.after_request_funcs[None])
        for hook in hooks
        if hasattr(hook, "__wrapped__")
    ]
    assert any(limits._is_limiters_headers(hook) for hook in wrapped)
    # no limit but the views' own decorators: the limiter's before_request check is gone
    assert not any(limits._is_limiters_check(hook) for hook in app.before_request_funcs[None])
    checked = []  # the limiter calls its request filters when it looks at a request
    filters = list(limiter._request_filters)
    limiter._request_filters[:] = [lambda: checked.append(1) or False]
    try:
        client = app.test_client()
        client.get("/")
        assert checked == []  # a read never reached the limiter
        client.post("/auth/login", data={"phone": "13900000000", "password": "x"})
        assert checked  # a write did
    finally:
        limiter._request_filters[:] = filters


def test_write_endpoints_are_limited_per_user(app_factory, make_user):
    """With the helper of memberplatform/security/limits.py wired, writes are limited per user."""
    from memberplatform.security.limits import apply_write_limits

    app = app_factory(RATELIMIT_ENABLED=True, WRITE_LIMIT="3/minute")
    assert apply_write_limits(app) == []  # create_app already wrapped them: never twice
    assert app.view_functions["points.check_in"]._write_limited
    first, second = make_user(), make_user()
    a, b = app.test_client(), app.test_client()
    _login(a, first)
    _login(b, second)
    codes = [a.post("/points/check-in").status_code for _ in range(4)]
    assert codes == [303, 303, 303, 429]
    assert b.post("/points/check-in").status_code == 303  # per user, not per IP


def test_write_limits_are_wired_in_the_app(app_factory, make_user):
    app = app_factory(RATELIMIT_ENABLED=True, WRITE_LIMIT="2/minute")
    client = app.test_client()
    _login(client, make_user())
    codes = [client.post("/points/check-in").status_code for _ in range(3)]
    assert codes[-1] == 429


def _redis_or_skip(url: str):
    import redis

    try:
        redis.Redis.from_url(url).ping()
    except redis.exceptions.ConnectionError:
        unavailable(f"Redis is not reachable at {url}")


def test_login_limits_are_shared_by_workers_through_redis(app_factory, make_user):
    """Two app instances (two workers) sharing one Redis count the same attempts."""
    import redis

    url = "redis://127.0.0.1:6379/15"  # a database only tests use
    _redis_or_skip(url)
    store = redis.Redis.from_url(url)
    store.flushdb()
    config = dict(
        RATELIMIT_ENABLED=True,
        RATELIMIT_STORAGE_URI=url,
        RATELIMIT_KEY_PREFIX=f"mp-test-{uuid.uuid4().hex}",
        LOGIN_LIMIT_IP="4/minute",
        LOGIN_LIMIT_ACCOUNT="100/hour",
    )
    worker_a, worker_b = app_factory(**config), app_factory(**config)
    clients = [worker_a.test_client(), worker_b.test_client()]
    codes = [
        clients[i % 2]
        .post("/auth/login", data={"phone": "13900001111", "password": "wrong-wrong-1"})
        .status_code
        for i in range(5)
    ]
    assert codes == [422, 422, 422, 422, 429]
    assert store.keys("*")  # the counts live in Redis
    # a third worker, started later with a fresh storage connection, sees the same count
    assert (
        app_factory(**config)
        .test_client()
        .post("/auth/login", data={"phone": "13900001111", "password": "x"})
        .status_code
        == 429
    )


def test_every_limited_write_endpoint_exists(app):
    """The list of bot-prone writes names real endpoints (a renamed view must not
    silently lose its limit)."""
    from memberplatform.security.limits import WRITE_ENDPOINTS

    missing = [e for e in WRITE_ENDPOINTS if e not in app.view_functions]
    assert missing == []
    assert all(app.view_functions[e]._write_limited for e in WRITE_ENDPOINTS)
