"""The session cookie slides its expiry, re-issued at most every SESSION_REFRESH_SECONDS."""

from __future__ import annotations

import time

from flask import request

from memberplatform.web import sessions

HX = {"HX-Request": "true"}


def _set_cookie(response) -> str | None:
    return next((v for k, v in response.headers.items() if k == "Set-Cookie"), None)


def test_unchanged_session_is_resent_only_when_the_refresh_is_due(
    client, auth, make_user, monkeypatch
):
    login = auth.login(make_user())
    assert "session=" in (_set_cookie(login) or "")  # a changed session is always saved
    with client.session_transaction() as session:
        assert abs(session[sessions.ISSUED_KEY] - time.time()) < 60
    quiet = client.get("/points/badge", headers=HX)
    assert quiet.status_code == 200 and _set_cookie(quiet) is None
    # no cookie sent, but the answer still depends on it (and on being an htmx request)
    assert {"Cookie", "HX-Request"} <= set(quiet.vary)
    later = time.time() + 301  # five minutes on
    monkeypatch.setattr(sessions.time, "time", lambda: later)
    refreshed = client.get("/points/badge", headers=HX)
    cookie = _set_cookie(refreshed) or ""
    assert "session=" in cookie and "Expires=" in cookie  # the expiry slides
    with client.session_transaction() as session:
        assert session[sessions.ISSUED_KEY] == int(later)
    assert _set_cookie(client.get("/points/badge", headers=HX)) is None


def test_refresh_on_every_request_when_set_to_zero(app, client, auth, make_user):
    app.config["SESSION_REFRESH_SECONDS"] = 0
    auth.login(make_user())
    assert "session=" in (_set_cookie(client.get("/points/badge", headers=HX)) or "")


def test_an_anonymous_session_is_not_resent(client):
    client.get("/")  # the page's forms put a CSRF token in a new session
    client.get("/")  # Flask-Login marks the anonymous session not fresh, once
    assert _set_cookie(client.get("/")) is None


def _cookie(client) -> str:
    return client.get_cookie("session").value


def test_a_remembered_cookie_still_expires_and_a_changed_one_is_checked(
    app, client, auth, make_user, monkeypatch
):
    auth.login(make_user())
    cookie = _cookie(client)
    assert client.get("/points/badge", headers=HX).status_code == 200
    assert cookie in app.session_interface._verified  # verified once, remembered
    tampered = cookie[:-2] + ("AA" if not cookie.endswith("AA") else "BB")
    client.set_cookie("session", tampered)
    assert client.get("/me").status_code == 302  # a forged signature is still refused
    client.set_cookie("session", cookie)
    assert client.get("/me").status_code == 200
    lifetime = app.permanent_session_lifetime.total_seconds()
    later = time.time() + lifetime + 1
    monkeypatch.setattr(sessions.time, "time", lambda: later)
    # as the server reads it (the test client's jar drops an expired cookie itself)
    assert _opened(app, cookie) == {}  # past its lifetime: signed out
    assert cookie not in app.session_interface._verified


def _opened(app, cookie: str):
    with app.test_request_context("/", headers={"Cookie": f"session={cookie}"}):
        return app.session_interface.open_session(app, request)


def test_a_request_changing_the_session_leaves_the_remembered_copy_alone(
    app, client, auth, make_user
):
    auth.login(make_user())
    cookie = _cookie(client)
    client.get("/points/badge", headers=HX)
    remembered = dict(app.session_interface._verified[cookie][0])
    session = _opened(app, cookie)
    session["locale"] = "en"
    session.pop("_user_id")
    assert app.session_interface._verified[cookie][0] == remembered
    assert _opened(app, cookie)["_user_id"] == remembered["_user_id"]
