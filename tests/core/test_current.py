"""``web.current``: the request's objects read from Flask's context variables instead of
through its proxies (the session check, the header and the badges run on every page)."""

from __future__ import annotations

import flask_login.utils
from flask import g, request
from flask_login import current_user

from memberplatform.web.current import app_globals, current_request, signed_in_user
from tests.core.counting import count_calls


def test_signed_in_user_is_current_users_object_in_every_state(app, client, auth, make_user):
    seen = []

    @app.get("/_test/signed-in")
    def _signed_in():
        first = signed_in_user()
        seen.append((first, current_user._get_current_object(), signed_in_user()))
        return "ok"

    with app.app_context():  # no request: Flask-Login has no user either
        assert current_user._get_current_object() is None
        assert signed_in_user() is None
        assert app_globals() is g._get_current_object()
    with app.test_request_context("/me?x=1"):
        assert current_request() is request._get_current_object()
        anonymous = signed_in_user()  # loads as current_user would: anonymous
        assert not anonymous.is_authenticated
        assert signed_in_user() is anonymous is current_user._get_current_object()
    member = make_user()
    auth.login(member)
    assert client.get("/_test/signed-in").status_code == 200
    first, via_proxy, again = seen[0]
    assert first.is_authenticated and first.id == member.id
    assert first is via_proxy is again


def test_a_page_reads_the_signed_in_user_through_flask_login_twice_at_most(
    app, client, auth, make_user, monkeypatch
):
    """Flask-Login's own ``_get_user`` runs for its user loader and its template context
    processor; the platform's code (access rule, header, badges, navigation, the view)
    takes the loaded user from ``g``. It ran 7 times a ``/me`` before (the header and
    badges kept, as a worker has them after its first page)."""
    calls = count_calls(monkeypatch, flask_login.utils, "_get_user")
    auth.login(make_user())
    for path, headers in (("/me", {}), ("/points/badge", {"HX-Request": "true"})):
        client.get(path, headers=headers)  # the worker's header and badges kept
        calls.clear()
        assert client.get(path, headers=headers).status_code == 200
        assert len(calls) <= 2, (path, len(calls))


def test_the_requests_language_is_chosen_once_without_flask_babels_lookups(
    app, client, auth, make_user, monkeypatch
):
    """``i18n.current_locale`` chooses the request's language with the app's selector
    the first time it is asked and keeps it where Flask-Babel keeps it: Flask-Babel
    then finds the same ``Locale``, a language switch (``refresh``) is followed, and
    Flask-Babel's own ``get_locale`` (its context and extension looked up through
    ``g`` and ``current_app``) is not needed on a page."""
    import flask_babel

    from memberplatform.web import i18n

    original = flask_babel.get_locale
    asked = count_calls(monkeypatch, i18n, "get_locale")
    with app.test_request_context(headers={"Accept-Language": "en"}):
        chosen = i18n.current_locale()
        assert str(chosen) == "en" and i18n.current_locale() is chosen
        assert original() is chosen  # where Flask-Babel keeps it
        from flask import session

        session["locale"] = "zh_CN"
        flask_babel.refresh()
        assert i18n.current_locale().language == "zh" and original() is i18n.current_locale()
    with app.app_context():  # no request: the default, as Flask-Babel chooses it
        assert i18n.current_locale() == flask_babel.Locale.parse(app.config["BABEL_DEFAULT_LOCALE"])
    auth.login(make_user())
    for path, headers in (("/me", {}), ("/points/badge", {"HX-Request": "true"})):
        assert client.get(path, headers=headers).status_code == 200
    english = client.get("/me", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert "My points" in english
    assert asked == []
