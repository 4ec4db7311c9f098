"""Hostile input to every POST endpoint of the URL map: never a 500; a refusal changes nothing.

Generic: the endpoints come from the access table (which the matrix test keeps equal to the
URL map), field names from every Flask-WTF form of the platform, values from hypothesis.
Bounded (few examples, no deadline) so the file runs in well under a minute.
"""

from __future__ import annotations

import importlib
import inspect
import json
import pkgutil

import pytest
from flask_wtf import FlaskForm
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import memberplatform
from memberplatform.cli import run_integrity_checks
from tests.security.access_table import TABLE
from tests.security.helpers import csrf_token
from tests.security.world import build_world, dispose, table_counts

POST_ROUTES = sorted(rule for method, rule in TABLE if method == "POST")
SETTINGS = settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    derandomize=True,
)


def form_field_names() -> list[str]:
    names: set[str] = set()
    for module_info in pkgutil.walk_packages(memberplatform.__path__, "memberplatform."):
        if not module_info.name.endswith(".forms"):
            continue
        module = importlib.import_module(module_info.name)
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, FlaskForm) and cls is not FlaskForm:
                names.update(
                    name
                    for name, value in vars(cls).items()
                    if hasattr(value, "field_class") or hasattr(value, "kwargs")
                )
                for base in cls.__mro__:
                    names.update(
                        name for name, value in vars(base).items() if hasattr(value, "field_class")
                    )
    return sorted(names | {"amount", "units", "note", "phone", "member", "locale", "next"})


FIELDS = form_field_names()

hostile_text = st.one_of(
    st.text(max_size=40),
    st.sampled_from(
        [
            "",
            " ",
            "\x00",
            "a\x00b",
            "<script>alert(1)</script>",
            '"><img src=x onerror=alert(1)>',
            "' OR 1=1 --",
            "=cmd|' /C calc'!A0",
            "../../etc/passwd",
            "\u202e\u0000\ud7ff",
            "𠜎𠜱𠝹" * 50,
            "x" * 10_000,
            "1" * 400,
        ]
    ),
)
hostile_number = st.one_of(
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.sampled_from(
        ["-1", "0", "1e309", "NaN", "inf", "0x10", "1.5", "９", "²", "１２", "", "99999999999999"]
    ),
)
value = st.one_of(hostile_text, hostile_number)
form = st.dictionaries(
    st.one_of(st.sampled_from(FIELDS), st.text(min_size=1, max_size=10)),
    st.one_of(value, st.lists(value, min_size=2, max_size=3)),  # lists = duplicated fields
    max_size=8,
)
encoding = st.sampled_from(["form", "multipart", "json", "text", "none"])


def send(client, path, data, how, headers=None):
    headers = dict(headers or {})
    if how == "form":
        return client.post(path, data=data, headers=headers)
    if how == "multipart":
        return client.post(path, data=data, headers=headers, content_type="multipart/form-data")
    if how == "json":
        return client.post(
            path, data=json.dumps(data), headers=headers, content_type="application/json"
        )
    if how == "text":
        return client.post(
            path, data=str(data).encode(), headers=headers, content_type="text/plain"
        )
    return client.post(path, headers=headers)


def check_one(world, actor, rule, data, how, hx):
    case = TABLE[("POST", rule)]
    path = case.path(world) if callable(case.path) else (case.path or rule)
    before = table_counts(world.app)
    response = send(world.client(actor), path, data, how, {"HX-Request": "true"} if hx else {})
    assert response.status_code < 500, (actor, rule, data, how, response.status_code)
    if response.status_code >= 400:
        assert table_counts(world.app) == before, (actor, rule, data, how, response.status_code)
    with world.app.app_context():
        assert run_integrity_checks() == [], (actor, rule, data, how)


@pytest.mark.parametrize("actor", ["member", "staff"])
def test_hostile_forms_never_500_and_refusals_change_nothing(world, actor):
    @SETTINGS
    @given(rule=st.sampled_from(POST_ROUTES), data=form, how=encoding, hx=st.booleans())
    def run(rule, data, how, hx):
        check_one(world, actor, rule, data, how, hx)

    run()


# --- CSRF on: missing, forged, replayed and expired tokens are refused, changing nothing ------


@pytest.fixture(scope="module")
def csrf_world(tmp_path_factory):
    path = tmp_path_factory.mktemp("csrf")
    world = build_world(
        f"sqlite:///{path / 'csrf.sqlite3'}", str(path / "uploads"), WTF_CSRF_ENABLED=True
    )
    yield world
    dispose(world)


def _csrf_login(world, actor):
    client = world.app.test_client()
    from tests.conftest import PASSWORD
    from tests.security.world import CAST

    token = csrf_token(client)
    response = client.post(
        "/auth/login",
        data={"csrf_token": token, "phone": CAST[actor]["phone"], "password": PASSWORD},
    )
    assert response.status_code == 303
    return client, token


def _expired_token(app, client) -> str:
    """This session's own token, signed two hours ago (Flask-WTF's limit is one hour)."""
    import itsdangerous.timed
    from itsdangerous import URLSafeTimedSerializer

    with client.session_transaction() as sess:
        raw = sess["csrf_token"]
    original = itsdangerous.timed.TimestampSigner.get_timestamp
    itsdangerous.timed.TimestampSigner.get_timestamp = lambda self: int(original(self)) - 7200
    try:
        return URLSafeTimedSerializer(app.secret_key, salt="wtf-csrf-token").dumps(raw)
    finally:
        itsdangerous.timed.TimestampSigner.get_timestamp = original


@pytest.mark.parametrize("actor", ["member", "staff"])
def test_bad_csrf_tokens_are_refused_on_every_post(csrf_world, actor):
    client, token_before_login = _csrf_login(csrf_world, actor)
    other, _ = _csrf_login(csrf_world, "other_member")
    current = csrf_token(client, "/auth/password")
    expired = _expired_token(csrf_world.app, client)
    bad_tokens = {
        "missing": None,
        "garbage": "not-a-token",
        "pre-login (replayed after login)": token_before_login,
        "another session's": csrf_token(other, "/auth/password"),
        "expired": expired,
    }
    for rule in POST_ROUTES:
        if rule == "/auth/register":
            continue  # 404 before any form: registration is off
        case = TABLE[("POST", rule)]
        for label, token in bad_tokens.items():
            path = case.path(csrf_world) if callable(case.path) else (case.path or rule)
            before = table_counts(csrf_world.app)
            data = {} if token is None else {"csrf_token": token}
            response = client.post(path, data=data)
            assert response.status_code == 400, (rule, label, response.status_code)
            assert table_counts(csrf_world.app) == before, (rule, label)
    # the right token still works afterwards (nothing was consumed by the refusals)
    assert client.post("/points/check-in", data={"csrf_token": current}).status_code == 303
