"""Every route of the URL map × every actor, against the declared table (access_table.py).

SQLite only (one app for the module, users created once): access decisions do not depend
on the engine; the engine-specific behaviour is covered by the domains' own tests.
"""

from __future__ import annotations

import pytest

from memberplatform import create_app
from tests.conftest import TEST_CONFIG
from tests.security.access_table import LOGIN, OK, TABLE
from tests.security.world import ACTORS

IGNORED_METHODS = {"HEAD", "OPTIONS"}


def url_map_routes(app) -> set[tuple[str, str]]:
    return {
        (method, rule.rule)
        for rule in app.url_map.iter_rules()
        for method in rule.methods - IGNORED_METHODS
    }


def test_every_route_is_in_the_table():
    app = create_app({**TEST_CONFIG, "DATABASE_URL": "sqlite://"})
    routes = url_map_routes(app)
    missing = sorted(routes - set(TABLE))
    stale = sorted(set(TABLE) - routes)
    assert not missing, f"routes without a row in tests/security/access_table.py: {missing}"
    assert not stale, f"rows for routes that no longer exist: {stale}"


def describe(response) -> str:
    location = response.headers.get("Location", "")
    return f"{response.status_code}{' → ' + location if location else ''}"


def matches(expected, response) -> bool:
    if expected == OK:
        return response.status_code == 200
    if expected == LOGIN:
        return response.status_code == 302 and response.headers.get("Location", "").startswith(
            "/auth/login"
        )
    return response.status_code == expected


@pytest.mark.parametrize(("method", "rule"), sorted(TABLE), ids=lambda v: str(v))
def test_access(world, method, rule):
    case = TABLE[(method, rule)]
    wrong, known = [], []
    for actor in ACTORS:
        path = case.path(world) if callable(case.path) else (case.path or rule)
        data = case.data(world) if callable(case.data) else case.data
        client = world.client(actor)
        response = client.open(path, method=method, data=data if method == "POST" else None)
        response.get_data()
        response.close()  # streamed CSV responses end their request context here
        expected = case.expect[actor]
        right = response.status_code < 500 and matches(expected, response)
        if actor in case.bugs:
            if right:
                wrong.append(f"{actor}: known bug gone (got {describe(response)}): remove it")
            else:
                known.append(f"{actor}: expected {expected}, got {describe(response)}")
        elif not right:
            wrong.append(f"{actor}: expected {expected}, got {describe(response)}")
    assert not wrong, f"{method} {rule}:\n  " + "\n  ".join(wrong)
    if known:
        pytest.xfail(f"known bug, {method} {rule}: " + "; ".join(known))
