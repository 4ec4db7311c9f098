"""Points pages over HTTP: history, load more, check-in, staff grants, bulk CSV, CLI."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from memberplatform.audit.models import AuditEntry
from memberplatform.extensions import db
from memberplatform.notifications.models import Notification
from memberplatform.points import services
from memberplatform.points.models import LedgerEntry
from tests.concurrency import integrity_problems, run_together
from tests.querycount import count_queries


@pytest.fixture
def member(make_user):
    return make_user(member_no="ZGC40001", name="王小明")


@pytest.fixture
def staff(make_user):
    return make_user(roles=("staff",))


def give(app, user, count, amount=1, prefix="g"):
    with app.app_context():
        for i in range(count):
            services.earn(user, amount, reason="grant", idempotency_key=f"{prefix}{user.id}:{i}")
        db.session.commit()


def test_points_page_shows_balance_history_and_reasons(app, client, auth, member):
    give(app, member, 3, amount=10)
    auth.login(member)
    page = client.get("/points")
    body = page.get_data(as_text=True)
    assert page.status_code == 200 and "我的积分" in body
    assert 'data-testid="points-balance">30<' in body
    assert body.count('class="ledger-row"') == 3 and "工会发放" in body
    assert "HX-Request" in page.headers["Vary"]


def test_history_load_more_and_fragment(app, client, auth, member, hx):
    give(app, member, 25)
    auth.login(member)
    first = client.get("/points").get_data(as_text=True)
    assert first.count('class="ledger-row"') == 20
    before = re.search(r"/points\?before=(\d+)", first).group(1)
    more = client.get(f"/points?before={before}", headers=hx)
    text = more.get_data(as_text=True)
    assert "<html" not in text and "<table" not in text
    assert text.count('class="ledger-row"') == 5 and 'id="load-more"' not in text
    plain = client.get(f"/points?before={before}").get_data(as_text=True)
    assert "<html" in plain and plain.count('class="ledger-row"') == 5


def test_history_filters(app, client, auth, member, hx):
    give(app, member, 2, amount=10)
    with app.app_context():
        services.spend(member, 5, reason="x", idempotency_key="s1")
        db.session.commit()
    auth.login(member)
    spent = client.get("/points?kind=spend", headers=hx).get_data(as_text=True)
    assert spent.count('class="ledger-row"') == 1 and "-5" in spent
    assert spent.lstrip().startswith('<div id="history">')
    future = client.get("/points?since=2099-01-01").get_data(as_text=True)
    assert "暂无积分记录" in future
    bad = client.get("/points?since=not-a-date&kind=nonsense")
    assert bad.status_code == 200  # bad filters are ignored, never a 500


def test_member_sees_only_their_own_history(app, client, auth, member, make_user):
    other = make_user(name="李四")
    give(app, other, 1, amount=77)
    auth.login(member)
    body = client.get("/points").get_data(as_text=True)
    # an amount shows as "+77" ("77" alone also turned up inside a random CSRF token,
    # which is URL-safe base64: it never holds a "+")
    assert "+77" not in body and 'class="ledger-row"' not in body


def test_points_needs_login(client, hx):
    assert client.get("/points").status_code == 302
    response = client.get("/points", headers=hx)
    assert response.status_code == 401 and "HX-Redirect" in response.headers


def test_check_in_in_place_with_trigger(app, client, auth, member, hx):
    auth.login(member)
    response = client.post("/points/check-in", headers=hx)
    assert response.status_code == 200
    assert response.headers["HX-Trigger"] == '{"points-changed": null}'
    text = response.get_data(as_text=True)
    assert text.lstrip().startswith('<section class="card" id="points-panel"')
    assert "签到成功：+5 积分" in text
    again = client.post("/points/check-in", headers=hx)
    assert "HX-Trigger" not in again.headers and "今日已签到" in again.get_data(as_text=True)
    with app.app_context():
        assert services.balance_of(member) == 5
    badge = client.get("/points/badge", headers=hx).get_data(as_text=True)
    assert '<span class="count">5</span>' in badge


def test_check_in_without_js_redirects_with_message(client, auth, member):
    auth.login(member)
    response = client.post("/points/check-in")
    assert response.status_code == 303 and response.headers["Location"] == "/me"
    assert "签到成功" in client.get("/me").get_data(as_text=True)


def test_check_in_race_adds_points_once(app, member):
    results = run_together(app, 10, lambda i: services.check_in(member.id))
    assert all(not isinstance(r, Exception) for r in results), results
    assert sum(r.new for r in results) == 1
    with app.app_context():
        assert services.balance_of(member) == 5
    assert integrity_problems(app) == []


def test_streak_bonus_on_day_seven(ctx, member):
    now = datetime.now(UTC)
    for back in range(6, -1, -1):
        result = services.check_in(member, now=now - timedelta(days=back))
    ctx.commit()
    assert result.check_in.streak == 7 and result.check_in.points == 25
    assert services.balance_of(member) == 6 * 5 + 25


def test_only_staff_grant(client, auth, member):
    auth.login(member)
    assert client.get("/points/grant").status_code == 403
    assert client.post("/points/grant", data={"member": "x"}).status_code == 403
    assert client.get("/points/grants/bulk").status_code == 403


def grant_form(client, **data):
    page = client.get("/points/grant").get_data(as_text=True)
    key = re.search(r'name="idempotency_key" type="hidden" value="([0-9a-f]+)"', page).group(1)
    return client.post("/points/grant", data={"idempotency_key": key, "mode": "grant", **data})


def test_staff_grant_notifies_and_audits(app, client, auth, staff, member):
    auth.login(staff)
    response = grant_form(client, member="ZGC40001", amount="50", note="志愿服务")
    assert response.status_code == 303
    assert "已为 王小明 记录 50 积分" in client.get("/points/grant").get_data(as_text=True)
    with app.app_context():
        assert services.balance_of(member) == 50
        note = db.session.scalar(sa.select(Notification).where(Notification.user_id == member.id))
        assert note.kind == "points.granted"
        audit = db.session.scalar(sa.select(AuditEntry))
        assert audit.action == "points.grant" and audit.actor_id == staff.id


def test_double_submitted_grant_counts_once(app, client, auth, staff, member):
    auth.login(staff)
    page = client.get("/points/grant").get_data(as_text=True)
    key = re.search(r'name="idempotency_key" type="hidden" value="([0-9a-f]+)"', page).group(1)
    data = {
        "idempotency_key": key,
        "mode": "grant",
        "member": member.phone,
        "amount": "20",
        "note": "x",
    }
    client.post("/points/grant", data=data)
    client.post("/points/grant", data=data)
    with app.app_context():
        assert services.balance_of(member) == 20


@pytest.mark.parametrize(
    ("amount", "mode", "message"),
    [
        ("0", "grant", "发放积分至少为 1"),
        ("-5", "grant", "发放积分至少为 1"),
        ("1.5", "grant", ""),
        ("abc", "grant", ""),
        ("99999999999", "grant", "请输入 -1000000 到 1000000 之间的整数"),
        ("-10", "adjust", "您有 0 积分，此操作需要 10 积分"),
    ],
)
def test_grant_bad_amounts_change_nothing(app, client, auth, staff, member, amount, mode, message):
    auth.login(staff)
    response = grant_form(client, member=member.phone, amount=amount, note="x", mode=mode)
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(LedgerEntry.id))) == 0


def test_grant_unknown_member_and_missing_reason(client, auth, staff):
    auth.login(staff)
    unknown = grant_form(client, member="ZGC99999", amount="5", note="x")
    assert unknown.status_code == 422 and "没有使用该会员号或手机号的会员" in unknown.get_data(
        as_text=True
    )
    no_note = grant_form(client, member="ZGC99999", amount="5", note="")
    assert no_note.status_code == 422


def test_adjust_correction(app, client, auth, staff, member):
    give(app, member, 1, amount=30)
    auth.login(staff)
    response = grant_form(client, member=member.phone, amount="-12", note="重复发放", mode="adjust")
    assert response.status_code == 303
    with app.app_context():
        assert services.balance_of(member) == 18


def upload(client, content: bytes, filename="grants.csv"):
    from io import BytesIO

    return client.post(
        "/points/grants/bulk",
        data={"file": (BytesIO(content), filename)},
        content_type="multipart/form-data",
    )


CSV = "会员号,积分,备注\nZGC40001,30,春节慰问\nZGC99999,10,不存在\nZGC40001,abc,坏数字\n"


def test_bulk_grant_preview_confirm_and_reupload(app, client, auth, staff, member):
    auth.login(staff)
    preview = upload(client, CSV.encode("gbk"))
    body = preview.get_data(as_text=True)
    assert preview.status_code == 200
    assert "将发放" in body and "没有使用该会员号或手机号的有效会员" in body
    assert "积分必须是 1 到 1000000 之间的整数" in body
    with app.app_context():
        assert services.balance_of(member) == 0  # preview writes nothing
    digest = re.search(r'name="digest" type="hidden" value="([0-9a-f]{64})"', body).group(1)
    confirm = client.post("/points/grants/bulk/confirm", data={"digest": digest})
    assert confirm.status_code == 303
    assert "已向 1 名会员发放积分；跳过 2 行" in client.get("/points/grants/bulk").get_data(
        as_text=True
    )
    with app.app_context():
        assert services.balance_of(member) == 30
    again = upload(client, CSV.encode("gbk")).get_data(as_text=True)
    assert "已发放过" in again and "此文件中没有可发放的内容" in again
    client.post("/points/grants/bulk/confirm", data={"digest": digest})
    with app.app_context():
        assert services.balance_of(member) == 30
    assert integrity_problems(app) == []


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"name,amount\nx,1\n", "第一行必须是列名"),
        (b"\xff\xfe\x00\x01\x80\x81\x82", "文件不是 UTF-8 或 GBK 文本"),
        (b"", "文件是空的"),
        ("会员号,积分,备注\n".encode() + b"ZGC40001,1,x\n" * 20001, "一个文件最多 20000 行"),
    ],
)
def test_bulk_grant_bad_files(app, client, auth, staff, member, content, message):
    auth.login(staff)
    response = upload(client, content)
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(LedgerEntry.id))) == 0


def test_bulk_confirm_with_forged_digest(client, auth, staff):
    auth.login(staff)
    response = client.post("/points/grants/bulk/confirm", data={"digest": "0" * 64})
    assert response.status_code == 303
    assert "上传已失效" in client.get("/points/grants/bulk").get_data(as_text=True)


def test_points_page_query_count_does_not_grow(app, client, auth, member, make_user):
    auth.login(member)
    give(app, member, 10)
    with app.app_context():
        engine = db.engine
    with count_queries(engine) as small:
        assert client.get("/points").status_code == 200
    give(app, member, 990, prefix="more")
    with count_queries(engine) as large:
        assert client.get("/points").status_code == 200
    assert len(small) == len(large) <= 8, large


def test_points_expire_command_is_idempotent(app, runner, member):
    with app.app_context():
        services.earn(
            member,
            40,
            reason="grant",
            idempotency_key="old",
            expires_at=datetime.now(UTC) - timedelta(days=1),
        )
        services.earn(
            member,
            10,
            reason="grant",
            idempotency_key="soon",
            expires_at=datetime.now(UTC) + timedelta(days=10),
        )
        db.session.commit()
    first = runner.invoke(args=["points-expire"])
    assert "expired 40 points of 1 members; warned 1" in first.output
    second = runner.invoke(args=["points-expire"])
    assert "expired 0 points of 0 members; warned 0" in second.output
    with app.app_context():
        assert services.balance_of(member) == 10
    assert runner.invoke(args=["check-integrity"]).exit_code == 0


def test_bulk_upload_belongs_to_its_uploader(app, client, auth, staff, member, make_user):
    auth.login(staff)
    body = upload(client, CSV.encode()).get_data(as_text=True)
    digest = re.search(r'name="digest" type="hidden" value="([0-9a-f]{64})"', body).group(1)
    other = app.test_client()
    other.post(
        "/auth/login",
        data={"phone": make_user(roles=("staff",)).phone, "password": "Correct-Horse-42"},
    )
    other.post("/points/grants/bulk/confirm", data={"digest": digest})
    with app.app_context():
        assert services.balance_of(member) == 0
