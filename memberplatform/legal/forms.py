"""Forms of the legal domain (the item's own fields are added per item)."""

from __future__ import annotations

from wtforms import (
    BooleanField,
    DateTimeLocalField,
    IntegerField,
    MultipleFileField,
    RadioField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
    ValidationError,
    widgets,
)
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional

from memberplatform.core.errors import DomainError
from memberplatform.legal import services
from memberplatform.legal.models import STATUSES
from memberplatform.web.forms import Form
from memberplatform.web.i18n import lazy_gettext as _l

REQUIRED = _l("This field is required.")
FILES_HELP = _l("Optional: up to 3 files, PDF, PNG or JPEG, at most 3 MB each.")


def _too_long(limit: int):
    return Length(max=limit, message=_l("At most %(max)d characters, please."))


class RequestForm(Form):
    question = TextAreaField(
        _l("Your question"),
        validators=[DataRequired(_l("Please describe your question.")), _too_long(5000)],
        description=_l(
            "Describe what happened and what you want to know (at most 5,000 characters)."
        ),
        render_kw={"rows": 8, "maxlength": 5000},
    )
    on_behalf = BooleanField(_l("I am asking on behalf of an enterprise"))
    enterprise_name = StringField(
        _l("Enterprise name"),
        validators=[_too_long(120)],
        description=_l("Only when you ask on behalf of an enterprise."),
    )
    other_party = StringField(
        _l("The other party (enterprise or person)"),
        validators=[_too_long(120)],
        description=_l(
            "E.g. your employer. Lawyers who serve the other party will not take your request."
        ),
    )
    attachments = MultipleFileField(
        _l("Attachments"),
        description=FILES_HELP,
        render_kw={"accept": "application/pdf,image/png,image/jpeg"},
    )

    def validate_enterprise_name(self, field) -> None:
        if self.on_behalf.data and not (field.data or "").strip():
            raise ValidationError(_l("Enter the name of the enterprise."))


def _spec_validator(spec: services.FieldSpec):
    def check(form, field) -> None:
        try:
            services.clean_field_value(spec, field.data)
        except DomainError as error:
            raise ValidationError(str(error.message)) from None

    return check


def request_form_for(item) -> RequestForm:
    """The request form with the item's own fields (``f_<name>``) added."""

    class ItemRequestForm(RequestForm):
        pass

    for spec in services.field_specs(item):
        kwargs = {"validators": [_spec_validator(spec)]}
        attrs: dict = {"required": True} if spec.required else {}
        if spec.type == "textarea":
            field = TextAreaField(spec.label(), render_kw={**attrs, "rows": 4}, **kwargs)
        elif spec.type == "number":
            field = StringField(spec.label(), render_kw={**attrs, "inputmode": "decimal"}, **kwargs)
        elif spec.type == "date":
            field = StringField(
                spec.label(),
                render_kw={**attrs, "type": "date"},
                description="YYYY-MM-DD",
                **kwargs,
            )
        else:
            field = StringField(spec.label(), render_kw=attrs, **kwargs)
        setattr(ItemRequestForm, spec.form_name, field)
    return ItemRequestForm()


class FollowUpForm(Form):
    body = TextAreaField(
        _l("Your message"),
        validators=[DataRequired(_l("Write your message.")), _too_long(5000)],
        render_kw={"rows": 4},
    )
    attachments = MultipleFileField(_l("Attachments"), description=FILES_HELP)


class ReplyForm(Form):
    """The lawyer's reply: an answer, or a request for more information."""

    body = TextAreaField(
        _l("Your reply"),
        validators=[DataRequired(_l("Write your answer or question.")), _too_long(5000)],
        render_kw={"rows": 6},
    )
    attachments = MultipleFileField(_l("Attachments"), description=FILES_HELP)


class NoteForm(Form):
    note = TextAreaField(
        _l("Internal note (lawyers and admins only)"),
        validators=[DataRequired(_l("Write the note.")), _too_long(5000)],
        render_kw={"rows": 3},
    )


class HandBackForm(Form):
    reason = TextAreaField(
        _l("Reason (internal)"), validators=[_too_long(5000)], render_kw={"rows": 2}
    )


class CloseForm(Form):
    pass


class RateForm(Form):
    rating = RadioField(
        _l("Your rating"),
        choices=[(str(n), "★" * n) for n in range(5, 0, -1)],
        validators=[InputRequired(_l("Choose 1 to 5 stars."))],
    )
    comment = TextAreaField(
        _l("Comment (optional)"), validators=[_too_long(500)], render_kw={"rows": 2}
    )


class ReassignForm(Form):
    lawyer_id = SelectField(_l("Lawyer"), coerce=int, validators=[InputRequired(REQUIRED)])


class FilterForm(Form):
    class Meta:
        csrf = False

    item = SelectField(_l("Service"), coerce=int, validators=[Optional()])
    status = SelectField(
        _l("Status"), choices=[("", _l("All"))] + [(s, services.STATUS_LABELS[s]) for s in STATUSES]
    )
    overdue = BooleanField(_l("Overdue only"))


class MultiCheckboxField(SelectMultipleField):
    widget = widgets.ListWidget(prefix_label=False)
    option_widget = widgets.CheckboxInput()


class CategoryForm(Form):
    name = StringField(_l("Name (Chinese)"), validators=[DataRequired(REQUIRED), _too_long(60)])
    name_en = StringField(_l("Name (English)"), validators=[_too_long(80)])
    position = IntegerField(_l("Order"), default=0, validators=[Optional()])


class ItemForm(Form):
    category_id = SelectField(_l("Category"), coerce=int, validators=[InputRequired(REQUIRED)])
    code = StringField(
        _l("Code"),
        validators=[DataRequired(REQUIRED), _too_long(40)],
        description=_l("Lower-case letters, digits and hyphens, e.g. unpaid-wages."),
    )
    title = StringField(_l("Title (Chinese)"), validators=[DataRequired(REQUIRED), _too_long(80)])
    title_en = StringField(_l("Title (English)"), validators=[_too_long(120)])
    description = TextAreaField(
        _l("Description"), validators=[DataRequired(REQUIRED), _too_long(4000)]
    )
    prepare = TextAreaField(_l("What to prepare"), validators=[_too_long(4000)])
    sla_hours = IntegerField(
        _l("Response time (working hours)"),
        validators=[InputRequired(REQUIRED), NumberRange(1, 400, _l("From 1 to 400 hours."))],
        description=_l("Working hours: Monday to Friday, 9:00–18:00."),
    )
    fields = TextAreaField(
        _l("Extra form fields (JSON)"),
        validators=[_too_long(8000)],
        description=_l(
            'A list like [{"name": "amount_owed", "label_zh": "拖欠金额（元）", '
            '"label_en": "Amount owed (yuan)", "type": "number", "required": true}]. '
            "Types: text, textarea, number, date."
        ),
        render_kw={"rows": 6, "spellcheck": "false"},
    )
    lawyer_ids = MultiCheckboxField(
        _l("Lawyers who may take it"),
        coerce=int,
        description=_l("None ticked: every lawyer may take it."),
    )
    position = IntegerField(_l("Order"), default=0, validators=[Optional()])


class HotlineForm(Form):
    name = StringField(_l("Display name"), validators=[DataRequired(REQUIRED), _too_long(60)])
    number = StringField(_l("Number"), validators=[DataRequired(REQUIRED), _too_long(30)])
    hours = StringField(
        _l("Hours"),
        validators=[DataRequired(REQUIRED), _too_long(80)],
        description=_l("E.g. Working days 9:00–17:00"),
    )
    active = BooleanField(_l("Shown on the legal page"), default=True)


class SessionForm(Form):
    title = StringField(_l("Title"), validators=[DataRequired(REQUIRED), _too_long(120)])
    speaker = StringField(_l("Lawyer"), validators=[DataRequired(REQUIRED), _too_long(60)])
    starts_at = DateTimeLocalField(
        _l("Starts at (Beijing time)"),
        format=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"],
        validators=[InputRequired(_l("Enter the start date and time."))],
    )
    duration_minutes = IntegerField(
        _l("Duration (minutes)"),
        default=60,
        validators=[InputRequired(REQUIRED), NumberRange(10, 480, _l("Enter 10 to 480 minutes."))],
    )
    venue = StringField(_l("Where to watch"), validators=[_too_long(200)])
    description = TextAreaField(_l("Description"), validators=[_too_long(2000)])
    cancelled = BooleanField(_l("Cancelled"))


class ClientForm(Form):
    lawyer_id = SelectField(_l("Lawyer"), coerce=int, validators=[InputRequired(REQUIRED)])
    enterprise_name = StringField(
        _l("Enterprise the lawyer serves"), validators=[DataRequired(REQUIRED), _too_long(120)]
    )
