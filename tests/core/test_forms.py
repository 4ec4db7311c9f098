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
