"""Stored XSS: script payloads in free-text fields show as text; the CSP forbids inline script.

Fields reached: a member's name (roster import and self-registration), a staff points-grant
note (member's history and notification), campaign title and story, fulfilment note.
Every page showing them must contain the escaped payload and never the raw one.
"""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
import sqlalchemy as sa
from markupsafe import escape

from memberplatform.auth.models import User
from memberplatform.extensions import db
from memberplatform.web.security import CSP
from tests.conftest import PASSWORD
from tests.security.helpers import login

PAYLOADS = ["<script>alert(1)</script>", '"><img src=x onerror=alert(1)>']


def assert_escaped(page: str, payload: str, where: str) -> None:
    assert payload not in page, f"raw payload on {where}"
    assert str(escape(payload)) in page, f"payload not shown (escaped) on {where}"


@pytest.mark.parametrize("payload", PAYLOADS)
def test_name_from_roster_import_is_escaped(app, client, make_user, payload):
    from memberplatform.admin.services import apply_rows
    from memberplatform.auth.roster import parse_roster

    text = io.StringIO()
    csv.writer(text).writerows(
        [
            ["姓名", "手机号", "会员号", "企业", "基层工会"],
            [payload, "13811112222", "XSS0001", f"企业{payload}", f"工会{payload}"],
        ]
    )
    with app.app_context():
        rows = parse_roster(text.getvalue())
        assert all(row.ok for row in rows), [row.errors for row in rows]
        apply_rows(rows)
        db.session.commit()
        user = db.session.scalar(sa.select(User).where(User.phone == "13811112222"))
        assert user is not None
    response = client.post(
        "/auth/activate",
        data={
            "member_no": "XSS0001",
            "phone": "13811112222",
            "password": "Union-Member-2020",
            "confirm": "Union-Member-2020",
        },
    )
    assert response.status_code == 303
    page = client.get("/me").get_data(as_text=True)
    for text in (payload, f"企业{payload}", f"工会{payload}"):
        assert_escaped(page, text, "/me")


@pytest.mark.parametrize("payload", PAYLOADS)
def test_name_from_self_registration_is_escaped(app_factory, payload):
    app = app_factory(SELF_REGISTRATION=True)
    client = app.test_client()
    response = client.post(
        "/auth/register",
        data={
            "name": payload[:50],
            "phone": "13922223333",
            "password": "Union-Member-2020",
            "confirm": "Union-Member-2020",
        },
    )
    assert response.status_code in (303, 422)
    with app.app_context():
        name = db.session.scalar(sa.select(User.name).where(User.phone == "13922223333"))
        if name is not None:
            assert name == payload[:50]  # stored as typed, escaped on output


@pytest.mark.parametrize("payload", PAYLOADS)
def test_grant_note_is_escaped_for_member_and_staff(app, make_user, payload):
    staff = make_user(roles=("staff",))
    member = make_user(name=f"会员{payload}"[:50])
    staff_client = app.test_client()
    login(staff_client, staff)
    response = staff_client.post(
        "/points/grant",
        data={
            "member": member.phone,
            "mode": "grant",
            "amount": "5",
            "note": payload,
            "idempotency_key": "a" * 32,
        },
    )
    assert response.status_code == 303, response.get_data(as_text=True)[-500:]
    flashed = staff_client.get("/points/grant").get_data(as_text=True)
    assert_escaped(flashed, member.name, "/points/grant (flash with the member's name)")
    member_client = app.test_client()
    login(member_client, member)
    for path in ("/points", "/notifications"):
        assert_escaped(member_client.get(path).get_data(as_text=True), payload, path)
        assert_escaped(
            member_client.get(path, headers={"HX-Request": "true"}).get_data(as_text=True),
            payload,
            f"{path} (htmx fragment)",
        )


@pytest.mark.parametrize("payload", PAYLOADS)
def test_campaign_texts_are_escaped(app, make_user, payload):
    from memberplatform.db import utcnow
    from memberplatform.donations import services

    staff = make_user(roles=("staff",))
    member = make_user()
    with app.app_context():
        now = utcnow()
        campaign = services.create_campaign(
            staff.id,
            title=f"T{payload}"[:120],
            story=f"故事 {payload}",
            beneficiary_name=f"B{payload}",
            beneficiary_type="hospital",
            item_name=f"I{payload}"[:60],
            unit_label="只",
            points_per_unit=1,
            target_units=100,
            min_units=None,
            max_units=None,
            opens_at=now - timedelta(days=1),
            closes_at=now + timedelta(days=3),
        )
        services.change_status(campaign.id, "open", staff.id)
        db.session.commit()
        campaign_id = campaign.id
    member_client, staff_client = app.test_client(), app.test_client()
    login(member_client, member)
    login(staff_client, staff)
    pages = {
        "/donations": member_client,
        f"/donations/{campaign_id}": member_client,
        "/donations/manage": staff_client,
        f"/donations/manage/{campaign_id}": staff_client,
        f"/donations/manage/{campaign_id}/edit": staff_client,
    }
    for path, client in pages.items():
        page = client.get(path).get_data(as_text=True)
        assert payload not in page, path
    story_page = member_client.get(f"/donations/{campaign_id}").get_data(as_text=True)
    assert_escaped(story_page, payload, "campaign page (story)")


def test_fulfilment_note_is_escaped(app, make_user):
    from tests.security import objects
    from tests.security.world import World

    payload = PAYLOADS[0]
    staff, member, admin = make_user(roles=("staff",)), make_user(), make_user(roles=("admin",))
    world = World(app, {"staff": staff, "member": member, "admin": admin})
    made = objects.donation(world)
    staff_client = app.test_client()
    login(staff_client, staff)
    response = staff_client.post(
        f"/donations/manage/{made['campaign_id']}/fulfilments",
        data={
            "quantity": "1",
            "delivered_on": "2025-01-02",
            "note": payload,
            "file": (io.BytesIO(objects.PDF), "p.pdf"),
        },
        content_type="multipart/form-data",
    )
    assert response.status_code == 303
    for path, client in (
        (f"/donations/{made['campaign_id']}", app.test_client()),
        (f"/donations/manage/{made['campaign_id']}", staff_client),
    ):
        assert payload not in client.get(path).get_data(as_text=True), path


def test_csp_forbids_inline_script_and_style(client):
    csp = client.get("/").headers["Content-Security-Policy"]
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["script-src"] == "'self'"
    assert directives["style-src"] == "'self'"
    assert directives["object-src"] == "'none'" and directives["base-uri"] == "'self'"
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert csp == CSP


def test_csp_is_on_error_pages_and_fragments_too(client, hx):
    for response in (client.get("/no-such-page"), client.get("/", headers=hx)):
        assert response.headers["Content-Security-Policy"] == CSP
    assert PASSWORD  # the shared fixtures are in use
