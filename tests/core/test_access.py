"""Who may use each route of the foundation: anonymous, member, lawyer, staff, admin.

Every route of the ``auth`` and ``home`` blueprints must be in TABLE (the full
matrix over every blueprint is built by the security issue's test).
"""

from __future__ import annotations

import pytest

from memberplatform import create_app
from tests.conftest import TEST_CONFIG

ROLES = ("anonymous", "member", "lawyer", "staff", "admin")
LOGIN = 302  # anonymous users are sent to the login page

# (method, path): expected status for each role, in ROLES order
TABLE: dict[tuple[str, str], tuple[int, ...]] = {
    ("GET", "/"): (200, 200, 200, 200, 200),
    ("GET", "/healthz"): (200, 200, 200, 200, 200),
    ("GET", "/me"): (LOGIN, 200, 200, 200, 200),
    ("GET", "/me/export"): (LOGIN, 200, 200, 200, 200),
    ("GET", "/auth/login"): (200, 200, 200, 200, 200),
    ("GET", "/auth/activate"): (200, 200, 200, 200, 200),
    ("GET", "/auth/register"): (404, 404, 404, 404, 404),  # off by default
    ("GET", "/auth/password"): (LOGIN, 200, 200, 200, 200),
    ("POST", "/auth/logout"): (303, 303, 303, 303, 303),
    ("POST", "/lang"): (303, 303, 303, 303, 303),
}


def test_table_covers_every_foundation_route():
    app = create_app({**TEST_CONFIG, "DATABASE_URL": "sqlite://"})
    routes = {
        (method, rule.rule)
        for rule in app.url_map.iter_rules()
        if rule.endpoint.split(".")[0] in {"auth", "home"}
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    routes -= {
        ("POST", "/auth/login"),
        ("POST", "/auth/activate"),
        ("POST", "/auth/register"),
        ("POST", "/auth/password"),
    }  # forms: own tests
    assert routes == set(TABLE)


@pytest.mark.parametrize(("method", "path"), list(TABLE))
def test_access(app, make_user, method, path):
    users = {role: make_user(roles=(role,)) for role in ROLES[1:]}
    for index, role in enumerate(ROLES):
        client = app.test_client()
        if role != "anonymous":
            login = client.post(
                "/auth/login", data={"phone": users[role].phone, "password": "Correct-Horse-42"}
            )
            assert login.status_code == 303
        response = client.open(path, method=method)
        assert response.status_code == TABLE[(method, path)][index], (role, method, path)
