"""The page-or-fragment contract, HX-Redirect for login, CSRF on htmx and forms."""

from __future__ import annotations


def test_full_page_and_fragment_from_one_url(client):
    page = client.get("/auth/login")
    assert page.status_code == 200
    body = page.get_data(as_text=True)
    assert body.lstrip().startswith("<!doctype html>") and 'id="login-form"' in body
    assert "HX-Request" in page.headers["Vary"]

    fragment = client.get("/auth/login", headers={"HX-Request": "true"})
    text = fragment.get_data(as_text=True)
    assert fragment.status_code == 200
    assert "<html" not in text and text.strip().startswith("<form")
    assert 'id="login-form"' in text
    assert "HX-Request" in fragment.headers["Vary"]


def test_boosted_request_gets_the_full_page(client):
    response = client.get("/auth/login", headers={"HX-Request": "true", "HX-Boosted": "true"})
    assert "<html" in response.get_data(as_text=True)


def test_invalid_form_over_htmx_returns_only_the_form(client):
    response = client.post(
        "/auth/login", data={"phone": "", "password": ""}, headers={"HX-Request": "true"}
    )
    assert response.status_code == 422
    text = response.get_data(as_text=True)
    assert "<html" not in text and "此项为必填项" in text


def test_htmx_request_needing_login_gets_hx_redirect(client):
    response = client.get("/me", headers={"HX-Request": "true"})
    assert response.status_code == 401
    assert response.headers["HX-Redirect"].startswith("/auth/login")


def test_normal_request_needing_login_redirects(client):
    response = client.get("/me")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/auth/login?next=/me")


def test_htmx_login_success_uses_hx_redirect(client, make_user):
    user = make_user()
    response = client.post(
        "/auth/login",
        data={"phone": user.phone, "password": "Correct-Horse-42"},
        headers={"HX-Request": "true"},
    )
    assert response.headers["HX-Redirect"] == "/me"


def test_csrf_enforced_on_post_without_token(app_factory, make_user):
    app = app_factory(WTF_CSRF_ENABLED=True)
    client = app.test_client()
    response = client.post("/auth/login", data={"phone": "13800000001", "password": "x" * 9})
    assert response.status_code == 400
    assert "表单已过期" in response.get_data(as_text=True)


def test_csrf_failure_on_htmx_asks_for_refresh(app_factory):
    app = app_factory(WTF_CSRF_ENABLED=True)
    response = app.test_client().post(
        "/lang", data={"locale": "en"}, headers={"HX-Request": "true"}
    )
    assert response.status_code == 400
    assert response.headers["HX-Refresh"] == "true"


def test_csrf_token_on_body_for_htmx(app_factory):
    app = app_factory(WTF_CSRF_ENABLED=True)
    client = app.test_client()
    page = client.get("/").get_data(as_text=True)
    import re

    token = re.search(r'hx-headers=\'\{"X-CSRFToken": "([^"]+)"\}\'', page).group(1)
    response = client.post("/lang", data={"locale": "en"}, headers={"X-CSRFToken": token})
    assert response.status_code == 303


def test_a_sessions_signed_csrf_token_is_reused_for_a_minute_and_still_accepted(
    app_factory, monkeypatch
):
    """Signing the token is the costliest helper of a small page: a worker hands the
    same session's signed token out again for CSRF_REUSE_SECONDS, then signs anew.
    Another session never gets it; a reused token is accepted, in the header and in a
    form; the page's forms carry the same token as its htmx header."""
    import re

    from memberplatform.web import templating

    app = app_factory(WTF_CSRF_ENABLED=True)
    header = re.compile(r'hx-headers=\'\{"X-CSRFToken": "([^"]+)"\}\'')
    field = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')
    client, other = app.test_client(), app.test_client()
    first = client.get("/auth/login").get_data(as_text=True)
    token = header.search(first).group(1)
    assert field.search(first).group(1) == token
    assert header.search(client.get("/").get_data(as_text=True)).group(1) == token
    assert header.search(other.get("/").get_data(as_text=True)).group(1) != token
    now = templating.time.monotonic()
    monkeypatch.setattr(templating.time, "monotonic", lambda: now + 61)
    fresh = header.search(client.get("/").get_data(as_text=True)).group(1)
    with client.session_transaction() as stored:
        signed, when = app.extensions["csrf_signed"][stored["csrf_token"]]
    assert when == now + 61 and signed == fresh  # signed again (the same second: same text)
    for used in (token, fresh):
        response = client.post("/lang", data={"locale": "en"}, headers={"X-CSRFToken": used})
        assert response.status_code == 303
    response = client.post("/lang", data={"locale": "zh_CN", "csrf_token": token})
    assert response.status_code == 303
