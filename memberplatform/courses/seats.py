"""Seat rules shared by course enrolments and exam registrations.

Every change of who holds a place happens with the parent row (course or exam
session) locked (``SELECT … FOR UPDATE`` on PostgreSQL; SQLite's write
transactions are ``BEGIN IMMEDIATE``). Places are taken with a conditional
``UPDATE … SET taken = taken + 1 WHERE taken + 1 <= capacity`` (a CHECK
constraint backs it), and a waitlisted entry takes its position from the
parent's ``waitlist_counter`` with ``UPDATE … RETURNING`` — strictly increasing,
never reused, never ``max() + 1``. A freed place goes to the head of the
waitlist in the same transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
import sqlalchemy.orm as so
from flask import current_app

from memberplatform.db import utcnow
from memberplatform.extensions import db


@dataclass(frozen=True)
class SeatRules:
    parent: Any  # Course or ExamSession
    entry: Any  # Enrolment or ExamRegistration
    fk: str  # the entry's column naming the parent
    taken: str  # the parent's counter of places held
    capacity: str  # the parent's capacity (None = unlimited)
    holding_since: str  # the entry's "got a place at" column


def parents_with_lapsed_offers(rules: SeatRules, now: datetime) -> list[int]:
    """Ids of courses / exam sessions holding an offer whose confirmation window passed."""
    fk = getattr(rules.entry, rules.fk)
    return list(
        db.session.scalars(
            sa.select(fk)
            .where(rules.entry.status == "offered", rules.entry.offer_expires_at <= now)
            .distinct()
            .order_by(fk)
        )
    )


def lapsed_offers(rules: SeatRules, parent_id: int, now: datetime) -> list[Any]:
    """The lapsed offers of one parent, locked (call after :func:`lock_parent`)."""
    return list(
        db.session.scalars(
            sa.select(rules.entry)
            .where(
                getattr(rules.entry, rules.fk) == parent_id,
                rules.entry.status == "offered",
                rules.entry.offer_expires_at <= now,
            )
            .order_by(rules.entry.id)
            .with_for_update(of=rules.entry)
            .execution_options(populate_existing=True)
        )
    )


def lock_parent(rules: SeatRules, parent_id: int) -> Any:
    """The parent row, fresh and locked for the rest of the transaction (or None).
    Its relationships load when used (a seat needs the row's counters, not a
    course's lessons)."""
    return db.session.scalar(
        sa.select(rules.parent)
        .where(rules.parent.id == parent_id)
        .options(so.lazyload("*"))
        .with_for_update(of=rules.parent)
        .execution_options(populate_existing=True)
    )


def entry_for(rules: SeatRules, parent_id: int, user_id: int, *, lock: bool = False) -> Any:
    """A member's entry of one parent. Its parent is not joined in: the callers have
    it loaded already (or locked), and the session hands it out from its identity map."""
    query = (
        sa.select(rules.entry)
        .where(getattr(rules.entry, rules.fk) == parent_id, rules.entry.user_id == user_id)
        .options(so.lazyload("*"))
    )
    if lock:
        query = query.with_for_update(of=rules.entry).execution_options(populate_existing=True)
    return db.session.scalar(query)


def take_place(rules: SeatRules, parent_id: int) -> bool:
    """Conditionally take one place; False when there is none left."""
    taken = getattr(rules.parent, rules.taken)
    capacity = getattr(rules.parent, rules.capacity)
    result = db.session.execute(
        sa.update(rules.parent)
        .where(rules.parent.id == parent_id, sa.or_(capacity.is_(None), taken + 1 <= capacity))
        .values({rules.taken: taken + 1})
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


def release_place(rules: SeatRules, parent_id: int) -> None:
    taken = getattr(rules.parent, rules.taken)
    result = db.session.execute(
        sa.update(rules.parent)
        .where(rules.parent.id == parent_id, taken > 0)
        .values({rules.taken: taken - 1})
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # the counter disagrees with the entries: refuse, never drift
        raise RuntimeError(f"{rules.parent.__tablename__} {parent_id}: no place to release")


def next_position(rules: SeatRules, parent_id: int) -> int:
    """The next waitlist position, from the parent's counter (UPDATE … RETURNING)."""
    counter = rules.parent.waitlist_counter
    position = db.session.scalar(
        sa.update(rules.parent)
        .where(rules.parent.id == parent_id)
        .values(waitlist_counter=counter + 1)
        .returning(counter)
        .execution_options(synchronize_session=False)
    )
    if position is None:
        raise RuntimeError(f"{rules.parent.__tablename__} {parent_id} vanished")
    return position


def offer_hours() -> int:
    return int(current_app.config.get("COURSE_PROMOTION_HOURS", 0) or 0)


def seat_entry(rules: SeatRules, entry: Any, now: datetime) -> str:
    """Give ``entry`` a place if one is free, else a waitlist position; returns the status."""
    parent_id = getattr(entry, rules.fk)
    if take_place(rules, parent_id):
        entry.status = "enrolled"  # for an exam: registered with a seat
        entry.waitlist_position = None
        setattr(entry, rules.holding_since, now)
    else:
        position = next_position(rules, parent_id)  # before touching the entry (autoflush)
        entry.status = "waitlisted"
        entry.waitlist_position = position
    entry.offer_expires_at = None
    return entry.status


def promote_waitlist(rules: SeatRules, parent_id: int, now: datetime | None = None) -> list[Any]:
    """Fill every free place from the head of the waitlist (parent already locked).

    With ``COURSE_PROMOTION_HOURS`` set, the promoted entry is *offered* the
    place for that many hours; otherwise it is enrolled at once.
    """
    now = now or utcnow()
    hours = offer_hours()
    promoted = []
    while True:
        head = db.session.scalar(
            sa.select(rules.entry)
            .where(getattr(rules.entry, rules.fk) == parent_id, rules.entry.status == "waitlisted")
            .order_by(rules.entry.waitlist_position)
            .limit(1)
            .with_for_update(of=rules.entry)
            .execution_options(populate_existing=True)
        )
        if head is None or not take_place(rules, parent_id):
            break
        if hours:
            head.status = "offered"
            head.offer_expires_at = now + timedelta(hours=hours)
        else:
            head.status = "enrolled"
            setattr(head, rules.holding_since, now)
        db.session.flush()
        promoted.append(head)
    return promoted


def leave(rules: SeatRules, entry: Any, now: datetime) -> bool:
    """Cancel ``entry`` (parent already locked); True when it released a place."""
    held = entry.status in ("enrolled", "offered")
    entry.status = "cancelled"
    entry.cancelled_at = now
    entry.offer_expires_at = None
    db.session.flush()
    if held:
        release_place(rules, getattr(entry, rules.fk))
    return held


def queue_rank(rules: SeatRules, entry: Any) -> int | None:
    """1 for the head of the waitlist; None when not waitlisted."""
    if entry.status != "waitlisted" or entry.waitlist_position is None:
        return None
    ahead = db.session.scalar(
        sa.select(sa.func.count(rules.entry.id)).where(
            getattr(rules.entry, rules.fk) == getattr(entry, rules.fk),
            rules.entry.status == "waitlisted",
            rules.entry.waitlist_position < entry.waitlist_position,
        )
    )
    return (ahead or 0) + 1
