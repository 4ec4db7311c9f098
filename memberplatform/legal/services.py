"""The verbs of the legal domain: the menu, requests, the lawyer desk, admin figures.

Every status change goes through :func:`_transition`, which looks the move up
in :data:`TRANSITIONS` (the one table of allowed moves), applies it with a
conditional ``UPDATE … WHERE status = :current`` (so two concurrent actions
cannot both succeed), and writes a :class:`RequestEvent` *and* an audit entry.
A claim is ``UPDATE … WHERE lawyer_id IS NULL AND status = 'submitted'``:
of ten lawyers racing, exactly one changes a row.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import sqlalchemy.orm as so
from flask import current_app, has_app_context, url_for
from flask_babel import get_locale
from werkzeug.datastructures import FileStorage

from memberplatform.audit.services import record
from memberplatform.auth.models import User, UserRole
from memberplatform.core.errors import DomainError, Forbidden, NotFound
from memberplatform.core.uploads import DOCUMENTS, Upload, save_upload, upload_root
from memberplatform.db import insert_ignoring_conflicts, utcnow
from memberplatform.extensions import db
from memberplatform.legal import sla
from memberplatform.legal.models import (
    AWAITING_LAWYER,
    Category,
    ConsultationSession,
    Hotline,
    ItemLawyer,
    LawyerClient,
    LegalRequest,
    MenuItem,
    RequestAttachment,
    RequestCounter,
    RequestEvent,
    RequestMessage,
)
from memberplatform.web.i18n import lazy_gettext as _l

MAX_QUESTION = 5000
MAX_MESSAGE = 5000
MAX_FILES = 3
MAX_FIELDS = 12
FIELD_TYPES = ("text", "textarea", "number", "date")
FIELD_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
CODE_RE = re.compile(r"^[a-z0-9][a-z0-9-]{1,39}$")
TEXT_LIMITS = {"text": 200, "textarea": 2000}

#: (action, current status) -> new status. Every allowed move; anything else is refused.
TRANSITIONS: dict[tuple[str, str], str] = {
    ("claim", "submitted"): "assigned",
    ("reassign", "submitted"): "assigned",
    ("reassign", "assigned"): "assigned",
    ("reassign", "waiting_for_member"): "waiting_for_member",
    ("reassign", "answered"): "answered",
    ("ask_info", "assigned"): "waiting_for_member",
    ("ask_info", "answered"): "waiting_for_member",
    ("answer", "assigned"): "answered",
    ("answer", "waiting_for_member"): "answered",
    ("answer", "answered"): "answered",
    ("follow_up", "submitted"): "submitted",
    ("follow_up", "assigned"): "assigned",
    ("follow_up", "waiting_for_member"): "assigned",
    ("follow_up", "answered"): "assigned",
    ("hand_back", "assigned"): "submitted",
    ("hand_back", "waiting_for_member"): "submitted",
    ("close", "submitted"): "closed",
    ("close", "assigned"): "closed",
    ("close", "waiting_for_member"): "closed",
    ("close", "answered"): "closed",
}
ACTIONS = tuple(sorted({action for action, _ in TRANSITIONS}))

STATUS_LABELS: dict[str, Any] = {
    "submitted": _l("Waiting for a lawyer"),
    "assigned": _l("A lawyer is working on it"),
    "waiting_for_member": _l("Waiting for the member's information"),
    "answered": _l("Answered"),
    "closed": _l("Closed"),
}
STATUS_CLASSES = {
    "submitted": "status-warn",
    "assigned": "status-warn",
    "waiting_for_member": "status-bad",
    "answered": "status-ok",
    "closed": "",
}
ACTION_LABELS: dict[str, Any] = {
    "submit": _l("Submitted"),
    "claim": _l("Claimed by a lawyer"),
    "reassign": _l("Reassigned"),
    "ask_info": _l("More information requested"),
    "answer": _l("Answered"),
    "follow_up": _l("Follow-up from the member"),
    "hand_back": _l("Handed back to the queue"),
    "close": _l("Closed"),
    "rate": _l("Rated"),
}
MESSAGE_LABELS: dict[str, Any] = {
    "question": _l("Question"),
    "follow_up": _l("Follow-up"),
    "answer": _l("Answer"),
    "info_request": _l("Request for more information"),
    "note": _l("Internal note"),
}
FIELD_TYPE_LABELS: dict[str, Any] = {
    "text": _l("Short text"),
    "textarea": _l("Long text"),
    "number": _l("Number"),
    "date": _l("Date"),
}


class InvalidTransition(DomainError):
    def __init__(self, status: str) -> None:
        super().__init__(
            _l(
                "This request is now “%(status)s”; that cannot be done. Reload the page.",
                status=STATUS_LABELS.get(status, status),
            )
        )
        self.status = status


def next_status(action: str, current: str) -> str:
    """The status after ``action`` from ``current``, or :class:`InvalidTransition`."""
    try:
        return TRANSITIONS[(action, current)]
    except KeyError:
        raise InvalidTransition(current) from None


def now_utc() -> datetime:
    return utcnow()


def normalize_party(name: str | None) -> str | None:
    """The comparison key of an enterprise name: no spaces or punctuation, case-folded."""
    if not name:
        return None
    key = re.sub(r"[\s\u3000()（）·.,，、\"'“”-]+", "", name).casefold()
    return key[:120] or None


def _uid(user: Any) -> int:
    return user if isinstance(user, int) else user.id


def _is_admin(user: Any) -> bool:
    return "admin" in getattr(user, "roles", ())


def _clean_text(value: str | None, *, limit: int, field: str, required: bool, empty_msg=None):
    text = (value or "").replace("\r\n", "\n").strip()
    if required and not text:
        raise DomainError(empty_msg or _l("This field is required."), field=field)
    if len(text) > limit:
        limit_text, count_text = f"{limit:,}", f"{len(text):,}"
        raise DomainError(
            _l(
                "At most %(limit)s characters, please (you wrote %(count)s).",
                limit=limit_text,
                count=count_text,
            ),
            field=field,
        )
    return text


# --- field definitions of menu items -------------------------------------------


@dataclass(frozen=True)
class FieldSpec:
    name: str
    label_zh: str
    label_en: str
    type: str
    required: bool

    @property
    def form_name(self) -> str:
        return "f_" + self.name

    def label(self) -> str:
        locale = get_locale() if has_app_context() else None
        if locale is not None and locale.language == "en" and self.label_en:
            return self.label_en
        return self.label_zh


def parse_field_definitions(raw: Any) -> list[dict[str, Any]]:
    """Check staff-entered field definitions (JSON text or a list); returns clean dicts."""
    import json

    if isinstance(raw, str):
        text = raw.strip()
        if not text:
            return []
        try:
            raw = json.loads(text)
        except ValueError:
            raise DomainError(_l("The fields are not valid JSON."), field="fields") from None
    if not isinstance(raw, list):
        raise DomainError(_l("The fields must be a JSON list of objects."), field="fields")
    if len(raw) > MAX_FIELDS:
        raise DomainError(_l("At most %(n)s extra fields.", n=MAX_FIELDS), field="fields")
    clean: list[dict[str, Any]] = []
    seen: set[str] = set()
    for index, spec in enumerate(raw, start=1):
        if not isinstance(spec, dict):
            raise DomainError(_l("Field %(n)s is not an object.", n=index), field="fields")
        name = str(spec.get("name", "")).strip()
        if not FIELD_NAME_RE.match(name) or name in seen:
            raise DomainError(
                _l(
                    "Field %(n)s: the name must be unique, lower-case letters, digits or _.",
                    n=index,
                ),
                field="fields",
            )
        seen.add(name)
        label_zh = str(spec.get("label_zh", "")).strip()
        label_en = str(spec.get("label_en", "") or "").strip()
        if not label_zh or len(label_zh) > 60 or len(label_en) > 80:
            raise DomainError(
                _l(
                    "Field %(n)s needs a Chinese label (label_zh) of at most 60 characters.",
                    n=index,
                ),
                field="fields",
            )
        kind = spec.get("type", "text")
        if kind not in FIELD_TYPES:
            raise DomainError(
                _l(
                    "Field %(n)s: the type must be one of %(types)s.",
                    n=index,
                    types=", ".join(FIELD_TYPES),
                ),
                field="fields",
            )
        required = spec.get("required", False)
        if not isinstance(required, bool):
            raise DomainError(
                _l("Field %(n)s: required must be true or false.", n=index), field="fields"
            )
        clean.append(
            {
                "name": name,
                "label_zh": label_zh,
                "label_en": label_en,
                "type": kind,
                "required": required,
            }
        )
    return clean


def field_specs(item: MenuItem) -> list[FieldSpec]:
    return [
        FieldSpec(
            name=spec["name"],
            label_zh=spec["label_zh"],
            label_en=spec.get("label_en") or "",
            type=spec.get("type", "text"),
            required=bool(spec.get("required")),
        )
        for spec in item.fields or []
    ]


def clean_field_value(spec: FieldSpec, raw: str | None) -> str | None:
    """One item field's value, checked against its definition (raises next to it)."""
    text = (raw or "").strip()
    if not text:
        if spec.required:
            raise DomainError(_l("This field is required."), field=spec.form_name)
        return None
    if spec.type in TEXT_LIMITS:
        return _clean_text(
            text, limit=TEXT_LIMITS[spec.type], field=spec.form_name, required=spec.required
        )
    if spec.type == "number":
        try:
            number = Decimal(text.replace(",", "").replace("，", ""))
        except InvalidOperation:
            number = None
        if number is None or not number.is_finite() or number < 0 or number > Decimal("1e12"):
            raise DomainError(_l("Enter a number, e.g. 12000 or 3.5."), field=spec.form_name)
        return format(number.normalize(), "f")
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise DomainError(_l("Enter a date as YYYY-MM-DD."), field=spec.form_name) from None
    if not date(1950, 1, 1) <= day <= date(2100, 12, 31):
        raise DomainError(_l("Enter a date as YYYY-MM-DD."), field=spec.form_name)
    return day.isoformat()


def clean_field_values(item: MenuItem, raw: dict[str, str | None]) -> dict[str, str]:
    values: dict[str, str] = {}
    for spec in field_specs(item):
        value = clean_field_value(spec, raw.get(spec.name))
        if value is not None:
            values[spec.name] = value
    return values


# --- the menu (staff) -----------------------------------------------------------


def save_category(
    actor: Any, category: Category | None, *, name: str, name_en: str | None, position: int = 0
) -> Category:
    name = _clean_text(name, limit=60, field="name", required=True)
    clash = db.session.scalar(
        sa.select(Category.id).where(
            Category.name == name, Category.id != (category.id if category else -1)
        )
    )
    if clash is not None:
        raise DomainError(_l("A category with this name exists already."), field="name")
    if category is None:
        category = Category(name=name)
        db.session.add(category)
    category.name = name
    category.name_en = (name_en or "").strip()[:80] or None
    category.position = position or 0
    db.session.flush()
    record(actor, "legal.category.save", "legal_category", category.id, {"name": name})
    return category


def save_item(
    actor: Any,
    item: MenuItem | None,
    *,
    category_id: int,
    code: str,
    title: str,
    title_en: str | None,
    description: str,
    prepare: str,
    sla_hours: int,
    fields: Any,
    lawyer_ids: Iterable[int] = (),
    position: int = 0,
) -> MenuItem:
    """Create or edit a menu item (field definitions checked, lawyers by id)."""
    if db.session.get(Category, category_id) is None:
        raise DomainError(_l("Choose a category."), field="category_id")
    code = (code or "").strip().lower()
    if not CODE_RE.match(code):
        raise DomainError(
            _l("2–40 lower-case letters, digits or hyphens, e.g. unpaid-wages."), field="code"
        )
    clash = db.session.scalar(
        sa.select(MenuItem.id).where(
            MenuItem.code == code, MenuItem.id != (item.id if item else -1)
        )
    )
    if clash is not None:
        raise DomainError(_l("Another item has this code."), field="code")
    title = _clean_text(title, limit=80, field="title", required=True)
    description = _clean_text(description, limit=4000, field="description", required=True)
    prepare = _clean_text(prepare, limit=4000, field="prepare", required=False)
    if isinstance(sla_hours, bool) or not isinstance(sla_hours, int) or not 1 <= sla_hours <= 400:
        raise DomainError(_l("Enter whole working hours from 1 to 400."), field="sla_hours")
    definitions = parse_field_definitions(fields)
    wanted = set(lawyer_ids)
    if wanted:
        lawyers = set(
            db.session.scalars(
                sa.select(UserRole.user_id).where(
                    UserRole.user_id.in_(wanted), UserRole.role == "lawyer"
                )
            )
        )
        if lawyers != wanted:
            raise DomainError(_l("Only lawyers can take menu items."), field="lawyer_ids")
    created = item is None
    if item is None:
        item = MenuItem(code=code, sla_hours=sla_hours)
        db.session.add(item)
    item.category_id = category_id
    item.code = code
    item.title = title
    item.title_en = (title_en or "").strip()[:120] or None
    item.description = description
    item.prepare = prepare
    item.sla_hours = sla_hours
    item.fields = definitions
    item.position = position or 0
    item.lawyer_rows = [row for row in item.lawyer_rows if row.lawyer_id in wanted] + [
        ItemLawyer(lawyer_id=lawyer_id) for lawyer_id in sorted(wanted - item.lawyer_ids)
    ]
    db.session.flush()
    record(
        actor,
        "legal.item.create" if created else "legal.item.update",
        "legal_menu_item",
        item.id,
        {"code": code, "sla_hours": sla_hours, "lawyers": sorted(wanted)},
    )
    return item


def item_in_use(item: MenuItem) -> bool:
    return (
        db.session.scalar(
            sa.select(LegalRequest.id).where(LegalRequest.item_id == item.id).limit(1)
        )
        is not None
    )


def set_item_status(actor: Any, item: MenuItem, status: str) -> MenuItem:
    """Retire an item (no new requests; open ones continue) or bring it back."""
    if status not in ("active", "retired"):
        raise ValueError(status)
    before = item.status
    item.status = status
    db.session.flush()
    record(actor, f"legal.item.{status}", "legal_menu_item", item.id, {"from": before})
    return item


def delete_item(actor: Any, item: MenuItem) -> None:
    """Delete an item nobody has used; an item in use can only be retired."""
    locked = db.session.scalar(
        sa.select(MenuItem).where(MenuItem.id == item.id).with_for_update(of=MenuItem)
    )
    if locked is None:
        raise NotFound(_l("This item does not exist."))
    if item_in_use(locked):
        raise DomainError(_l("This item has requests: retire it instead of deleting it."))
    record(actor, "legal.item.delete", "legal_menu_item", locked.id, {"code": locked.code})
    db.session.delete(locked)
    db.session.flush()


def menu(*, include_retired: bool = False) -> list[tuple[Category, list[MenuItem]]]:
    categories = db.session.scalars(sa.select(Category).order_by(Category.position, Category.id))
    query = sa.select(MenuItem).order_by(MenuItem.position, MenuItem.id)
    if not include_retired:
        query = query.where(MenuItem.status == "active")
    by_category: dict[int, list[MenuItem]] = {}
    for item in db.session.scalars(query).unique():
        by_category.setdefault(item.category_id, []).append(item)
    return [
        (category, by_category.get(category.id, []))
        for category in categories
        if include_retired or by_category.get(category.id)
    ]


def save_hotline(
    actor: Any, hotline: Hotline | None, *, name: str, number: str, hours: str, active: bool
) -> Hotline:
    name = _clean_text(name, limit=60, field="name", required=True)
    number = _clean_text(number, limit=30, field="number", required=True)
    if not re.fullmatch(r"[0-9+\- ()]{3,30}", number):
        raise DomainError(_l("Digits, spaces, + - ( ) only."), field="number")
    hours = _clean_text(hours, limit=80, field="hours", required=True)
    if hotline is None:
        hotline = Hotline(name=name, number=number, hours=hours)
        db.session.add(hotline)
    hotline.name, hotline.number, hotline.hours, hotline.active = name, number, hours, active
    db.session.flush()
    record(actor, "legal.hotline.save", "legal_hotline", hotline.id, {"number": number})
    return hotline


def hotlines() -> list[Hotline]:
    return list(
        db.session.scalars(
            sa.select(Hotline).where(Hotline.active).order_by(Hotline.position, Hotline.id)
        )
    )


def save_session(
    actor: Any,
    session: ConsultationSession | None,
    *,
    title: str,
    speaker: str,
    starts_at: datetime,
    duration_minutes: int,
    venue: str,
    description: str,
    cancelled: bool = False,
) -> ConsultationSession:
    title = _clean_text(title, limit=120, field="title", required=True)
    speaker = _clean_text(speaker, limit=60, field="speaker", required=True)
    venue = _clean_text(venue, limit=200, field="venue", required=False)
    description = _clean_text(description, limit=2000, field="description", required=False)
    if starts_at is None or starts_at.tzinfo is None:
        raise DomainError(_l("Enter the start date and time."), field="starts_at")
    if not isinstance(duration_minutes, int) or not 10 <= duration_minutes <= 480:
        raise DomainError(_l("Enter 10 to 480 minutes."), field="duration_minutes")
    if session is None:
        session = ConsultationSession(title=title, speaker=speaker, starts_at=starts_at)
        db.session.add(session)
    session.title, session.speaker, session.starts_at = title, speaker, starts_at
    session.duration_minutes, session.venue, session.description = (
        duration_minutes,
        venue,
        description,
    )
    session.cancelled = cancelled
    db.session.flush()
    record(
        actor,
        "legal.session.save",
        "legal_session",
        session.id,
        {"title": title, "starts_at": starts_at.isoformat(), "cancelled": cancelled},
    )
    return session


def upcoming_sessions(now: datetime, limit: int = 10) -> list[ConsultationSession]:
    """Sessions not yet over, soonest first (cancelled ones are shown as cancelled)."""
    rows = db.session.scalars(
        sa.select(ConsultationSession)
        .where(ConsultationSession.starts_at >= now - timedelta(hours=8))
        .order_by(ConsultationSession.starts_at, ConsultationSession.id)
        .limit(limit * 2)
    )
    return [s for s in rows if s.starts_at + timedelta(minutes=s.duration_minutes) > now][:limit]


# --- lawyers' clients (conflict check) -------------------------------------------


def lawyers() -> list[User]:
    return list(
        db.session.scalars(
            sa.select(User)
            .join(UserRole, UserRole.user_id == User.id)
            .where(UserRole.role == "lawyer", User.status == "active")
            .order_by(User.id)
        ).unique()
    )


def add_client(actor: Any, lawyer: User, enterprise_name: str) -> LawyerClient:
    name = _clean_text(enterprise_name, limit=120, field="enterprise_name", required=True)
    if "lawyer" not in lawyer.roles:
        raise DomainError(_l("Choose a lawyer."), field="lawyer_id")
    key = normalize_party(name)
    insert_ignoring_conflicts(
        db.session,
        LawyerClient.__table__,
        {
            "lawyer_id": lawyer.id,
            "enterprise_key": key,
            "enterprise_name": name,
            "created_at": utcnow(),
        },
        ["lawyer_id", "enterprise_key"],
    )
    record(actor, "legal.client.add", "user", lawyer.id, {"enterprise": name})
    return db.session.get(LawyerClient, (lawyer.id, key))


def remove_client(actor: Any, lawyer_id: int, enterprise_key: str) -> None:
    row = db.session.get(LawyerClient, (lawyer_id, enterprise_key))
    if row is None:
        raise NotFound(_l("This entry does not exist."))
    record(actor, "legal.client.remove", "user", lawyer_id, {"enterprise": row.enterprise_name})
    db.session.delete(row)
    db.session.flush()


def client_keys(lawyer: Any) -> set[str]:
    return set(
        db.session.scalars(
            sa.select(LawyerClient.enterprise_key).where(LawyerClient.lawyer_id == _uid(lawyer))
        )
    )


def clients() -> list[LawyerClient]:
    return list(
        db.session.scalars(
            sa.select(LawyerClient).order_by(LawyerClient.lawyer_id, LawyerClient.enterprise_name)
        )
    )


def may_take(lawyer: Any, item: MenuItem) -> bool:
    return not item.lawyer_ids or _uid(lawyer) in item.lawyer_ids


def has_conflict(lawyer: Any, request: LegalRequest) -> bool:
    return bool(request.other_party_key) and request.other_party_key in client_keys(lawyer)


def _check_can_take(lawyer: User, request: LegalRequest) -> None:
    if "lawyer" not in lawyer.roles and not _is_admin(lawyer):
        raise DomainError(_l("Only lawyers can take requests."), field="lawyer_id")
    if not may_take(lawyer, request.item):
        raise DomainError(
            _l("This lawyer does not serve “%(item)s”.", item=request.item.title), field="lawyer_id"
        )
    if has_conflict(lawyer, request):
        raise DomainError(
            _l(
                "Conflict of interest: this lawyer serves %(party)s, the other party.",
                party=request.other_party,
            ),
            field="lawyer_id",
        )


# --- requests ---------------------------------------------------------------------


def _next_number(now: datetime) -> str:
    year = now.astimezone(sla.SHANGHAI).year
    insert_ignoring_conflicts(
        db.session, RequestCounter.__table__, {"year": year, "last": 0}, ["year"]
    )
    last = db.session.scalar(
        sa.update(RequestCounter)
        .where(RequestCounter.year == year)
        .values(last=RequestCounter.last + 1)
        .returning(RequestCounter.last)
    )
    return f"FL-{year}-{last:06d}"


def _max_upload_bytes() -> int:
    return int(current_app.config.get("LEGAL_ATTACHMENT_MAX_MB", 3) * 1024 * 1024)


def _real_files(files: Iterable[FileStorage] | None) -> list[FileStorage]:
    return [f for f in files or [] if f is not None and f.filename]


def _check_files(files: Sequence[FileStorage]) -> None:
    if len(files) > MAX_FILES:
        raise DomainError(_l("Attach at most %(n)s files.", n=MAX_FILES), field="attachments")


def _attach(files: Sequence[FileStorage], message: RequestMessage, user: Any) -> None:
    """Store the files (content checked); on any refusal remove what was written."""
    stored: list[Upload] = []
    try:
        for file in files:
            upload = save_upload(
                file,
                kinds=DOCUMENTS,
                max_bytes=_max_upload_bytes(),
                uploaded_by=_uid(user),
                field="attachments",
            )
            stored.append(upload)
            db.session.add(
                RequestAttachment(
                    request_id=message.request_id, message_id=message.id, upload_id=upload.id
                )
            )
    except DomainError:
        for upload in stored:
            Path(upload_root() / upload.storage_name).unlink(missing_ok=True)
        raise
    db.session.flush()


def _event(
    request: LegalRequest,
    actor: Any,
    action: str,
    before: str | None,
    after: str,
    detail: dict[str, Any] | None = None,
) -> None:
    db.session.add(
        RequestEvent(
            request_id=request.id,
            actor_id=_uid(actor) if actor is not None else None,
            action=action,
            from_status=before,
            to_status=after,
            detail=detail,
        )
    )
    record(
        actor,
        f"legal.request.{action}",
        "legal_request",
        request.id,
        {"from": before, "to": after, **(detail or {})},
    )


def _message(
    request: LegalRequest, author: Any, kind: str, body: str, now: datetime
) -> RequestMessage:
    message = RequestMessage(
        request_id=request.id,
        author_id=_uid(author),
        kind=kind,
        body=body,
        internal=kind == "note",
        created_at=now,
    )
    db.session.add(message)
    db.session.flush()
    return message


def _transition(
    request: LegalRequest,
    action: str,
    actor: Any,
    *,
    now: datetime,
    values: dict[str, Any] | None = None,
    where: Iterable[Any] = (),
    detail: dict[str, Any] | None = None,
) -> str:
    """Apply ``action`` with a conditional UPDATE on the status we saw; returns the new one."""
    before = request.status
    after = next_status(action, before)
    result = db.session.execute(
        sa.update(LegalRequest)
        .where(LegalRequest.id == request.id, LegalRequest.status == before, *where)
        .values(status=after, **(values or {}))
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        db.session.refresh(request)
        raise InvalidTransition(request.status)
    db.session.refresh(request)
    _event(request, actor, action, before, after, detail)
    return after


def request_link(request: LegalRequest) -> str:
    try:
        return url_for("legal.request_detail", request_id=request.id)
    except RuntimeError:
        return f"/legal/requests/{request.id}"


def _notify(user_id: int | None, kind: str, request: LegalRequest, **params: Any) -> None:
    from memberplatform.notifications.services import notify

    if user_id is not None:
        notify(user_id, kind, {"number": request.number, **params}, request_link(request))


def submit_request(
    member: Any,
    item: MenuItem,
    *,
    question: str,
    values: dict[str, str | None] | None = None,
    enterprise_name: str | None = None,
    other_party: str | None = None,
    files: Iterable[FileStorage] | None = None,
    now: datetime | None = None,
) -> LegalRequest:
    """A member orders a menu item: checked question, item fields and files; a number."""
    now = now or now_utc()
    if item.status != "active":
        raise DomainError(_l("This service is no longer offered."))
    question = _clean_text(
        question,
        limit=MAX_QUESTION,
        field="question",
        required=True,
        empty_msg=_l("Please describe your question."),
    )
    clean = clean_field_values(item, values or {})
    enterprise = _clean_text(enterprise_name, limit=120, field="enterprise_name", required=False)
    party = _clean_text(other_party, limit=120, field="other_party", required=False)
    real = _real_files(files)
    _check_files(real)
    request = LegalRequest(
        number=_next_number(now),
        item_id=item.id,
        requester_id=_uid(member),
        status="submitted",
        question=question,
        field_values=clean,
        enterprise_name=enterprise or None,
        other_party=party or None,
        other_party_key=normalize_party(party),
        created_at=now,
        due_at=sla.add_working_hours(now, item.sla_hours),
    )
    db.session.add(request)
    db.session.flush()
    message = _message(request, member, "question", question, now)
    _attach(real, message, member)
    _event(request, member, "submit", None, "submitted", {"number": request.number})
    return request


def claim(lawyer: User, request: LegalRequest, *, now: datetime | None = None) -> LegalRequest:
    """Take an unassigned request: exactly one of many racing lawyers gets it."""
    now = now or now_utc()
    if request.status != "submitted" or request.lawyer_id is not None:
        raise DomainError(_l("Another lawyer has already taken this request."))
    _check_can_take(lawyer, request)
    result = db.session.execute(
        sa.update(LegalRequest)
        .where(
            LegalRequest.id == request.id,
            LegalRequest.lawyer_id.is_(None),
            LegalRequest.status == "submitted",
        )
        .values(status="assigned", lawyer_id=lawyer.id, assigned_at=now)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        db.session.refresh(request)
        raise DomainError(_l("Another lawyer has already taken this request."))
    db.session.refresh(request)
    _event(request, lawyer, "claim", "submitted", "assigned", {"lawyer_id": lawyer.id})
    _notify(request.requester_id, "legal.assigned", request)
    return request


def _require_assigned(lawyer: Any, request: LegalRequest) -> None:
    if request.lawyer_id != _uid(lawyer):
        raise Forbidden(_l("Only the lawyer handling this request can do this."))


def _first_response(request: LegalRequest, now: datetime) -> dict[str, Any]:
    if request.first_response_at is not None:
        return {}
    return {
        "first_response_at": now,
        "first_response_seconds": max(0, int((now - request.created_at).total_seconds())),
    }


def answer(
    lawyer: Any,
    request: LegalRequest,
    body: str,
    *,
    files: Iterable[FileStorage] | None = None,
    now: datetime | None = None,
) -> RequestMessage:
    """The assigned lawyer answers (text, optional files); the member is told."""
    return _lawyer_reply(lawyer, request, "answer", body, files, now)


def ask_for_information(
    lawyer: Any,
    request: LegalRequest,
    body: str,
    *,
    files: Iterable[FileStorage] | None = None,
    now: datetime | None = None,
) -> RequestMessage:
    """The assigned lawyer asks the member for more information (the clock pauses)."""
    return _lawyer_reply(lawyer, request, "ask_info", body, files, now)


def _lawyer_reply(lawyer, request, action, body, files, now) -> RequestMessage:
    now = now or now_utc()
    _require_assigned(lawyer, request)
    next_status(action, request.status)  # refuse before anything is written
    body = _clean_text(
        body,
        limit=MAX_MESSAGE,
        field="body",
        required=True,
        empty_msg=_l("Write your answer or question."),
    )
    real = _real_files(files)
    _check_files(real)
    values = _first_response(request, now)
    if action == "answer":
        values["answered_at"] = now
    _transition(
        request,
        action,
        lawyer,
        now=now,
        values=values,
        where=[LegalRequest.lawyer_id == _uid(lawyer)],
    )
    kind = "answer" if action == "answer" else "info_request"
    message = _message(request, lawyer, kind, body, now)
    _attach(real, message, lawyer)
    _notify(
        request.requester_id,
        "legal.answered" if action == "answer" else "legal.info_requested",
        request,
    )
    return message


def follow_up(
    member: Any,
    request: LegalRequest,
    body: str,
    *,
    files: Iterable[FileStorage] | None = None,
    now: datetime | None = None,
) -> RequestMessage:
    """The requester adds information or a follow-up question; the lawyer's clock restarts."""
    now = now or now_utc()
    if request.requester_id != _uid(member):
        raise Forbidden(_l("Only the member who asked can add follow-ups."))
    after = next_status("follow_up", request.status)
    body = _clean_text(
        body, limit=MAX_MESSAGE, field="body", required=True, empty_msg=_l("Write your message.")
    )
    real = _real_files(files)
    _check_files(real)
    values: dict[str, Any] = {}
    if request.status in ("waiting_for_member", "answered") and after == "assigned":
        values["due_at"] = sla.add_working_hours(now, request.item.sla_hours)
    _transition(
        request,
        "follow_up",
        member,
        now=now,
        values=values,
        where=[LegalRequest.requester_id == _uid(member)],
    )
    message = _message(request, member, "follow_up", body, now)
    _attach(real, message, member)
    _notify(request.lawyer_id, "legal.follow_up", request)
    return message


def hand_back(
    lawyer: Any, request: LegalRequest, reason: str = "", *, now: datetime | None = None
) -> LegalRequest:
    """The assigned lawyer returns the request to the queue (the reason is internal)."""
    now = now or now_utc()
    _require_assigned(lawyer, request)
    next_status("hand_back", request.status)
    reason = _clean_text(reason, limit=MAX_MESSAGE, field="reason", required=False)
    _transition(
        request,
        "hand_back",
        lawyer,
        now=now,
        values={"lawyer_id": None, "assigned_at": None},
        where=[LegalRequest.lawyer_id == _uid(lawyer)],
        detail={"lawyer_id": _uid(lawyer)},
    )
    if reason:
        _message(request, lawyer, "note", reason, now)
    return request


def add_note(actor: Any, request: LegalRequest, body: str, *, now: datetime | None = None):
    """An internal note, seen only by lawyers handling the request and admins."""
    now = now or now_utc()
    if request.lawyer_id != _uid(actor) and not _is_admin(actor):
        raise Forbidden(_l("Only the lawyer handling this request and admins can add notes."))
    if request.status == "closed":
        raise InvalidTransition("closed")
    body = _clean_text(
        body, limit=MAX_MESSAGE, field="note", required=True, empty_msg=_l("Write the note.")
    )
    message = _message(request, actor, "note", body, now)
    record(actor, "legal.request.note", "legal_request", request.id, None)
    return message


def close(actor: Any, request: LegalRequest, *, now: datetime | None = None) -> LegalRequest:
    """The requester (or an admin) closes the request; nothing can be added afterwards."""
    now = now or now_utc()
    if request.requester_id != _uid(actor) and not _is_admin(actor):
        raise Forbidden(_l("Only the member who asked can close the request."))
    _transition(request, "close", actor, now=now, values={"closed_at": now})
    if request.lawyer_id and request.lawyer_id != _uid(actor):
        _notify(request.lawyer_id, "legal.closed", request)
    return request


def rate(
    member: Any,
    request: LegalRequest,
    rating: int,
    comment: str = "",
    *,
    now: datetime | None = None,
) -> LegalRequest:
    """The requester rates the answer once, 1–5 with an optional comment."""
    now = now or now_utc()
    if request.requester_id != _uid(member):
        raise Forbidden(_l("Only the member who asked can rate the answer."))
    if isinstance(rating, bool) or not isinstance(rating, int) or not 1 <= rating <= 5:
        raise DomainError(_l("Choose 1 to 5 stars."), field="rating")
    if request.answered_at is None or request.status not in ("answered", "closed"):
        raise DomainError(_l("You can rate once a lawyer has answered."), field="rating")
    comment = _clean_text(comment, limit=500, field="comment", required=False)
    result = db.session.execute(
        sa.update(LegalRequest)
        .where(
            LegalRequest.id == request.id,
            LegalRequest.rating.is_(None),
            LegalRequest.answered_at.is_not(None),
        )
        .values(rating=rating, rating_comment=comment or None, rated_at=now)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        raise DomainError(_l("You have rated this answer already."), field="rating")
    db.session.refresh(request)
    _event(request, member, "rate", request.status, request.status, {"rating": rating})
    return request


def reassign(
    admin: Any, request: LegalRequest, lawyer: User, *, now: datetime | None = None
) -> LegalRequest:
    """An admin gives the request to another lawyer (eligibility and conflicts checked)."""
    now = now or now_utc()
    if not _is_admin(admin):
        raise Forbidden(_l("Only admins can reassign requests."))
    if lawyer.id == request.lawyer_id:
        raise DomainError(_l("This lawyer already has the request."), field="lawyer_id")
    next_status("reassign", request.status)
    _check_can_take(lawyer, request)
    previous = request.lawyer_id
    same_lawyer = (
        LegalRequest.lawyer_id.is_(None) if previous is None else LegalRequest.lawyer_id == previous
    )
    _transition(
        request,
        "reassign",
        admin,
        now=now,
        values={"lawyer_id": lawyer.id, "assigned_at": now},
        where=[same_lawyer],
        detail={"from_lawyer": previous, "to_lawyer": lawyer.id},
    )
    _notify(lawyer.id, "legal.reassigned_to_you", request)
    if previous is not None:
        _notify(previous, "legal.reassigned_away", request)
    _notify(request.requester_id, "legal.reassigned", request)
    return request


# --- reading ------------------------------------------------------------------------


def can_view(user: Any, request: LegalRequest) -> bool:
    """Requester, assigned lawyer, admins. Nobody else (not staff, not other lawyers)."""
    if user is None or not getattr(user, "is_authenticated", True):
        return False
    uid = _uid(user)
    return uid in (request.requester_id, request.lawyer_id) or _is_admin(user)


def sees_internal(user: Any, request: LegalRequest) -> bool:
    return _is_admin(user) or (request.lawyer_id is not None and _uid(user) == request.lawyer_id)


def record_view(user: Any, request: LegalRequest) -> None:
    """A lawyer's or admin's look at a request goes to the audit trail."""
    if _uid(user) != request.requester_id:
        record(user, "legal.request.view", "legal_request", request.id, {"status": request.status})


def thread(request: LegalRequest, user: Any) -> list[RequestMessage]:
    query = sa.select(RequestMessage).where(RequestMessage.request_id == request.id)
    if not sees_internal(user, request):
        query = query.where(RequestMessage.internal.is_(False))
    return list(db.session.scalars(query.order_by(RequestMessage.id)).unique())


def events(request: LegalRequest) -> list[RequestEvent]:
    return list(
        db.session.scalars(
            sa.select(RequestEvent)
            .where(RequestEvent.request_id == request.id)
            .order_by(RequestEvent.id)
        ).unique()
    )


def attachment_of(request: LegalRequest, attachment_id: int, user: Any) -> RequestAttachment:
    attachment = db.session.get(RequestAttachment, attachment_id)
    if attachment is None or attachment.request_id != request.id:
        raise NotFound(_l("This file does not exist."))
    return attachment


def is_overdue(request: LegalRequest, now: datetime) -> bool:
    return request.status in AWAITING_LAWYER and request.due_at < now


def overdue_clause(now: datetime):
    return sa.and_(LegalRequest.status.in_(AWAITING_LAWYER), LegalRequest.due_at < now)


def my_requests_query(member: Any) -> sa.Select:
    return (
        sa.select(LegalRequest)
        .where(LegalRequest.requester_id == _uid(member))
        .order_by(LegalRequest.id.desc())
    )


def queue_query(user: Any) -> sa.Select:
    """Unassigned requests, oldest first; for a lawyer only items they may take."""
    query = sa.select(LegalRequest).where(
        LegalRequest.status == "submitted", LegalRequest.lawyer_id.is_(None)
    )
    if "lawyer" in user.roles:
        anyone = ~sa.exists().where(ItemLawyer.item_id == LegalRequest.item_id)
        mine = sa.exists().where(
            ItemLawyer.item_id == LegalRequest.item_id, ItemLawyer.lawyer_id == _uid(user)
        )
        query = query.where(sa.or_(anyone, mine))
    return query.order_by(LegalRequest.created_at, LegalRequest.id)


def desk_list_options() -> tuple[Any, ...]:
    """What the lawyer desk's lists load of each request: its row and menu item, not
    the requester's and lawyer's users (joined by default, each a whole ``users``
    row) nor the question's text and form values (JSON, parsed per row). Touching
    one of those on a listed request raises instead of querying once per row."""
    return (
        so.raiseload(LegalRequest.requester),
        so.raiseload(LegalRequest.lawyer),
        so.defer(LegalRequest.question, raiseload=True),
        so.defer(LegalRequest.field_values, raiseload=True),
    )


def cases_query(lawyer: Any, status: str | None = None) -> sa.Select:
    query = sa.select(LegalRequest).where(LegalRequest.lawyer_id == _uid(lawyer))
    if status:
        query = query.where(LegalRequest.status == status)
    return query.order_by(LegalRequest.due_at, LegalRequest.id)


def case_counts(lawyer: Any) -> dict[str, int]:
    """The lawyer's cases per status, from the (lawyer_id, status) index alone."""
    return dict(
        db.session.execute(
            sa.select(LegalRequest.status, sa.func.count())
            .where(LegalRequest.lawyer_id == _uid(lawyer))
            .group_by(LegalRequest.status)
        ).all()
    )


def admin_query(
    *, item_id: int | None = None, status: str | None = None, overdue: bool = False, now=None
) -> sa.Select:
    query = sa.select(LegalRequest)
    if item_id:
        query = query.where(LegalRequest.item_id == item_id)
    if status:
        query = query.where(LegalRequest.status == status)
    if overdue:
        query = query.where(overdue_clause(now or now_utc()))
    return query.order_by(LegalRequest.id.desc())


@dataclass
class Figures:
    total: int
    per_item: list[tuple[str, int]]
    median_first_response_seconds: int | None
    overdue: int
    average_rating: float | None
    ratings: int
    open: int


def figures(now: datetime | None = None) -> Figures:
    """The admin figures, from aggregate queries only (a constant number of them)."""
    now = now or now_utc()
    per_item = [
        (title, count)
        for title, count in db.session.execute(
            sa.select(MenuItem.title, sa.func.count(LegalRequest.id))
            .join(LegalRequest, LegalRequest.item_id == MenuItem.id)
            .group_by(MenuItem.id, MenuItem.title)
            .order_by(sa.func.count(LegalRequest.id).desc(), MenuItem.title)
        )
    ]
    totals = db.session.execute(
        sa.select(
            sa.func.count(LegalRequest.id),
            sa.func.count(sa.case((overdue_clause(now), 1))),
            sa.func.avg(LegalRequest.rating),
            sa.func.count(LegalRequest.rating),
            sa.func.count(LegalRequest.first_response_seconds),
            sa.func.count(sa.case((LegalRequest.status != "closed", 1))),
        )
    ).one()
    total, overdue, average, ratings, responded, still_open = totals
    median = None
    if responded:
        # the middle one or two values, fetched by offset (same SQL on both engines)
        middle = db.session.scalars(
            sa.select(LegalRequest.first_response_seconds)
            .where(LegalRequest.first_response_seconds.is_not(None))
            .order_by(LegalRequest.first_response_seconds)
            .offset((responded - 1) // 2)
            .limit(2 if responded % 2 == 0 else 1)
        ).all()
        median = int(statistics.mean(middle))
    return Figures(
        total=total or 0,
        per_item=per_item,
        median_first_response_seconds=median,
        overdue=overdue or 0,
        average_rating=round(float(average), 2) if average is not None else None,
        ratings=ratings or 0,
        open=still_open or 0,
    )


def admin_ids() -> list[int]:
    return list(
        db.session.scalars(
            sa.select(User.id)
            .join(UserRole, UserRole.user_id == User.id)
            .where(UserRole.role == "admin", User.status == "active")
            .order_by(User.id)
        )
    )


def notify_overdue(now: datetime | None = None) -> int:
    """Tell the assigned lawyer and every admin about each overdue request, once per deadline."""
    from memberplatform.notifications.services import notify

    now = now or now_utc()
    admins = admin_ids()
    sent = 0
    for request in db.session.scalars(
        sa.select(LegalRequest).where(overdue_clause(now)).order_by(LegalRequest.id)
    ).unique():
        deadline = int(request.due_at.timestamp())
        recipients = ([request.lawyer_id] if request.lawyer_id else []) + admins
        for user_id in dict.fromkeys(recipients):
            if notify(
                user_id,
                "legal.overdue",
                {"number": request.number, "item": request.item.title},
                request_link(request),
                dedupe_key=f"legal.overdue:{request.id}:{deadline}:{user_id}",
            ):
                sent += 1
    db.session.flush()
    return sent


def export_rows(query: sa.Select, *, with_question: bool, now: datetime):
    """Rows of the admin CSV (lazily, in chunks)."""
    from memberplatform.web.i18n import local_datetime

    for request in db.session.scalars(query.execution_options(yield_per=200)):
        requester = request.requester
        row = [
            request.number,
            request.item.title,
            str(STATUS_LABELS.get(request.status, request.status)),
            local_datetime(request.created_at, "short"),
            requester.name if requester else "",
            requester.member_no if requester else "",
            request.enterprise_name or "",
            request.other_party or "",
            request.lawyer.name if request.lawyer else "",
            local_datetime(request.first_response_at, "short"),
            round(request.first_response_seconds / 3600, 1)
            if request.first_response_seconds is not None
            else "",
            local_datetime(request.closed_at, "short"),
            "1" if is_overdue(request, now) else "0",
            request.rating or "",
            request.rating_comment or "",
        ]
        if with_question:
            row.append(request.question)
        yield row
