"""notify(user, kind, params, link) and reading notifications back."""

from __future__ import annotations

from functools import cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from memberplatform.core.nav import nav_counter
from memberplatform.db import utcnow
from memberplatform.extensions import db
from memberplatform.notifications.models import Notification
from memberplatform.web.i18n import lazy_gettext as _l

#: kind -> translatable message with %(param)s placeholders; domains add theirs
MESSAGES: dict[str, Any] = {}


def register_message(kind: str, message: Any) -> None:
    """Register the (lazy, translatable) text shown for notifications of ``kind``."""
    MESSAGES[kind] = message


def notify(
    user: Any,
    kind: str,
    params: dict[str, Any] | None = None,
    link: str | None = None,
    *,
    dedupe_key: str | None = None,
) -> int | None:
    """Store a notification for ``user`` (id or object) in the current transaction;
    its id.

    With ``dedupe_key``, a second notification for the same event is skipped (None).
    """
    if kind not in MESSAGES:
        raise KeyError(f"unregistered notification kind {kind!r}")
    user_id = getattr(user, "id", user)
    if dedupe_key is None:  # every claim, donation and enrolment: no ORM object to flush
        values = {
            "user_id": user_id,
            "kind": kind,
            "params": params or {},
            "link": link,
            "created_at": utcnow(),
        }
        return db.write(_insert(), values).scalar_one()
    exists = db.session.scalar(
        sa.select(Notification.id).where(Notification.dedupe_key == dedupe_key)
    )
    if exists is not None:
        return None
    notification = Notification(
        user_id=user_id, kind=kind, params=params or {}, link=link, dedupe_key=dedupe_key
    )
    try:  # a concurrent run may insert the same event first: the unique key decides
        with db.session.begin_nested():
            db.session.add(notification)
    except IntegrityError:
        return None
    return notification.id


@cache
def _insert() -> sa.Insert:
    """Built once: every claim, donation and enrolment notifies (``db.write``)."""
    table = Notification.__table__
    names = ("user_id", "kind", "params", "link", "created_at")
    return (
        sa.insert(table)
        .values({name: sa.bindparam(name, type_=table.c[name].type) for name in names})
        .returning(table.c.id)
    )


def render_message(notification: Notification) -> str:
    """The text in the reader's language (the locale of the current request)."""
    message = MESSAGES.get(notification.kind)
    if message is None:
        return notification.kind
    try:
        return str(message) % (notification.params or {})
    except (KeyError, TypeError, ValueError):
        return str(message)


@nav_counter("notifications")
def _unread(user_id: sa.BindParameter) -> sa.ScalarSelect:
    """The header's unread count (read with the other header counts, see core.nav)."""
    return (
        sa.select(sa.func.count(Notification.id))
        .where(Notification.user_id == user_id, Notification.read_at.is_(None))
        .scalar_subquery()
    )


def page_for(user_id: int, *, before_id: int | None = None, limit: int = 20) -> list[Notification]:
    query = sa.select(Notification).where(Notification.user_id == user_id)
    if before_id:
        query = query.where(Notification.id < before_id)
    return list(db.session.scalars(query.order_by(Notification.id.desc()).limit(limit)))


def mark_read(user_id: int, notification_id: int) -> Notification | None:
    """Mark one of the user's notifications read; None if it is not theirs."""
    notification = db.session.get(Notification, notification_id)
    if notification is None or notification.user_id != user_id:
        return None
    if notification.read_at is None:
        notification.read_at = utcnow()
    return notification


def mark_all_read(user_id: int) -> int:
    result = db.session.execute(
        sa.update(Notification)
        .where(Notification.user_id == user_id, Notification.read_at.is_(None))
        .values(read_at=utcnow())
    )
    return result.rowcount


register_message("account.welcome", _l("Welcome to the union member service platform!"))
