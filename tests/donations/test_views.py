"""Donation pages over HTTP: normal and htmx requests, the confirm step, replays,
the cacheable progress fragment, certificates, staff pages, uploads and CSV."""

from __future__ import annotations

import io
import re

import pytest
import sqlalchemy as sa

from memberplatform.donations import services
from memberplatform.donations.models import Campaign, Donation, Fulfilment
from memberplatform.extensions import db
from memberplatform.points import services as points
from tests.concurrency import integrity_problems
from tests.conftest import PASSWORD
from tests.donations.conftest import key
from tests.querycount import count_queries, read_before_writing, record_transactions

HX = {"HX-Request": "true"}
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def _text(response) -> str:
    return response.get_data(as_text=True)


def _form_key(html: str) -> str:
    return re.search(r'name="idempotency_key"[^>]*value="([0-9a-f]+)"', html).group(1)


def test_index_lists_open_campaigns_first_and_hides_drafts(client, make_campaign, staff):
    make_campaign(title="进行中的积分捐")
    make_campaign(status="draft", title="草稿积分捐")
    text = _text(client.get("/donations"))
    assert "进行中的积分捐" in text and "草稿积分捐" not in text
    assert "进行中" in text  # status label, Chinese by default


def test_campaign_page_and_draft_is_404_for_members(client, auth, member, make_campaign):
    cid = make_campaign()
    draft = make_campaign(status="draft")
    response = client.get(f"/donations/{cid}")
    assert response.status_code == 200 and "登录后捐积分" in _text(response)
    assert client.get(f"/donations/{draft}").status_code == 404
    assert client.get("/donations/999").status_code == 404
    auth.login(member)
    text = _text(client.get(f"/donations/{cid}"))
    assert "1,000" in text and 'name="idempotency_key"' in text


def test_confirm_then_donate_without_js(client, auth, member, make_campaign, app):
    cid = make_campaign()
    auth.login(member)
    form_key = _form_key(_text(client.get(f"/donations/{cid}")))
    response = client.post(
        f"/donations/{cid}/confirm", data={"units": "12", "idempotency_key": form_key}
    )
    text = _text(response)
    assert response.status_code == 200 and "确认捐赠" in text and "<dialog" not in text
    assert "120" in text and "880" in text  # cost and balance after
    response = client.post(
        f"/donations/{cid}/donate",
        data={"units": "12", "idempotency_key": form_key, "show_on_wall": "y"},
    )
    assert response.status_code == 303
    certificate = response.headers["Location"]
    assert certificate.startswith("/donations/certificates/JZ")
    text = _text(client.get(certificate))
    assert "张三明" in text and "捐赠证书" in text and "/donations/verify/" in text
    # the browser's back button re-sends the form: nothing is charged again
    response = client.post(
        f"/donations/{cid}/donate",
        data={"units": "12", "idempotency_key": form_key, "show_on_wall": "y"},
    )
    assert response.status_code == 303 and response.headers["Location"] == certificate
    assert "这笔捐赠已记录" in _text(client.get(certificate))
    with app.app_context():
        assert points.balance_of(member) == 880
        assert db.session.get(Campaign, cid).pledged_units == 12


def test_confirm_and_donate_over_htmx(client, auth, member, make_campaign, app):
    cid = make_campaign()
    auth.login(member)
    form_key = _form_key(_text(client.get(f"/donations/{cid}")))
    response = client.post(
        f"/donations/{cid}/confirm", data={"units": "3", "idempotency_key": form_key}, headers=HX
    )
    text = _text(response)
    assert response.status_code == 200 and "<dialog data-open" in text
    assert "<html" not in text and "970" in text
    response = client.post(
        f"/donations/{cid}/donate", data={"units": "3", "idempotency_key": form_key}, headers=HX
    )
    text = _text(response)
    assert response.status_code == 200 and "<html" not in text
    assert "points-changed" in response.headers["HX-Trigger"]
    assert 'hx-swap-oob="true"' in text  # the progress bar is refreshed in place
    assert 'value="3"' in text  # <progress value>
    assert _form_key(text) != form_key  # a fresh form for the next donation
    with app.app_context():
        assert db.session.scalar(sa.select(Donation.wall_name)) is None  # unchecked: anonymous


@pytest.mark.parametrize(
    ("units", "message"),
    [
        ("0", "至少捐 1"),
        ("-2", "至少捐 1"),
        ("abc", "请输入整数"),
        ("", "请输入捐赠数量"),
        ("21", "每次最多捐 20 份"),
        ("2000", "每次最多捐 20 份"),
    ],
)
def test_bad_units_are_explained_next_to_the_field(
    client, auth, member, make_campaign, app, units, message
):
    cid = make_campaign(max_units=20)
    auth.login(member)
    for endpoint in ("confirm", "donate"):
        for headers in ({}, HX):
            response = client.post(
                f"/donations/{cid}/{endpoint}",
                data={"units": units, "idempotency_key": key()},
                headers=headers,
            )
            assert response.status_code == 422
            assert message in _text(response), (endpoint, headers, _text(response)[-2000:])
    with app.app_context():
        assert points.balance_of(member) == 1000


def test_not_enough_points_and_remaining_messages(
    client, auth, make_user, give_points, make_campaign
):
    poor = make_user()
    give_points(poor, 25)
    cid = make_campaign(target_units=10)
    auth.login(poor)
    response = client.post(
        f"/donations/{cid}/confirm", data={"units": "3", "idempotency_key": key()}
    )
    assert response.status_code == 422 and "您有 25 积分" in _text(response)
    response = client.post(
        f"/donations/{cid}/donate", data={"units": "3", "idempotency_key": key()}
    )
    assert response.status_code == 422 and "您有 25 积分" in _text(response)
    response = client.post(
        f"/donations/{cid}/confirm", data={"units": "11", "idempotency_key": key()}
    )
    assert response.status_code == 422 and "仅剩 10" in _text(response)


def _donation_events(client, auth, member, campaign_id: int, app) -> list:
    """What the engine sent (``record_transactions``) for one donation over htmx."""
    auth.login(member)
    with app.app_context():
        engine = db.engine
    with record_transactions(engine) as events:
        response = client.post(
            f"/donations/{campaign_id}/donate",
            data={"units": "1", "idempotency_key": key()},
            headers=HX,
        )
    assert response.status_code == 200
    return events


def test_a_donation_reads_its_campaign_before_its_transaction_begins(
    client, auth, member, make_campaign, app
):
    """In the 3,382-donor rush, donations queue on the write lock (SQLite) or the
    campaign row (PostgreSQL): the page's read of the campaign happens before the
    writing transaction begins, so the queue holds only the donation itself."""
    events = _donation_events(client, auth, member, make_campaign(), app)
    assert read_before_writing(events, "donation_campaigns")


def test_a_donations_queue_holds_only_what_the_donation_writes(
    client, auth, member, make_campaign, app
):
    """What runs while a donation holds the queue (the write lock on SQLite, the
    campaign row on PostgreSQL): no upsert of the donor's points account (a debit
    needs one already), the ledger key asked once (under the account's lock), and no
    read of the donor's name (the signed-in member's, read with the session)."""
    events = _donation_events(client, auth, member, make_campaign(), app)
    statements = [str(sql) for kind, sql in events if kind == "sql"]
    assert not any(sql.startswith("SELECT users.name") for sql in statements)
    writing = [str(sql) for kind, sql in events[events.index(("begin", True)) :] if kind == "sql"]
    assert any(sql.startswith("INSERT INTO ledger_entries") for sql in writing)
    assert not any("INSERT INTO points_accounts" in sql for sql in writing)
    asked = [sql for sql in writing if "WHERE ledger_entries.idempotency_key" in sql]
    assert len(asked) == 1


def test_a_members_campaign_page_reads_their_part_with_the_session_check(
    client, auth, member, make_campaign, app
):
    """The campaign page a member opens before donating reads their balance, their
    donations to it and its deliveries with the session check (one round trip on
    PostgreSQL), each once; a visitor's page reads the deliveries itself."""
    from tests.querycount import round_trips

    cid = make_campaign()
    auth.login(member)
    assert client.get(f"/donations/{cid}").status_code == 200
    with app.app_context():
        engine = db.engine
    with round_trips(engine) as sent:
        page = client.get(f"/donations/{cid}")
    assert page.status_code == 200
    statements = [statement for group in sent for statement in group]
    mine = (
        "SELECT points_accounts.balance",
        "WHERE donations.user_id",
        "FROM donation_fulfilments",
    )

    def reads(part: str, statement: str) -> bool:  # the user's statement has its own balance
        return statement.startswith(part) if part.startswith("SELECT") else part in statement

    for part in mine:
        assert sum(reads(part, statement) for statement in statements) == 1, part
    if engine.dialect.name == "postgresql":
        first = sent[0]
        assert "FROM users" in first[0] and all(
            any(reads(part, statement) for statement in first) for part in mine
        )
    auth.logout()
    with round_trips(engine) as visitor:
        assert client.get(f"/donations/{cid}").status_code == 200
    shown = [statement for group in visitor for statement in group]
    assert any("FROM donation_fulfilments" in statement for statement in shown)
    assert not any(reads(mine[0], statement) for statement in shown)


def test_closed_campaign_refuses(client, auth, member, staff, make_campaign, app):
    cid = make_campaign()
    with app.app_context():
        services.change_status(cid, "close", staff)
        db.session.commit()
    auth.login(member)
    response = client.post(
        f"/donations/{cid}/donate", data={"units": "1", "idempotency_key": key()}
    )
    assert response.status_code == 422 and "已截止" in _text(response)


def test_quote_fragment(client, auth, member, make_campaign):
    cid = make_campaign()
    auth.login(member)
    response = client.get(f"/donations/{cid}/quote?units=4", headers=HX)
    assert response.status_code == 200 and "40" in _text(response) and "960" in _text(response)
    assert "no-store" in response.headers["Cache-Control"]
    assert client.get(f"/donations/{cid}/quote?units=4").status_code == 302


def test_progress_fragment_is_small_and_cacheable(client, app, member, make_campaign):
    cid = make_campaign()
    with app.app_context():
        services.donate(member, cid, 6, idempotency_key=key())
        db.session.commit()
    response = client.get(f"/donations/{cid}/progress", headers=HX)
    text = _text(response)
    assert response.status_code == 200 and "<html" not in text
    assert response.headers["Cache-Control"] == "public, max-age=5"
    assert "张*明" in text and "张三明" not in text and 'value="6"' in text
    assert 'hx-trigger="every 5s"' in text
    assert client.get(f"/donations/{cid}/progress").status_code == 200  # a page without htmx
    assert client.get("/donations/999/progress", headers=HX).status_code == 404


def test_progress_fragment_is_shared_for_a_moment_per_language(client, app, make_campaign, member):
    """Production keeps the rendered progress for PROGRESS_CACHE_SECONDS per campaign and
    language: a poll within that time sends no SQL; another language renders its own."""
    app.config["PROGRESS_CACHE_SECONDS"] = 30
    cid = make_campaign()
    path = f"/donations/{cid}/progress"
    first = _text(client.get(path, headers=HX))
    assert "爱心墙" in first and 'value="0"' in first
    with app.app_context():
        services.donate(member, cid, 6, idempotency_key=key())
        db.session.commit()
        engine = db.engine
    with count_queries(engine) as statements:
        again = client.get(path, headers=HX)
    assert again.status_code == 200 and _text(again) == first and statements == []
    signed_in = app.test_client()  # a member's poll: the language is in the session
    signed_in.post("/auth/login", data={"phone": member.phone, "password": PASSWORD})
    with count_queries(engine) as statements:
        polled = signed_in.get(path, headers=HX)
    assert polled.status_code == 200 and _text(polled) == first and statements == []
    english = app.test_client()
    english.post("/lang", data={"locale": "en"})
    text = _text(english.get(path, headers=HX))
    assert "Donor wall" in text and 'value="6"' in text
    app.config["PROGRESS_CACHE_SECONDS"] = 0
    assert 'value="6"' in _text(client.get(path, headers=HX))
    assert client.get("/donations/999/progress", headers=HX).status_code == 404


def test_the_campaign_page_shows_the_progress_card_everyone_polls(
    client, app, auth, make_campaign, member, make_user
):
    """With the cache on, the campaign page inserts the same rendered progress card
    the polls share (no donor-wall read of its own); a member's own donation answer
    renders it fresh, and staff see a draft's progress rendered for the page."""
    app.config["PROGRESS_CACHE_SECONDS"] = 30
    cid = make_campaign()
    polled = _text(client.get(f"/donations/{cid}/progress", headers=HX))
    with app.app_context():
        services.donate(member, cid, 6, idempotency_key=key())
        db.session.commit()
        engine = db.engine
    with count_queries(engine) as cached:
        page = _text(client.get(f"/donations/{cid}"))
    assert polled in page and 'value="0"' in polled  # the card as polled, 6 units later
    app.config["PROGRESS_CACHE_SECONDS"] = 0
    with count_queries(engine) as fresh:
        page = _text(client.get(f"/donations/{cid}"))
    assert 'value="6"' in page and len(cached) == len(fresh) - 1  # the donor wall's read
    app.config["PROGRESS_CACHE_SECONDS"] = 30
    staff = make_user(roles=("staff",))
    with app.app_context():
        db.session.get(Campaign, cid).status = "draft"
        db.session.commit()
    auth.login(staff)
    draft = _text(client.get(f"/donations/{cid}"))
    assert 'data-testid="progress"' in draft and 'value="6"' in draft


def test_progress_fragment_queries_are_constant(client, app, make_user, give_points, make_campaign):
    cid = make_campaign()
    users = [make_user() for _ in range(15)]
    with app.app_context():
        for user in users:
            points.earn(user, 10, reason="grant", idempotency_key=f"g{user.id}")
            services.donate(user, cid, 1, idempotency_key=key())
        db.session.commit()
    statements = []
    with app.app_context():
        engine = db.engine

    def count(*args, **kwargs):
        statements.append(args[2] if len(args) > 2 else "")

    sa.event.listen(engine, "before_cursor_execute", count)
    try:
        assert client.get(f"/donations/{cid}/progress", headers=HX).status_code == 200
    finally:
        sa.event.remove(engine, "before_cursor_execute", count)
    selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert len(selects) <= 3, selects


def test_certificates_private_in_full_verified_in_public(
    client, app, auth, member, make_user, make_campaign
):
    cid = make_campaign()
    with app.app_context():
        donation = services.donate(member, cid, 2, idempotency_key=key()).donation
        db.session.commit()
        number, donation_id = donation.certificate_no, donation.id
    # anyone can verify: genuine, with a masked name only
    text = _text(client.get(f"/donations/verify/{number}"))
    assert "真实有效" in text and "张*明" in text and "张三明" not in text
    assert client.get(f"/donations/verify/{number.lower()}").status_code == 200
    assert client.get("/donations/verify/JZ2020-FORGED1234").status_code == 404
    assert client.get("/donations/verify/" + "X" * 60).status_code == 404
    # the full certificate needs login and is the donor's own
    assert client.get(f"/donations/certificates/{number}").status_code == 302
    other = make_user()
    auth.login(other)
    assert client.get(f"/donations/certificates/{number}").status_code == 404
    assert client.get(f"/donations/my/{donation_id}").status_code == 404
    auth.logout()
    auth.login(member)
    assert client.get(f"/donations/my/{donation_id}").status_code == 302
    response = client.get(f"/donations/certificates/{number}")
    assert response.status_code == 200 and "张三明" in _text(response) and "<svg" in _text(response)


ROLES = ("anonymous", "member", "lawyer", "staff", "admin")


@pytest.mark.parametrize(
    "path",
    [
        "/donations/manage",
        "/donations/manage/new",
        "/donations/manage/{cid}",
        "/donations/manage/{cid}/edit",
        "/donations/manage/{cid}/close",
        "/donations/manage/{cid}/cancel",
        "/donations/manage/{cid}/export.csv",
        "/donations/manage/export.csv",
    ],
)
def test_only_staff_manage(app, make_user, make_campaign, path):
    cid = make_campaign()
    expected = {"anonymous": 302, "member": 403, "lawyer": 403, "staff": 200, "admin": 200}
    for role in ROLES:
        client = app.test_client()
        if role != "anonymous":
            user = make_user(roles=(role,))
            client.post("/auth/login", data={"phone": user.phone, "password": "Correct-Horse-42"})
        response = client.get(path.format(cid=cid))
        response.get_data()  # a streamed CSV is read to its end
        assert response.status_code == expected[role], (role, path)
    for role in ("member", "lawyer"):
        client = app.test_client()
        user = make_user(roles=(role,))
        client.post("/auth/login", data={"phone": user.phone, "password": "Correct-Horse-42"})
        assert client.post(f"/donations/manage/{cid}/close").status_code == 403
        assert client.post("/donations/manage/new", data={"title": "x"}).status_code == 403
    with app.app_context():
        assert db.session.get(Campaign, cid).status == "open"


def test_staff_without_member_role_cannot_donate(client, auth, staff, make_campaign):
    cid = make_campaign()
    auth.login(staff)
    response = client.post(
        f"/donations/{cid}/confirm", data={"units": "1", "idempotency_key": key()}
    )
    assert response.status_code == 403
    assert client.get("/donations/manage/999").status_code == 404
    assert client.get(f"/donations/manage/{cid}/explode").status_code == 404


def test_staff_create_edit_open_close_cancel(client, auth, staff, member, app):
    auth.login(staff)
    data = {
        "title": "积分捐：为环卫工人捐手套",
        "story": "冬季防护",
        "beneficiary_name": "海淀区环卫中心",
        "beneficiary_type": "workers",
        "item_name": "防护手套",
        "unit_label": "副",
        "points_per_unit": "5",
        "target_units": "400",
        "min_units": "",
        "max_units": "50",
        "opens_at": "2020-02-01T09:00",
        "closes_at": "2099-03-01T18:00",
    }
    bad = client.post("/donations/manage/new", data={**data, "points_per_unit": "abc"}, headers=HX)
    assert bad.status_code == 422 and "请输入整数" in _text(bad) and "<html" not in _text(bad)
    bad = client.post("/donations/manage/new", data={**data, "closes_at": "2020-01-01T00:00"})
    assert bad.status_code == 422 and "结束时间必须晚于开始时间" in _text(bad)
    response = client.post("/donations/manage/new", data=data, headers=HX)
    assert response.status_code == 204 and response.headers["HX-Redirect"].startswith(
        "/donations/manage/"
    )
    with app.app_context():
        campaign = db.session.scalar(sa.select(Campaign))
        cid = campaign.id
        assert campaign.status == "draft" and campaign.opens_at.hour == 1  # 09:00 Beijing
    edit = client.get(f"/donations/manage/{cid}/edit")
    assert 'value="2020-02-01T09:00"' in _text(edit)
    response = client.post(f"/donations/manage/{cid}/edit", data={**data, "target_units": "500"})
    assert response.status_code == 303
    # confirmation first (a dialog for htmx), then the action
    dialog = client.get(f"/donations/manage/{cid}/open", headers=HX)
    assert "<dialog data-open" in _text(dialog)
    assert client.post(f"/donations/manage/{cid}/open").status_code == 303
    with app.app_context():
        services.donate(member, cid, 10, idempotency_key=key())
        db.session.commit()
    frozen = client.post(f"/donations/manage/{cid}/edit", data={**data, "points_per_unit": "6"})
    assert frozen.status_code == 422 and "已有捐赠" in _text(frozen)
    missing_reason = client.post(f"/donations/manage/{cid}/cancel", data={"reason": ""}, headers=HX)
    assert missing_reason.status_code == 422 and "<dialog data-open" in _text(missing_reason)
    response = client.post(f"/donations/manage/{cid}/cancel", data={"reason": "物资已到位"})
    assert response.status_code == 303
    assert "1 笔捐赠已退还" in _text(client.get(response.headers["Location"]))
    with app.app_context():
        assert db.session.get(Campaign, cid).status == "cancelled"
        assert points.balance_of(member) == 1000
        from memberplatform.audit.models import AuditEntry

        actions = set(db.session.scalars(sa.select(AuditEntry.action)))
        assert {
            "donations.campaign.create",
            "donations.campaign.update",
            "donations.campaign.open",
            "donations.campaign.cancel",
        } <= actions
    assert integrity_problems(app) == []


def test_fulfilment_with_upload_limits(client, auth, staff, member, make_campaign, app):
    cid = make_campaign()
    with app.app_context():
        services.donate(member, cid, 10, idempotency_key=key())
        services.change_status(cid, "close", staff)
        db.session.commit()
    auth.login(staff)
    url = f"/donations/manage/{cid}/fulfilments"
    base = {"quantity": "6", "delivered_on": "2020-03-02", "note": "第一批已送达"}
    wrong_type = client.post(
        url,
        data={**base, "file": (io.BytesIO(b"MZ\x90\x00 not an image"), "x.exe")},
        content_type="multipart/form-data",
        headers=HX,
    )
    assert wrong_type.status_code == 422 and "不接受此文件类型" in _text(wrong_type)
    too_big = client.post(
        url,
        data={**base, "file": (io.BytesIO(PNG + b"\x00" * (5 * 1024 * 1024)), "big.png")},
        content_type="multipart/form-data",
    )
    assert too_big.status_code == 422
    too_many = client.post(url, data={**base, "quantity": "11"})
    assert too_many.status_code == 422 and "10" in _text(too_many)
    ok = client.post(
        url,
        data={**base, "file": (io.BytesIO(PNG), "receipt.png")},
        content_type="multipart/form-data",
    )
    assert ok.status_code == 303
    with app.app_context():
        fulfilment = db.session.scalar(sa.select(Fulfilment))
        assert fulfilment.quantity == 6 and fulfilment.upload_id
    photo = client.get(f"/donations/fulfilments/{fulfilment.id}/file")
    assert photo.status_code == 200 and photo.mimetype == "image/png"
    assert client.post(f"/donations/manage/{cid}/fulfil").status_code == 303
    auth.logout()
    auth.login(member)
    text = _text(client.get(f"/donations/{cid}"))
    assert "已送达" in text and "第一批已送达" in text
    totals = _text(client.get(f"/donations/{cid}/totals"))
    assert "武汉科技大学附属普仁医院" in totals and "10" in totals


def test_csv_export_is_formula_safe(
    client, auth, staff, make_user, give_points, make_campaign, app
):
    evil = make_user(name='=HYPERLINK("http://x")')
    give_points(evil, 100)
    cid = make_campaign()
    with app.app_context():
        services.donate(evil, cid, 2, idempotency_key=key())
        db.session.commit()
    auth.login(staff)
    response = client.get(f"/donations/manage/{cid}/export.csv")
    text = _text(response)
    assert response.mimetype == "text/csv" and text.startswith("\ufeff")
    assert "'=HYPERLINK" in text and "\n=HYPERLINK" not in text and ",=HYPERLINK" not in text
    assert "certificate_no" in text
    assert "'=HYPERLINK" in _text(client.get("/donations/manage/export.csv"))


def test_staff_dashboard_figures(client, auth, staff, member, make_campaign, app):
    cid = make_campaign()
    with app.app_context():
        services.donate(member, cid, 10, idempotency_key=key())
        services.donate(member, cid, 5, idempotency_key=key())
        db.session.commit()
        days = services.daily_figures(cid)
        assert len(days) == 1 and days[0]["units"] == 15 and days[0]["donors"] == 1
    auth.login(staff)
    text = _text(client.get(f"/donations/manage/{cid}"))
    assert "<meter" in text and "张三明" in text and "每日捐赠" in text


def test_panels(app, member, make_campaign):
    from flask import render_template
    from flask_login import login_user

    from memberplatform.core.registry import admin_panels, home_panels, me_panels

    cid = make_campaign()
    with app.app_context():
        services.donate(member, cid, 3, idempotency_key=key())
        db.session.commit()
        with app.test_request_context("/me"):
            from memberplatform.auth.models import User

            user = db.session.get(User, member.id)
            login_user(user)
            for registry, args in ((me_panels, (user,)), (home_panels, ()), (admin_panels, ())):
                panel = next(p for p in registry if p.name == "donations")
                html = render_template(panel.template, ctx=panel.context(*args), panel=panel)
                assert "积分捐" in html, panel.template
