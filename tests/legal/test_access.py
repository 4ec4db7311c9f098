"""Access matrix over every legal URL: requester, another member, the assigned lawyer,
another lawyer, staff, admin and anonymous.

POSTs send a form without the expected fields, so an allowed user gets 422 (or, for actions without
fields, does the action: the roles run in a fixed order, so later rows see its
effect — e.g. the admin's close after the requester's gets the page back).
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from memberplatform import create_app
from memberplatform.extensions import db
from memberplatform.legal import services
from memberplatform.legal.models import RequestAttachment
from tests.conftest import PASSWORD, TEST_CONFIG
from tests.legal.conftest import claimed, pdf_file, req, submit, user

# the order in which each URL is tried
ROLES = ("anonymous", "requester", "other_member", "staff", "other_lawyer", "lawyer", "admin")
L = 302  # anonymous: to the login page

ALL_200 = (200,) * 7
LOGGED_IN = (L, 200, 200, 200, 200, 200, 200)
ADMIN_ONLY = (L, 403, 403, 403, 403, 403, 200)
STAFF_GET = (L, 403, 403, 200, 403, 403, 200)
STAFF_POST = (L, 403, 403, 422, 403, 403, 422)
SEE_REQUEST = (L, 200, 404, 404, 404, 200, 200)

# (method, rule, concrete path): statuses in ROLES order
TABLE: list[tuple[str, str, str, tuple[int, ...]]] = [
    ("GET", "/legal", "/legal", ALL_200),
    (
        "GET",
        "/legal/<int:item_id>/request",
        "/legal/{item}/request",
        (L, 200, 200, 403, 403, 403, 200),
    ),
    (
        "POST",
        "/legal/<int:item_id>/request",
        "/legal/{item}/request",
        (L, 422, 422, 403, 403, 403, 422),
    ),
    ("GET", "/legal/requests", "/legal/requests", LOGGED_IN),
    ("GET", "/legal/requests/<int:request_id>", "/legal/requests/{r}", SEE_REQUEST),
    (
        "GET",
        "/legal/requests/<int:request_id>/files/<int:attachment_id>",
        "/legal/requests/{r}/files/{a}",
        SEE_REQUEST,
    ),
    (
        "POST",
        "/legal/requests/<int:request_id>/follow-up",
        "/legal/requests/{r}/follow-up",
        (L, 422, 404, 404, 404, 403, 403),
    ),
    (
        "POST",
        "/legal/requests/<int:request_id>/reply",
        "/legal/requests/{r}/reply",
        (L, 403, 403, 403, 404, 422, 403),
    ),
    (
        "POST",
        "/legal/requests/<int:request_id>/notes",
        "/legal/requests/{r}/notes",
        (L, 403, 403, 403, 404, 422, 422),
    ),
    (
        "POST",
        "/legal/requests/<int:request_id>/rate",
        "/legal/requests/{r}/rate",
        (L, 422, 404, 404, 404, 403, 403),
    ),
    (
        "POST",
        "/legal/requests/<int:request_id>/reassign",
        "/legal/requests/{r}/reassign",
        (L, 403, 403, 403, 403, 403, 422),
    ),
    (
        "POST",
        "/legal/requests/<int:request_id>/hand-back",
        "/legal/requests/{r}/hand-back",
        (L, 403, 403, 403, 404, 303, 403),
    ),
    (
        "POST",
        "/legal/requests/<int:request_id>/close",
        "/legal/requests/{r}/close",
        (L, 303, 404, 404, 404, 403, 303),
    ),
    ("GET", "/lawyer", "/lawyer", (L, 403, 403, 200, 200, 200, 200)),
    (
        "POST",
        "/lawyer/requests/<int:request_id>/claim",
        "/lawyer/requests/{q}/claim",
        (L, 403, 403, 403, 303, 422, 422),
    ),
    ("GET", "/legal/admin", "/legal/admin", ADMIN_ONLY),
    ("GET", "/legal/admin/export.csv", "/legal/admin/export.csv", ADMIN_ONLY),
    ("GET", "/legal/admin/clients", "/legal/admin/clients", ADMIN_ONLY),
    ("POST", "/legal/admin/clients", "/legal/admin/clients", (L, 403, 403, 403, 403, 403, 422)),
    (
        "POST",
        "/legal/admin/clients/remove",
        "/legal/admin/clients/remove",
        (L, 403, 403, 403, 403, 403, 404),
    ),
    ("GET", "/legal/manage", "/legal/manage", STAFF_GET),
    ("GET", "/legal/manage/categories/new", "/legal/manage/categories/new", STAFF_GET),
    ("POST", "/legal/manage/categories/new", "/legal/manage/categories/new", STAFF_POST),
    (
        "GET",
        "/legal/manage/categories/<int:category_id>",
        "/legal/manage/categories/{c}",
        STAFF_GET,
    ),
    # missing fields keep the stored values (WTForms with obj=): saved unchanged
    (
        "POST",
        "/legal/manage/categories/<int:category_id>",
        "/legal/manage/categories/{c}",
        (L, 403, 403, 303, 403, 403, 303),
    ),
    ("GET", "/legal/manage/items/new", "/legal/manage/items/new", STAFF_GET),
    ("POST", "/legal/manage/items/new", "/legal/manage/items/new", STAFF_POST),
    ("GET", "/legal/manage/items/<int:item_id>", "/legal/manage/items/{item}", STAFF_GET),
    ("POST", "/legal/manage/items/<int:item_id>", "/legal/manage/items/{item}", STAFF_POST),
    (
        "POST",
        "/legal/manage/items/<int:item_id>/<any(retire, restore, delete):action>",
        "/legal/manage/items/{item}/retire",
        (L, 403, 403, 303, 403, 403, 303),
    ),
    (
        "POST",
        "/legal/manage/items/<int:item_id>/<any(retire, restore, delete):action>",
        "/legal/manage/items/{item}/restore",
        (L, 403, 403, 303, 403, 403, 303),
    ),
    (
        "POST",
        "/legal/manage/items/<int:item_id>/<any(retire, restore, delete):action>",
        "/legal/manage/items/{item}/delete",
        (L, 403, 403, 303, 403, 403, 303),
    ),  # in use: kept
    ("GET", "/legal/manage/hotlines/new", "/legal/manage/hotlines/new", STAFF_GET),
    ("POST", "/legal/manage/hotlines/new", "/legal/manage/hotlines/new", STAFF_POST),
    ("GET", "/legal/manage/hotlines/<int:hotline_id>", "/legal/manage/hotlines/{h}", STAFF_GET),
    (
        "POST",
        "/legal/manage/hotlines/<int:hotline_id>",
        "/legal/manage/hotlines/{h}",
        (L, 403, 403, 303, 403, 403, 303),
    ),
    ("GET", "/legal/manage/sessions/new", "/legal/manage/sessions/new", STAFF_GET),
    ("POST", "/legal/manage/sessions/new", "/legal/manage/sessions/new", STAFF_POST),
    ("GET", "/legal/manage/sessions/<int:session_id>", "/legal/manage/sessions/{s}", STAFF_GET),
    ("POST", "/legal/manage/sessions/<int:session_id>", "/legal/manage/sessions/{s}", STAFF_POST),
]


def test_table_covers_every_legal_route():
    app = create_app({**TEST_CONFIG, "DATABASE_URL": "sqlite://"})
    routes = {
        (method, rule.rule)
        for rule in app.url_map.iter_rules()
        if rule.endpoint.startswith("legal.")
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    assert routes == {(method, rule) for method, rule, _, _ in TABLE}


def test_every_route_states_its_access():
    import inspect

    app = create_app({**TEST_CONFIG, "DATABASE_URL": "sqlite://"})
    for endpoint, view in app.view_functions.items():
        if endpoint.startswith("legal."):
            source = inspect.getsource(view)
            assert "# access:" in source, endpoint
            assert hasattr(view, "access_roles") or "# access: anyone" in source, endpoint


@pytest.fixture
def scene(app, world):
    """The objects every URL refers to: a request with a file (lawyer assigned) and one waiting."""
    from datetime import timedelta

    from memberplatform.db import utcnow

    r = claimed(app, world, files=[pdf_file()])
    q = submit(app, world, member=world.other)
    with app.app_context():
        hotline = services.save_hotline(
            world.admin.id, None, name="热线", number="12351", hours="工作日", active=True
        )
        session = services.save_session(
            world.admin.id,
            None,
            title="直播",
            speaker="王律师",
            starts_at=utcnow() + timedelta(days=1),
            duration_minutes=60,
            venue="",
            description="",
        )
        db.session.commit()
        ids = {
            "r": r,
            "q": q,
            "item": world.item_id,
            "c": world.category_id,
            "a": db.session.scalar(sa.select(RequestAttachment.id)),
            "h": hotline.id,
            "s": session.id,
        }
    users = {
        "requester": world.member,
        "other_member": world.other,
        "staff": world.staff,
        "other_lawyer": world.lawyer2,
        "lawyer": world.lawyer,
        "admin": world.admin,
    }
    return ids, users


@pytest.mark.parametrize(("method", "rule", "path", "expected"), TABLE, ids=lambda v: str(v))
def test_access(app, scene, method, rule, path, expected):
    ids, users = scene
    url = path.format(**ids)
    for index, role in enumerate(ROLES):
        client = app.test_client()
        if role != "anonymous":
            login = client.post(
                "/auth/login", data={"phone": users[role].phone, "password": PASSWORD}
            )
            assert login.status_code == 303
        response = client.open(url, method=method, data={"unused": ""})
        assert response.status_code == expected[index], (role, method, url)
    with app.app_context():
        assert req(ids["r"]) is not None and user(users["requester"]) is not None
