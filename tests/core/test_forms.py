"""The shared form base: WTForms' own messages in the request's language."""

from __future__ import annotations

from wtforms import StringField
from wtforms.validators import DataRequired

from memberplatform.web.forms import Form


class _NameForm(Form):
    name = StringField(validators=[DataRequired()])


def test_builtin_messages_follow_the_language(app):
    for accept, expected in (("zh-CN", "该字段是必填字段。"), ("en", "This field is required.")):
        with app.test_request_context(
            "/", method="POST", data={}, headers={"Accept-Language": accept}
        ):
            form = _NameForm(meta={"csrf": False})
            assert not form.validate()
            assert form.name.errors == [expected]


def test_a_forms_csrf_token_is_signed_only_when_the_form_is_rendered(app, monkeypatch):
    from flask import session

    from memberplatform.web import templating

    signed: list[str] = []
    real = templating.generate_csrf

    def counting():
        signed.append("x")
        return real()

    monkeypatch.setattr(templating, "generate_csrf", counting)
    with app.test_request_context("/", method="POST", data={"name": "x"}):
        form = _NameForm(meta={"csrf": True})  # as in production (tests turn it off)
        form.validate()  # a form only validated (a claim that redirects) signs nothing
        assert signed == []
        html = str(form.csrf_token())
        assert len(signed) == 1 and session.get("csrf_token")
        token = templating.csrf_token_value()
        assert f'value="{token}"' in html and form.csrf_token.current_token == token
        assert str(form.csrf_token()) == html and len(signed) == 1  # rendered again: the same
