"""The only code that changes points. Every operation carries an idempotency key.

Each operation locks the member's account row first (``SELECT … FOR UPDATE`` on
PostgreSQL; SQLite's write transactions are ``BEGIN IMMEDIATE``), then looks
the idempotency key up *under that lock*, so a retried or double-clicked request
returns the first result and writes nothing. The balance moves with a
conditional ``UPDATE … SET balance = balance + :amount WHERE balance >= :needed``
(never check-then-write), the entry records ``balance_after``, and credits open
an expiry *lot* while debits consume the soonest-expiring lots first.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask import current_app

from memberplatform.audit.services import record
from memberplatform.core.errors import DomainError
from memberplatform.db import insert_ignoring_conflicts, utcnow
from memberplatform.extensions import db
from memberplatform.points.models import CheckIn, LedgerEntry, LotUse, PointsAccount, PointsLot
from memberplatform.web.i18n import lazy_gettext as _l

MAX_AMOUNT = 1_000_000  # any single change above this is a typo, not a grant

#: reason code -> translatable text shown in the member's history; domains add theirs
REASONS: dict[str, Any] = {}
#: ref_type -> function(ref_id) -> URL of the thing that caused an entry
REF_LINKS: dict[str, Callable[[int], str]] = {}


def register_reason(code: str, text: Any) -> None:
    REASONS[code] = text


def register_ref_link(ref_type: str, url_for_ref: Callable[[int], str]) -> None:
    REF_LINKS[ref_type] = url_for_ref


class InsufficientPoints(DomainError):
    def __init__(self, balance: int, needed: int) -> None:
        super().__init__(
            _l(
                "You have %(balance)s points; this needs %(needed)s.",
                balance=balance,
                needed=needed,
            ),
            field="units",
        )
        self.balance = balance
        self.needed = needed


class InvalidAmount(DomainError):
    def __init__(self) -> None:
        super().__init__(
            _l("Enter a whole number of points from 1 to %(max)s.", max=MAX_AMOUNT),
            field="amount",
        )


def _tz() -> ZoneInfo:
    return ZoneInfo(current_app.config.get("BABEL_DEFAULT_TIMEZONE", "Asia/Shanghai"))


def local_today(now: datetime | None = None) -> date:
    """Today's date in Asia/Shanghai (check-ins and expiry years follow local dates)."""
    return (now or utcnow()).astimezone(_tz()).date()


def default_expiry(earned_at: datetime) -> datetime:
    """Points earned in year Y expire at the end of year Y + POINTS_EXPIRY_YEARS (local)."""
    years = current_app.config.get("POINTS_EXPIRY_YEARS", 1)
    year = earned_at.astimezone(_tz()).year + years + 1
    return datetime(year, 1, 1, tzinfo=_tz()).astimezone(UTC)


def _check_amount(amount: Any) -> int:
    if isinstance(amount, bool) or not isinstance(amount, int) or not 0 < amount <= MAX_AMOUNT:
        raise InvalidAmount()
    return amount


def _user_id(user: Any) -> int:
    return user if isinstance(user, int) else user.id


def lock_account(user: Any) -> PointsAccount:
    """The user's account, created if missing, locked for the rest of the transaction."""
    user_id = _user_id(user)
    insert_ignoring_conflicts(
        db.session,
        PointsAccount.__table__,
        {"user_id": user_id, "balance": 0, "created_at": utcnow()},
        ["user_id"],
    )
    account = _locked_account(user_id)
    if account is None:  # the insert above guarantees a row; never reached
        raise LookupError(f"points account of user {user_id} missing")
    return account


def _locked_account(user_id: int) -> PointsAccount | None:
    return db.session.scalar(
        sa.select(PointsAccount)
        .where(PointsAccount.user_id == user_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )


def _existing(idempotency_key: str) -> LedgerEntry | None:
    """The entry posted under the key, if any: looked up by its id first (every
    posting asks; a replay is rare), the entry loaded only when there is one."""
    entry_id = db.read(_entry_by_key(), {"key": idempotency_key}).scalar()
    return None if entry_id is None else db.session.get(LedgerEntry, entry_id)


@cache
def _entry_by_key() -> sa.Select:
    return sa.select(LedgerEntry.id).where(LedgerEntry.idempotency_key == sa.bindparam("key"))


@cache
def _add_to_balance() -> sa.Update:
    """Built once (every posting): the balance moves only if it stays ≥ 0."""
    accounts = PointsAccount.__table__
    amount = sa.bindparam("amount", type_=accounts.c.balance.type)
    return (
        sa.update(accounts)
        .where(accounts.c.id == sa.bindparam("account_id"), accounts.c.balance + amount >= 0)
        .values(balance=accounts.c.balance + amount)
        .returning(accounts.c.balance)
    )


def _move_balance(account: PointsAccount, amount: int) -> int:
    """Conditionally add ``amount`` (signed); returns the new balance or raises."""
    new_balance = db.write(_add_to_balance(), {"account_id": account.id, "amount": amount}).scalar()
    if new_balance is None:
        current = db.session.scalar(
            sa.select(PointsAccount.balance).where(PointsAccount.id == account.id)
        )
        raise InsufficientPoints(current or 0, -amount)
    db.session.expire(account, ["balance"])
    return new_balance


def _consume_lots(account: PointsAccount, entry: LedgerEntry, amount: int) -> None:
    """Take ``amount`` from the soonest-expiring lots, recording what was used."""
    left = amount
    lots = db.session.scalars(
        sa.select(PointsLot)
        .where(PointsLot.account_id == account.id, PointsLot.remaining > 0)
        .order_by(PointsLot.expires_at, PointsLot.id)
        .with_for_update()
    )
    for lot in lots:
        take = min(lot.remaining, left)
        lot.remaining -= take
        db.session.add(LotUse(entry_id=entry.id, lot_id=lot.id, amount=take))
        left -= take
        if left == 0:
            break
    if left:  # the balance said yes but the lots disagree: refuse, never go inconsistent
        raise RuntimeError(f"points lots of account {account.id} are short by {left}")


@dataclass(frozen=True)
class Ref:
    """What caused a ledger entry (shown as a link in the history)."""

    type: str
    id: int


def _post(
    user: Any,
    amount: int,
    *,
    kind: str,
    reason: str,
    idempotency_key: str,
    ref: Ref | None = None,
    actor: Any = None,
    note: str | None = None,
    expires_at: datetime | None = None,
    lots: list[tuple[int, datetime]] | None = None,
    at: datetime | None = None,
) -> LedgerEntry:
    if not idempotency_key or len(idempotency_key) > 120:
        raise ValueError("an idempotency key of 1–120 characters is required")
    if amount > 0:
        account = lock_account(user)
    else:  # a debit needs points: a member without an account has none to give
        account = _locked_account(_user_id(user))
        if account is None:
            raise InsufficientPoints(0, -amount)
    # Asked under the account's lock only: a twin posting with this key either
    # committed before (found here) or waits for this transaction (and finds it).
    found = _existing(idempotency_key)
    if found is not None:
        return found
    balance_after = _move_balance(account, amount)
    entry = LedgerEntry(
        account_id=account.id,
        amount=amount,
        balance_after=balance_after,
        kind=kind,
        reason=reason,
        ref_type=ref.type if ref else None,
        ref_id=ref.id if ref else None,
        actor_id=_user_id(actor) if actor is not None else None,
        note=note,
        idempotency_key=idempotency_key,
        created_at=at or utcnow(),
    )
    db.session.add(entry)
    db.session.flush()
    if amount > 0:
        default = expires_at or default_expiry(at or utcnow())
        for lot_amount, lot_expiry in lots or [(amount, default)]:
            db.session.add(
                PointsLot(
                    account_id=account.id,
                    entry_id=entry.id,
                    amount=lot_amount,
                    remaining=lot_amount,
                    expires_at=lot_expiry,
                )
            )
    else:
        _consume_lots(account, entry, -amount)
    db.session.flush()
    return entry


def earn(
    user: Any,
    amount: int,
    *,
    reason: str,
    idempotency_key: str,
    ref: Ref | None = None,
    actor: Any = None,
    note: str | None = None,
    expires_at: datetime | None = None,
    at: datetime | None = None,
) -> LedgerEntry:
    """Credit points (activation bonus, check-in, course completion, staff grant…).

    ``at`` backdates the entry (imports and demo data only); expiry follows it.
    """
    return _post(
        user,
        _check_amount(amount),
        kind="earn",
        reason=reason,
        idempotency_key=idempotency_key,
        ref=ref,
        actor=actor,
        note=note,
        expires_at=expires_at,
        at=at,
    )


def spend(
    user: Any,
    amount: int,
    *,
    reason: str,
    idempotency_key: str,
    ref: Ref | None = None,
    actor: Any = None,
) -> LedgerEntry:
    """Debit points; raises :class:`InsufficientPoints` when the balance is too low."""
    return _post(
        user,
        -_check_amount(amount),
        kind="spend",
        reason=reason,
        idempotency_key=idempotency_key,
        ref=ref,
        actor=actor,
    )


def refund(
    original_key: str, *, reason: str, idempotency_key: str, actor: Any = None
) -> LedgerEntry:
    """Give back exactly what the spend with ``original_key`` took, once.

    The refunded points keep the expiry of the lots they came from (or, if that
    has passed, the expiry of points earned today).
    """
    original = _existing(original_key)
    if original is None or original.amount >= 0:
        raise DomainError(_l("There is nothing to refund."))
    account = db.session.get(PointsAccount, original.account_id)
    uses = db.session.execute(
        sa.select(LotUse.amount, PointsLot.expires_at)
        .join(PointsLot, PointsLot.id == LotUse.lot_id)
        .where(LotUse.entry_id == original.id)
        .order_by(LotUse.id)
    ).all()
    floor = default_expiry(utcnow())
    now = utcnow()
    lots = [(amount, expiry if expiry > now else floor) for amount, expiry in uses]
    return _post(
        account.user_id,
        -original.amount,
        kind="refund",
        reason=reason,
        idempotency_key=idempotency_key,
        ref=Ref(original.ref_type, original.ref_id) if original.ref_type else None,
        actor=actor,
        lots=lots,
    )


def adjust(user: Any, amount: int, *, actor: Any, note: str, idempotency_key: str) -> LedgerEntry:
    """A staff correction (positive or negative), with a reason, audited."""
    if not note or not note.strip():
        raise DomainError(_l("Give a reason for the correction."), field="note")
    if isinstance(amount, bool) or not isinstance(amount, int) or amount == 0:
        raise InvalidAmount()
    _check_amount(abs(amount))
    entry = _post(
        user,
        amount,
        kind="adjust",
        reason="adjust",
        idempotency_key=idempotency_key,
        actor=actor,
        note=note.strip()[:200],
    )
    record(actor, "points.adjust", "user", _user_id(user), {"amount": amount, "note": note})
    return entry


def grant(user: Any, amount: int, *, actor: Any, note: str, idempotency_key: str) -> LedgerEntry:
    """A staff grant to one member: earned points, audited, and the member is told."""
    from memberplatform.notifications.services import notify

    if not note or not note.strip():
        raise DomainError(_l("Give a reason for the grant."), field="note")
    already = _existing(idempotency_key)
    entry = earn(
        user,
        amount,
        reason="grant",
        idempotency_key=idempotency_key,
        actor=actor,
        note=note.strip()[:200],
    )
    if already is None:
        record(actor, "points.grant", "user", _user_id(user), {"amount": amount, "note": note})
        notify(user, "points.granted", {"amount": amount, "note": note.strip()[:200]}, "/points")
    return entry


_BALANCE = sa.select(PointsAccount.balance).where(PointsAccount.user_id == sa.bindparam("user_id"))


def balance_of(user: Any) -> int:
    # Built once: every page's badge asks, and building the query costs more than running it.
    return db.read(*balance_read(user)).scalar() or 0


def balance_read(user: Any) -> tuple[sa.Select, dict[str, Any]]:
    """The statement :func:`balance_of` reads and its parameters (read ahead on /points)."""
    return _BALANCE, {"user_id": _user_id(user)}


# --- expiry -------------------------------------------------------------------


def expire_account(user_id: int, now: datetime) -> int:
    """Expire this member's due lots (one entry per lot); returns points expired."""
    account = lock_account(user_id)
    due = list(
        db.session.scalars(
            sa.select(PointsLot)
            .where(
                PointsLot.account_id == account.id,
                PointsLot.remaining > 0,
                PointsLot.expires_at <= now,
            )
            .order_by(PointsLot.id)
        )
    )
    total = 0
    for lot in due:
        amount = lot.remaining
        key = f"expire:lot:{lot.id}"
        if _existing(key) is not None:
            continue
        balance_after = _move_balance(account, -amount)
        entry = LedgerEntry(
            account_id=account.id,
            amount=-amount,
            balance_after=balance_after,
            kind="expire",
            reason="expire",
            idempotency_key=key,
        )
        db.session.add(entry)
        db.session.flush()
        lot.remaining = 0
        db.session.add(LotUse(entry_id=entry.id, lot_id=lot.id, amount=amount))
        total += amount
    db.session.flush()
    return total


def users_with_due_lots(now: datetime) -> list[int]:
    return list(
        db.session.scalars(
            sa.select(PointsAccount.user_id)
            .join(PointsLot, PointsLot.account_id == PointsAccount.id)
            .where(PointsLot.remaining > 0, PointsLot.expires_at <= now)
            .distinct()
            .order_by(PointsAccount.user_id)
        )
    )


def last_valid_day(expires_at: datetime) -> date:
    """The last local calendar day on which points expiring at ``expires_at`` can be used."""
    return (expires_at - timedelta(seconds=1)).astimezone(_tz()).date()


def notify_expiring(now: datetime, *, within_days: int = 30) -> int:
    """Tell members whose points expire within ``within_days`` (once per lot)."""
    from memberplatform.notifications.services import notify

    rows = db.session.execute(
        sa.select(PointsAccount.user_id, PointsLot.id, PointsLot.remaining, PointsLot.expires_at)
        .join(PointsLot, PointsLot.account_id == PointsAccount.id)
        .where(
            PointsLot.remaining > 0,
            PointsLot.expires_at > now,
            PointsLot.expires_at <= now + timedelta(days=within_days),
        )
    ).all()
    sent = 0
    for user_id, lot_id, remaining, expires_at in rows:
        day = last_valid_day(expires_at).isoformat()
        if notify(
            user_id,
            "points.expiring",
            {"amount": remaining, "date": day},
            "/points",
            dedupe_key=f"points.expiring:{lot_id}",
        ):
            sent += 1
    return sent


def expiring_before(user: Any, until: datetime) -> list[tuple[datetime, int]]:
    """(expiry, points) for this member's points that expire before ``until``."""
    return [(row.expires_at, row.total) for row in db.read(*expiring_read(user, until))]


def expiring_read(user: Any, until: datetime) -> tuple[sa.Select, dict[str, Any]]:
    """The statement :func:`expiring_before` reads and its parameters (read ahead on
    /points)."""
    return _expiring_statement(), {"user_id": _user_id(user), "until": until}


@cache
def _expiring_statement() -> sa.Select:
    return (
        sa.select(PointsLot.expires_at, sa.func.sum(PointsLot.remaining).label("total"))
        .join(PointsAccount, PointsAccount.id == PointsLot.account_id)
        .where(
            PointsAccount.user_id == sa.bindparam("user_id"),
            PointsLot.remaining > 0,
            PointsLot.expires_at <= sa.bindparam("until"),
        )
        .group_by(PointsLot.expires_at)
        .order_by(PointsLot.expires_at)
    )


# --- check-in -----------------------------------------------------------------


@dataclass(frozen=True)
class CheckInResult:
    check_in: CheckIn
    new: bool


def check_in(user: Any, *, now: datetime | None = None) -> CheckInResult:
    """Daily check-in: points once per local calendar day, a bonus on streak days."""
    config = current_app.config
    day = local_today(now)
    lock_account(user)  # serialises a member's concurrent check-ins
    user_id = _user_id(user)
    existing = db.session.scalar(
        sa.select(CheckIn).where(CheckIn.user_id == user_id, CheckIn.day == day)
    )
    if existing is not None:
        return CheckInResult(existing, new=False)
    yesterday = db.session.scalar(
        sa.select(CheckIn.streak).where(
            CheckIn.user_id == user_id, CheckIn.day == day - timedelta(days=1)
        )
    )
    streak = (yesterday or 0) + 1
    points = config.get("POINTS_CHECKIN", 5)
    streak_days = config.get("POINTS_STREAK_DAYS", 7)
    bonus = config.get("POINTS_STREAK_BONUS", 20) if streak % streak_days == 0 else 0
    row = CheckIn(user_id=user_id, day=day, streak=streak, points=points + bonus)
    db.session.add(row)
    db.session.flush()
    at = now if now is not None else None
    earn(user_id, points, reason="checkin", idempotency_key=f"checkin:{user_id}:{day}", at=at)
    if bonus:
        earn(user_id, bonus, reason="streak", idempotency_key=f"streak:{user_id}:{day}", at=at)
    return CheckInResult(row, new=True)


def dashboard_of(user: Any, *, now: datetime | None = None) -> tuple[int, int, bool]:
    """(balance, current streak, checked in today) in one statement, for the /me panel."""
    day = local_today(now)
    row = db.read(*dashboard_read(user, day)).one()
    if row.day is None:
        return row.balance or 0, 0, False
    return row.balance or 0, row.streak, row.day == day


def dashboard_read(user: Any, day: date | None = None) -> tuple[sa.Select, dict[str, Any]]:
    """The statement :func:`dashboard_of` reads and its parameters (read ahead on /me)."""
    day = day if day is not None else local_today()
    return _dashboard_statement(), {"user_id": _user_id(user), "since": day - timedelta(days=1)}


@cache
def _dashboard_statement() -> sa.Select:
    user_id, since = sa.bindparam("user_id"), sa.bindparam("since")

    def latest(column):
        return (
            sa.select(column)
            .where(CheckIn.user_id == user_id, CheckIn.day >= since)
            .order_by(CheckIn.day.desc())
            .limit(1)
            .scalar_subquery()
        )

    balance = sa.select(PointsAccount.balance).where(PointsAccount.user_id == user_id)
    return sa.select(
        balance.scalar_subquery().label("balance"),
        latest(CheckIn.day).label("day"),
        latest(CheckIn.streak).label("streak"),
    )


# --- reading -------------------------------------------------------------------


@dataclass(frozen=True)
class HistoryFilter:
    kind: str | None = None
    since: date | None = None
    until: date | None = None


def history(
    user: Any, flt: HistoryFilter, *, before_id: int | None = None, limit: int = 20
) -> list[LedgerEntry]:
    """The member's ledger, newest first, one page (keyset: entries older than ``before_id``)."""
    query = (
        sa.select(LedgerEntry)
        .join(PointsAccount, PointsAccount.id == LedgerEntry.account_id)
        .where(PointsAccount.user_id == _user_id(user))
    )
    if flt.kind:
        query = query.where(LedgerEntry.kind == flt.kind)
    if flt.since:
        start = datetime(flt.since.year, flt.since.month, flt.since.day, tzinfo=_tz())
        query = query.where(LedgerEntry.created_at >= start.astimezone(UTC))
    if flt.until:
        end = datetime(flt.until.year, flt.until.month, flt.until.day, tzinfo=_tz())
        query = query.where(LedgerEntry.created_at < (end + timedelta(days=1)).astimezone(UTC))
    if before_id:
        query = query.where(LedgerEntry.id < before_id)
    return list(db.session.scalars(query.order_by(LedgerEntry.id.desc()).limit(limit)))


def end_of_local_year(now: datetime | None = None) -> datetime:
    """The first instant of next year in Asia/Shanghai, in UTC."""
    year = (now or utcnow()).astimezone(_tz()).year
    return datetime(year + 1, 1, 1, tzinfo=_tz()).astimezone(UTC)


def reason_text(entry: LedgerEntry) -> str:
    text = REASONS.get(entry.reason)
    return str(text) if text is not None else entry.reason


def ref_url(entry: LedgerEntry) -> str | None:
    maker = REF_LINKS.get(entry.ref_type or "")
    if maker is None or entry.ref_id is None:
        return None
    try:
        return maker(entry.ref_id)
    except Exception:  # a link is a convenience; never break the history for it
        return None
