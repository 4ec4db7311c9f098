"""The session cookie slides its expiry, re-issued at most every SESSION_REFRESH_SECONDS."""

from __future__ import annotations

import time

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
