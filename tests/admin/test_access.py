"""Who may use each console route: anonymous, member, lawyer, staff, admin.

Every route of the ``admin`` blueprint must be in TABLE.
"""

from __future__ import annotations

import pytest

from memberplatform import create_app
from memberplatform.auth.models import User
from memberplatform.extensions import db
from tests.admin.conftest import login
from tests.conftest import TEST_CONFIG

ROLES = ("anonymous", "member", "lawyer", "staff", "admin")
LOGIN = 302
SHA = "0" * 64

# (method, rule): expected status per role; {m} is a member of the roster
TABLE: dict[tuple[str, str], tuple[int, ...]] = {
    ("GET", "/admin"): (LOGIN, 403, 403, 200, 200),
    ("GET", "/admin/members"): (LOGIN, 403, 403, 200, 200),
    ("GET", "/admin/members/<int:user_id>"): (LOGIN, 403, 403, 200, 200),
    ("POST", "/admin/members/<int:user_id>/disable"): (LOGIN, 403, 403, 303, 303),
    ("POST", "/admin/members/<int:user_id>/enable"): (LOGIN, 403, 403, 422, 422),
    ("POST", "/admin/members/<int:user_id>/approve"): (LOGIN, 403, 403, 422, 422),
    ("POST", "/admin/members/<int:user_id>/reset"): (LOGIN, 403, 403, 200, 200),
    ("POST", "/admin/members/<int:user_id>/roles"): (LOGIN, 403, 403, 403, 303),
    ("POST", "/admin/members/<int:user_id>/tags"): (LOGIN, 403, 403, 303, 303),
    ("POST", "/admin/members/<int:user_id>/scope"): (LOGIN, 403, 403, 403, 422),
    ("GET", "/admin/roster"): (LOGIN, 403, 403, 200, 200),
    ("POST", "/admin/roster"): (LOGIN, 403, 403, 422, 422),
    ("GET", "/admin/roster/<sha>"): (LOGIN, 403, 403, 404, 404),
    ("POST", "/admin/roster/confirm"): (LOGIN, 403, 403, 404, 404),
    ("GET", "/admin/branches"): (LOGIN, 403, 403, 200, 200),
    ("POST", "/admin/branches"): (LOGIN, 403, 403, 403, 303),
    ("GET", "/admin/branches/<int:branch_id>"): (LOGIN, 403, 403, 200, 200),
    ("POST", "/admin/branches/<int:branch_id>"): (LOGIN, 403, 403, 403, 303),
    ("GET", "/admin/enterprises"): (LOGIN, 403, 403, 200, 200),
    ("POST", "/admin/enterprises"): (LOGIN, 403, 403, 403, 303),
    ("GET", "/admin/enterprises/<int:enterprise_id>"): (LOGIN, 403, 403, 200, 200),
    ("POST", "/admin/enterprises/<int:enterprise_id>"): (LOGIN, 403, 403, 403, 303),
    ("GET", "/admin/audit"): (LOGIN, 403, 403, 200, 200),
    ("GET", "/admin/audit.csv"): (LOGIN, 403, 403, 200, 200),
    ("GET", "/admin/exports"): (LOGIN, 403, 403, 200, 200),
    ("GET", "/admin/exports/members.csv"): (LOGIN, 403, 403, 200, 200),
    ("GET", "/impact"): (200, 200, 200, 200, 200),
    ("GET", "/account/reset/<token>"): (404, 404, 404, 404, 404),
}


def test_table_covers_every_console_route():
    app = create_app({**TEST_CONFIG, "DATABASE_URL": "sqlite://"})
    routes = {
        (method, rule.rule)
        for rule in app.url_map.iter_rules()
        if rule.endpoint.split(".")[0] == "admin"
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    routes -= {("POST", "/account/reset/<token>")}  # the form: own tests
    assert routes == set(TABLE)


@pytest.mark.parametrize(("method", "rule"), list(TABLE))
def test_access(app, world, make_user, method, rule):
    users = {
        "member": make_user(roles=("member",)),
        "lawyer": make_user(roles=("lawyer",)),
        "staff": world.staff,
        "admin": world.admin,
    }
    with app.app_context():
        enterprise_id = db.session.get(User, world.member_a.id).enterprise_id
    for index, role in enumerate(ROLES):
        # a fresh target per role, so one role's change does not change the next answer
        target = make_user(member_no=f"ACC{index:05d}", branch=world.branch_a.name)
        path = (
            rule.replace("<int:user_id>", str(target.id))
            .replace("<sha>", SHA)
            .replace("<int:branch_id>", str(world.branch_a.id))
            .replace("<int:enterprise_id>", str(enterprise_id))
            .replace("<token>", "no-such-token")
        )
        data = {"roles": ["member", "lawyer"], "tags": "x", "name": f"名称{index}", "sha": SHA}
        client = app.test_client() if role == "anonymous" else login(app, users[role])
        response = client.open(path, method=method, data=data)
        response.get_data()  # a streamed CSV runs to its end
        assert response.status_code == TABLE[(method, rule)][index], (role, method, path)
