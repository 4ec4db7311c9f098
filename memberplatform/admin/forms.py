"""Forms of the staff console (Flask-WTF, CSRF); search forms are plain GET query args."""

from __future__ import annotations

from flask_wtf.file import FileField, FileRequired
from wtforms import HiddenField, PasswordField, SelectField, SelectMultipleField, StringField
from wtforms.validators import DataRequired, EqualTo, Length, Regexp
from wtforms.widgets import CheckboxInput, ListWidget

from memberplatform.admin.hooks import ROLE_LABELS
from memberplatform.auth.models import ROLES
from memberplatform.web.forms import Form
from memberplatform.web.i18n import lazy_gettext as _l

REQUIRED = _l("This field is required.")


class MultiCheckboxField(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class ActionForm(Form):
    """A button that changes something (disable, enable, approve, reset): CSRF only."""


class RolesForm(Form):
    roles = MultiCheckboxField(
        _l("Roles"), choices=[(role, ROLE_LABELS[role]) for role in ROLES], validate_choice=False
    )


class TagsForm(Form):
    tags = StringField(
        _l("Tags"),
        validators=[Length(max=900)],
        description=_l("Separate tags with commas, e.g. returned-to-work."),
    )


class ScopeForm(Form):
    branch = SelectField(_l("Limited to the union branch"), choices=[], validate_choice=False)


class RosterUploadForm(Form):
    file = FileField(
        _l("Roster file (CSV)"),
        validators=[FileRequired(REQUIRED)],
        description=_l(
            "Columns: 姓名, 手机号, 会员号, 企业, 基层工会 (or name, phone, member_no, "
            "enterprise, branch). UTF-8, UTF-8 with BOM or GBK (Excel) all work."
        ),
        render_kw={"accept": ".csv,text/csv"},
    )


class RosterConfirmForm(Form):
    sha = HiddenField(validators=[DataRequired(), Regexp(r"^[0-9a-f]{64}$")])


class NameForm(Form):
    name = StringField(_l("Official name"), validators=[DataRequired(REQUIRED), Length(max=120)])


class NewPasswordForm(Form):
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
