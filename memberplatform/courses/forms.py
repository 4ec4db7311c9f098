"""Forms of the courses domain (CSRF by Flask-WTF; the search form is a plain GET form)."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from flask import current_app
from flask_wtf.file import FileField
from wtforms import (
    BooleanField,
    DateTimeLocalField,
    IntegerField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
    URLField,
)
from wtforms.validators import URL, DataRequired, InputRequired, Length, NumberRange, Optional

from memberplatform.web.forms import Form
from memberplatform.web.i18n import lazy_gettext as _l

from .models import EDUCATION_LEVELS

REQUIRED = _l("This field is required.")
WHOLE = _l("Enter a whole number.")
DATETIME = _l("Enter a date and time.")
BAD_URL = _l("Enter a full web address starting with http:// or https://.")

STATUS_CHOICES = [
    ("draft", _l("Draft (staff only)")),
    ("published", _l("Published")),
    ("archived", _l("Archived")),
]
EDUCATION_LABELS = {
    "junior_high": _l("Junior high school"),
    "senior_high": _l("Senior high school"),
    "vocational": _l("Vocational school"),
    "college": _l("College (大专)"),
    "bachelor": _l("Bachelor's degree"),
    "postgrad": _l("Postgraduate"),
}


def _tz() -> ZoneInfo:
    return ZoneInfo(current_app.config.get("BABEL_DEFAULT_TIMEZONE", "Asia/Shanghai"))


def to_utc(local: datetime | None) -> datetime | None:
    """A naive datetime typed in Asia/Shanghai, as UTC."""
    if local is None:
        return None
    return local.replace(tzinfo=_tz()).astimezone(UTC)


def to_local(value: datetime | None) -> datetime | None:
    """A stored UTC datetime as the naive local time a datetime-local input shows."""
    if value is None:
        return None
    return value.astimezone(_tz()).replace(tzinfo=None)


def _when(label, required: bool = False, **kw) -> DateTimeLocalField:
    validators = [InputRequired(REQUIRED)] if required else [Optional()]
    return DateTimeLocalField(
        label, validators=validators, format="%Y-%m-%dT%H:%M", render_kw={"step": 60}, **kw
    )


def _url(label) -> URLField:
    return URLField(
        label,
        validators=[Optional(), Length(max=300), URL(require_tld=False, message=BAD_URL)],
        filters=[lambda v: v.strip() if v else v],
    )


class CourseForm(Form):
    title = StringField(_l("Title"), validators=[DataRequired(REQUIRED), Length(max=200)])
    teacher = StringField(_l("Teacher"), validators=[Length(max=100)])
    category = StringField(
        _l("Category"),
        validators=[Length(max=40)],
        description=_l("e.g. 职业技能, 劳模课堂, 法律服务"),
    )
    description = TextAreaField(_l("Description"), validators=[Length(max=5000)])
    cover = FileField(_l("Cover image (PNG or JPEG)"))
    status = SelectField(_l("Status"), choices=STATUS_CHOICES, default="draft")
    capacity = IntegerField(
        _l("Capacity"),
        validators=[Optional(), NumberRange(min=0, max=100_000)],
        description=_l("Leave empty for unlimited places."),
    )
    points_cost = IntegerField(
        _l("Points cost"), default=0, validators=[InputRequired(WHOLE), NumberRange(0, 100_000)]
    )
    points_reward = IntegerField(
        _l("Points reward on completion"),
        default=0,
        validators=[InputRequired(WHOLE), NumberRange(0, 100_000)],
    )
    enrol_opens_at = _when(_l("Enrolment opens (Beijing time)"))
    enrol_closes_at = _when(_l("Enrolment closes (Beijing time)"))
    live_starts_at = _when(
        _l("Live session starts (Beijing time)"),
        description=_l("Only for a course that is a scheduled live session."),
    )
    live_url = _url(_l("Live session link"))

    def values(self) -> dict:
        return {
            "title": self.title.data.strip(),
            "teacher": (self.teacher.data or "").strip(),
            "category": (self.category.data or "").strip(),
            "description": self.description.data or "",
            "status": self.status.data,
            "capacity": self.capacity.data,
            "points_cost": self.points_cost.data,
            "points_reward": self.points_reward.data,
            "enrol_opens_at": to_utc(self.enrol_opens_at.data),
            "enrol_closes_at": to_utc(self.enrol_closes_at.data),
            "live_starts_at": to_utc(self.live_starts_at.data),
            "live_url": self.live_url.data or None,
        }


class LessonForm(Form):
    title = StringField(_l("Title"), validators=[DataRequired(REQUIRED), Length(max=200)])
    position = IntegerField(
        _l("Lesson order"), validators=[InputRequired(WHOLE), NumberRange(1, 1000)], default=1
    )
    body = TextAreaField(_l("Text"), validators=[Length(max=20_000)])
    video_url = _url(_l("Video link"))
    file = FileField(_l("File (PDF, PNG or JPEG)"))
    live_starts_at = _when(_l("Live session starts (Beijing time)"))
    live_url = _url(_l("Live session link"))

    def values(self) -> dict:
        return {
            "title": self.title.data.strip(),
            "position": self.position.data,
            "body": self.body.data or "",
            "video_url": self.video_url.data or None,
            "live_starts_at": to_utc(self.live_starts_at.data),
            "live_url": self.live_url.data or None,
        }


class ExamSessionForm(Form):
    qualification = StringField(
        _l("Qualification"), validators=[DataRequired(REQUIRED), Length(max=200)]
    )
    description = TextAreaField(_l("Description"), validators=[Length(max=5000)])
    courses = SelectMultipleField(_l("Linked courses"), coerce=int, validate_choice=True)
    requires_completion = BooleanField(_l("Candidates must have completed the linked courses"))
    starts_at = _when(_l("Exam starts (Beijing time)"), required=True)
    place = StringField(_l("Place"), validators=[Length(max=200)])
    online = BooleanField(_l("Online exam"))
    seats = IntegerField(
        _l("Seats"), validators=[InputRequired(WHOLE), NumberRange(min=0, max=100_000)]
    )
    registration_deadline = _when(_l("Registration deadline (Beijing time)"), required=True)
    status = SelectField(_l("Status"), choices=STATUS_CHOICES, default="draft")

    def values(self) -> dict:
        return {
            "qualification": self.qualification.data.strip(),
            "description": self.description.data or "",
            "requires_completion": bool(self.requires_completion.data),
            "starts_at": to_utc(self.starts_at.data),
            "place": (self.place.data or "").strip(),
            "online": bool(self.online.data),
            "seats": self.seats.data,
            "registration_deadline": to_utc(self.registration_deadline.data),
            "status": self.status.data,
        }


class RegistrationForm(Form):
    real_name = StringField(
        _l("Real name"),
        validators=[DataRequired(REQUIRED), Length(max=50)],
        description=_l("As on your ID card."),
        render_kw={"autocomplete": "name"},
    )
    id_number = StringField(
        _l("ID card number"),
        validators=[DataRequired(REQUIRED), Length(max=30)],
        description=_l("18 characters. It is stored for the exam roster and shown masked."),
        render_kw={"autocomplete": "off", "inputmode": "text"},
    )
    education = SelectField(
        _l("Education"),
        choices=[("", _l("Choose…"))] + [(k, EDUCATION_LABELS[k]) for k in EDUCATION_LEVELS],
        validators=[DataRequired(REQUIRED)],
    )
    years_of_work = IntegerField(
        _l("Years of work"),
        validators=[InputRequired(WHOLE), NumberRange(0, 70, message=_l("From 0 to 70."))],
        render_kw={"inputmode": "numeric"},
    )


RESULT_CHOICES = [("", _l("No result yet")), ("pass", _l("Pass")), ("fail", _l("Fail"))]
ATTENDANCE_CHOICES = [("", _l("Not recorded")), ("yes", _l("Present")), ("no", _l("Absent"))]


class ResultForm(Form):
    attended = SelectField(_l("Attendance"), choices=ATTENDANCE_CHOICES, default="")
    theory_score = IntegerField(
        _l("Theory score"), validators=[Optional(), NumberRange(0, 100, message=_l("0 to 100."))]
    )
    practical_score = IntegerField(
        _l("Practical score"),
        validators=[Optional(), NumberRange(0, 100, message=_l("0 to 100."))],
    )
    passed = SelectField(_l("Result"), choices=RESULT_CHOICES, default="")

    def values(self) -> dict:
        tri = {"": None, "yes": True, "no": False, "pass": True, "fail": False}
        return {
            "attended": tri[self.attended.data or ""],
            "theory_score": self.theory_score.data,
            "practical_score": self.practical_score.data,
            "passed": tri[self.passed.data or ""],
        }
