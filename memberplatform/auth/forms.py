from __future__ import annotations

from wtforms import BooleanField, PasswordField, StringField
from wtforms.validators import DataRequired, EqualTo, Length

from memberplatform.web.forms import Form
from memberplatform.web.i18n import lazy_gettext as _l

REQUIRED = _l("This field is required.")


class LoginForm(Form):
    phone = StringField(
        _l("Mobile number"),
        validators=[DataRequired(REQUIRED), Length(max=20)],
        render_kw={"autocomplete": "username", "inputmode": "tel"},
    )
    password = PasswordField(
        _l("Password"),
        validators=[DataRequired(REQUIRED), Length(max=128)],
        render_kw={"autocomplete": "current-password"},
    )
    remember = BooleanField(_l("Keep me logged in on this device"))


class _NewPassword:
    password = PasswordField(
        _l("New password"),
        validators=[DataRequired(REQUIRED), Length(max=256)],
        description=_l("At least 8 characters; avoid common passwords."),
        render_kw={"autocomplete": "new-password"},
    )
    confirm = PasswordField(
        _l("Repeat the password"),
        validators=[
            DataRequired(REQUIRED),
            EqualTo("password", message=_l("The two passwords do not match.")),
        ],
        render_kw={"autocomplete": "new-password"},
    )


class ActivateForm(_NewPassword, Form):
    member_no = StringField(
        _l("Member number"),
        validators=[DataRequired(REQUIRED), Length(max=32)],
        description=_l("On your union card or from your union branch."),
    )
    phone = StringField(
        _l("Mobile number"),
        validators=[DataRequired(REQUIRED), Length(max=20)],
        render_kw={"autocomplete": "tel", "inputmode": "tel"},
    )


class RegisterForm(_NewPassword, Form):
    name = StringField(_l("Name"), validators=[DataRequired(REQUIRED), Length(max=50)])
    phone = StringField(
        _l("Mobile number"),
        validators=[DataRequired(REQUIRED), Length(max=20)],
        render_kw={"autocomplete": "tel", "inputmode": "tel"},
    )
    member_no = StringField(_l("Member number (if you have one)"), validators=[Length(max=32)])


class PasswordChangeForm(_NewPassword, Form):
    current_password = PasswordField(
        _l("Current password"),
        validators=[DataRequired(REQUIRED), Length(max=256)],
        render_kw={"autocomplete": "current-password"},
    )
