from __future__ import annotations

from flask_wtf.file import FileField, FileRequired
from wtforms import DateField, HiddenField, IntegerField, RadioField, SelectField, StringField
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional

from memberplatform.points.services import MAX_AMOUNT
from memberplatform.web.forms import Form
from memberplatform.web.i18n import lazy_gettext as _l

REQUIRED = _l("This field is required.")


class HistoryFilterForm(Form):
    """GET filters of the history (no CSRF: it changes nothing)."""

    class Meta:
        csrf = False

    kind = SelectField(
        _l("Type"),
        choices=[
            ("", _l("All")),
            ("earn", _l("Earned")),
            ("spend", _l("Spent")),
            ("refund", _l("Refunded")),
            ("adjust", _l("Corrected")),
            ("expire", _l("Expired")),
        ],
        validators=[Optional()],
    )
    since = DateField(_l("From"), validators=[Optional()])
    until = DateField(_l("To"), validators=[Optional()])


class GrantForm(Form):
    member = StringField(
        _l("Member number or mobile number"),
        validators=[DataRequired(REQUIRED), Length(max=32)],
    )
    mode = RadioField(
        _l("Type"),
        choices=[
            ("grant", _l("Grant (the member is notified)")),
            ("adjust", _l("Correction (may be negative)")),
        ],
        default="grant",
    )
    amount = IntegerField(
        _l("Points"),
        validators=[
            InputRequired(REQUIRED),
            NumberRange(
                min=-MAX_AMOUNT,
                max=MAX_AMOUNT,
                message=_l("Enter a whole number from -%(max)s to %(max)s.", max=MAX_AMOUNT),
            ),
        ],
    )
    note = StringField(_l("Reason"), validators=[DataRequired(REQUIRED), Length(max=200)])
    idempotency_key = HiddenField(validators=[DataRequired(), Length(max=64)])


class BulkGrantForm(Form):
    file = FileField(
        _l("CSV file"),
        validators=[FileRequired(REQUIRED)],
        description=_l(
            "Columns: member_no (or phone), points, note. UTF-8 or GBK (Excel) both work."
        ),
    )


class ConfirmBulkForm(Form):
    digest = HiddenField(validators=[DataRequired(), Length(min=64, max=64)])
