"""Forms of the kits domain (Flask-WTF, CSRF on every POST form)."""

from __future__ import annotations

from flask_wtf.file import FileField
from wtforms import (
    BooleanField,
    DateField,
    DateTimeLocalField,
    HiddenField,
    IntegerField,
    RadioField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional

from memberplatform.web.forms import Form
from memberplatform.web.i18n import lazy_gettext as _l

REQUIRED = _l("This field is required.")
WHOLE_NUMBER = _l("Enter a whole number.")
DATETIME_FORMAT = "%Y-%m-%dT%H:%M"


def _int_or_none(value):
    if value in (None, ""):
        return None
    return int(value)


class ClaimForm(Form):
    point = RadioField(
        _l("Pickup point"), coerce=int, validators=[InputRequired(_l("Choose a pickup point."))]
    )
    mode = RadioField(
        _l("How do you get the kit?"),
        choices=[("pickup", _l("I pick it up at the point")), ("delivery", _l("Deliver it"))],
        default="pickup",
        validators=[InputRequired(REQUIRED)],
    )
    address = TextAreaField(
        _l("Delivery address"),
        validators=[Length(max=200)],
        description=_l("Only for delivery: street, building, room, and who receives it."),
        render_kw={"rows": 2, "autocomplete": "street-address"},
    )
    request_key = HiddenField()


class ConfirmForm(Form):
    """A POST with only the CSRF token (cancel, mark picked up)."""


class ShipForm(Form):
    tracking_note = StringField(
        _l("Courier and tracking number"),
        validators=[DataRequired(REQUIRED), Length(max=200)],
        description=_l("The member sees this note, e.g. “顺丰 SF1234567890”."),
    )


class CodeForm(Form):
    class Meta:
        csrf = False  # a lookup (GET): nothing changes

    code = StringField(
        _l("Pickup code"),
        validators=[DataRequired(REQUIRED), Length(max=20)],
        description=_l("8 letters and digits, or scan the QR code with the phone camera."),
        render_kw={"autocomplete": "off", "autocapitalize": "characters", "spellcheck": "false"},
    )


class PhoneForm(Form):
    class Meta:
        csrf = False

    phone = StringField(
        _l("Member's mobile number"),
        validators=[DataRequired(REQUIRED), Length(max=20)],
        render_kw={"inputmode": "tel", "autocomplete": "off"},
    )


class KitTypeForm(Form):
    name = StringField(_l("Kit name"), validators=[DataRequired(REQUIRED), Length(max=80)])
    description = TextAreaField(
        _l("Description"), validators=[Length(max=2000)], render_kw={"rows": 3}
    )
    contents = TextAreaField(
        _l("Contents"),
        validators=[DataRequired(REQUIRED), Length(max=2000)],
        description=_l("One item per line with its quantity, e.g. “口罩 ×20”."),
        render_kw={"rows": 4},
    )
    picture = FileField(_l("Picture (PNG or JPEG, optional)"))
    opens_at = DateTimeLocalField(
        _l("Claims open"),
        format=DATETIME_FORMAT,
        validators=[InputRequired(REQUIRED)],
    )
    closes_at = DateTimeLocalField(
        _l("Claims close"),
        format=DATETIME_FORMAT,
        validators=[InputRequired(REQUIRED)],
    )
    points_cost = IntegerField(
        _l("Points cost"),
        default=0,
        validators=[
            InputRequired(WHOLE_NUMBER),
            NumberRange(min=0, max=100_000, message=_l("Enter 0 to 100000 points.")),
        ],
        description=_l("0 for a free kit."),
    )
    required_tag = StringField(
        _l("Required member tag"),
        validators=[Length(max=40)],
        description=_l("Optional, e.g. returned-to-work. Leave empty for every member."),
    )
    enterprise_ids = SelectMultipleField(_l("Only for these enterprises"), coerce=int)
    branch_ids = SelectMultipleField(_l("Only for these union branches"), coerce=int)
    delivery_allowed = BooleanField(_l("Members may ask for delivery"))
    active = BooleanField(_l("Offered to members"), default=True)


class PointForm(Form):
    name = StringField(_l("Point name"), validators=[DataRequired(REQUIRED), Length(max=80)])
    address = StringField(_l("Address"), validators=[DataRequired(REQUIRED), Length(max=200)])
    hours = StringField(
        _l("Opening hours"),
        validators=[Length(max=120)],
        description=_l("e.g. 工作日 9:00–17:30"),
    )
    active = BooleanField(_l("Open for pickups"), default=True)


class StockForm(Form):
    point = SelectField(
        _l("Pickup point"), coerce=int, validators=[InputRequired(_l("Choose a pickup point."))]
    )
    delta = IntegerField(
        _l("Units"),
        validators=[InputRequired(WHOLE_NUMBER)],
        description=_l("Units received; a negative number removes damaged or lost units."),
    )
    reason = StringField(
        _l("Reason"),
        validators=[DataRequired(_l("Give a reason for the change.")), Length(max=200)],
    )


STATUS_CHOICES = [
    ("", _l("Any status")),
    ("reserved", _l("Reserved")),
    ("picked_up", _l("Picked up")),
    ("shipped", _l("Shipped")),
    ("cancelled", _l("Cancelled")),
    ("expired", _l("Expired")),
]


class ClaimFilterForm(Form):
    class Meta:
        csrf = False

    status = SelectField(_l("Status"), choices=STATUS_CHOICES, default="")
    kit = SelectField(_l("Kit"), coerce=_int_or_none, validators=[Optional()])
    point = SelectField(_l("Pickup point"), coerce=_int_or_none, validators=[Optional()])
    mode = SelectField(
        _l("Mode"),
        choices=[
            ("", _l("Pickup or delivery")),
            ("pickup", _l("Pickup")),
            ("delivery", _l("Delivery")),
        ],
        default="",
    )
    day_from = DateField(_l("Claimed from"), validators=[Optional()])
    day_to = DateField(_l("Claimed until"), validators=[Optional()])
