"""Forms of the donations domain (CSRF via Flask-WTF; messages in the reader's language)."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from flask import current_app
from flask_wtf.file import FileField
from wtforms import BooleanField, DateField, HiddenField, SelectField, StringField, TextAreaField
from wtforms.fields import DateTimeLocalField, IntegerField
from wtforms.validators import DataRequired, InputRequired, Length, Optional

from memberplatform.web.forms import Form
from memberplatform.web.i18n import lazy_gettext as _l

REQUIRED = _l("This field is required.")
WHOLE = re.compile(r"^\s*-?\d{1,9}\s*$")


class WholeNumberField(IntegerField):
    """An integer field that answers non-numbers with our own localized message."""

    def process_formdata(self, valuelist):
        if not valuelist or not valuelist[0].strip():
            self.data = None
            return
        if not WHOLE.match(valuelist[0]):
            self.data = None
            raise ValueError(_l("Enter a whole number."))
        self.data = int(valuelist[0])


class LocalDateTimeField(DateTimeLocalField):
    """A datetime-local input read in the platform's time zone, returned in UTC."""

    def process_formdata(self, valuelist):
        if not valuelist or not valuelist[0].strip():
            self.data = None
            return
        raw = valuelist[0].strip().replace(" ", "T")
        for fmt in ("%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"):
            try:
                local = datetime.strptime(raw, fmt)
            except ValueError:
                continue
            zone = ZoneInfo(current_app.config.get("BABEL_DEFAULT_TIMEZONE", "Asia/Shanghai"))
            self.data = local.replace(tzinfo=zone).astimezone(UTC)
            return
        self.data = None
        raise ValueError(_l("Enter a date and time."))

    def _value(self):
        if self.raw_data:
            return " ".join(self.raw_data)
        if self.data is None:
            return ""
        zone = ZoneInfo(current_app.config.get("BABEL_DEFAULT_TIMEZONE", "Asia/Shanghai"))
        return self.data.astimezone(zone).strftime("%Y-%m-%dT%H:%M")


class LocalDateField(DateField):
    def process_formdata(self, valuelist):
        if not valuelist or not valuelist[0].strip():
            self.data = None
            return
        try:
            self.data = datetime.strptime(valuelist[0].strip(), "%Y-%m-%d").date()
        except ValueError:
            self.data = None
            raise ValueError(_l("Enter a date.")) from None


def new_key() -> str:
    return uuid.uuid4().hex


class DonateForm(Form):
    units = WholeNumberField(
        _l("How many units"),
        validators=[InputRequired(_l("Enter how many units you donate."))],
        render_kw={"inputmode": "numeric", "min": 1, "autocomplete": "off"},
    )
    show_on_wall = BooleanField(_l("Show my name, masked (张*明), on the donor wall"), default=True)
    idempotency_key = HiddenField()

    def ensure_key(self) -> None:
        if not self.idempotency_key.data:
            self.idempotency_key.data = new_key()


class CampaignForm(Form):
    title = StringField(_l("Title"), validators=[DataRequired(REQUIRED), Length(max=120)])
    story = TextAreaField(_l("Story"), validators=[Length(max=5000)])
    beneficiary_name = StringField(
        _l("Beneficiary"),
        validators=[DataRequired(REQUIRED), Length(max=120)],
        description=_l("For example 武汉科技大学附属普仁医院."),
    )
    beneficiary_type = SelectField(
        _l("Type of beneficiary"),
        choices=[
            ("hospital", _l("Hospital")),
            ("community", _l("Community")),
            ("school", _l("School")),
            ("welfare", _l("Welfare institution")),
            ("workers", _l("Front-line workers")),
            ("other", _l("Other")),
        ],
    )
    item_name = StringField(
        _l("Item"),
        validators=[DataRequired(REQUIRED), Length(max=60)],
        description=_l("What the points become, e.g. 医用口罩. Fixed once there are donations."),
    )
    unit_label = StringField(
        _l("Measure word"), validators=[Length(max=10)], description=_l("For example 只, 瓶, 箱.")
    )
    points_per_unit = WholeNumberField(
        _l("Points per unit"),
        validators=[InputRequired(REQUIRED)],
        description=_l("For example 10 points = 1 mask. Fixed once there are donations."),
        render_kw={"inputmode": "numeric"},
    )
    target_units = WholeNumberField(
        _l("Target units"), validators=[InputRequired(REQUIRED)], render_kw={"inputmode": "numeric"}
    )
    min_units = WholeNumberField(
        _l("Minimum units per donation"),
        validators=[Optional()],
        render_kw={"inputmode": "numeric"},
    )
    max_units = WholeNumberField(
        _l("Maximum units per donation"),
        validators=[Optional()],
        render_kw={"inputmode": "numeric"},
    )
    opens_at = LocalDateTimeField(_l("Opens at"), validators=[InputRequired(REQUIRED)])
    closes_at = LocalDateTimeField(_l("Closes at"), validators=[InputRequired(REQUIRED)])

    def values(self) -> dict:
        return {
            name: getattr(self, name).data
            for name in (
                "title",
                "story",
                "beneficiary_name",
                "beneficiary_type",
                "item_name",
                "unit_label",
                "points_per_unit",
                "target_units",
                "min_units",
                "max_units",
                "opens_at",
                "closes_at",
            )
        }


class FulfilmentForm(Form):
    quantity = WholeNumberField(
        _l("Quantity delivered"),
        validators=[InputRequired(REQUIRED)],
        render_kw={"inputmode": "numeric"},
    )
    delivered_on = LocalDateField(_l("Delivered on"), validators=[InputRequired(REQUIRED)])
    note = TextAreaField(_l("Note"), validators=[Length(max=2000)])
    file = FileField(
        _l("Photo or receipt (optional)"),
        description=_l("PDF, PNG or JPEG, at most 5 MB."),
        render_kw={"accept": ".pdf,.png,.jpg,.jpeg,application/pdf,image/png,image/jpeg"},
    )


class CancelForm(Form):
    reason = TextAreaField(
        _l("Reason (shown to staff; donors are told the campaign was cancelled)"),
        validators=[DataRequired(_l("Give a reason for the cancellation.")), Length(max=500)],
    )


class ConfirmForm(Form):
    """Just the CSRF token, for confirmed staff actions."""
