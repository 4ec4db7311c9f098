"""Kit operations: claim, cancel, expire, pick up, ship; staff management of kits,
pickup points and stock. Each function flushes, never commits.

Claiming is one transaction: the claim row is inserted inside a SAVEPOINT (the
partial unique index refuses a second live claim of the same kit by the same
member, and the pickup code is unique), the points are spent if the kit costs
any, and last — so the hot row is locked for the shortest time — one unit moves
with ``UPDATE kit_stocks SET available = available - 1, reserved = reserved + 1
WHERE … AND available > 0``. When that matches no row the kit is gone and the
whole transaction rolls back.

Every later step of a claim is a conditional ``UPDATE … WHERE status =
'reserved'``: whoever wins moves the stock counters, everybody else is told
what happened instead.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import cache, cached_property
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

import sqlalchemy as sa
import sqlalchemy.orm as so
from flask import current_app

from memberplatform.audit.services import record
from memberplatform.auth.models import Enterprise, MemberTag, UnionBranch, User
from memberplatform.core.cache import cached_briefly
from memberplatform.core.errors import DomainError, NotFound
from memberplatform.db import insert_ignoring_conflicts, utcnow
from memberplatform.extensions import db
from memberplatform.kits.models import (
    CODE_ALPHABET,
    CODE_LENGTH,
    HANDED_OUT,
    LIVE_STATUSES,
    MODES,
    KitClaim,
    KitItem,
    KitStock,
    KitType,
    PickupPoint,
    StockMove,
    kit_type_branches,
    kit_type_enterprises,
)
from memberplatform.notifications.services import notify
from memberplatform.points import services as points
from memberplatform.web.i18n import lazy_gettext as _l
from memberplatform.web.i18n import local_datetime

CODE_RE = re.compile(f"^[{CODE_ALPHABET}]{{{CODE_LENGTH}}}$")
MAX_STOCK_CHANGE = 100_000
MAX_POINTS_COST = 100_000
#: member tags that eligibility rules commonly use, with their wording for members
TAG_LABELS: dict[str, Any] = {
    "returned-to-work": _l("returned to work"),
    "front-line": _l("front-line worker"),
}


# --- errors -------------------------------------------------------------------


class AlreadyClaimed(DomainError):
    def __init__(self, claim: KitClaim | None = None) -> None:
        super().__init__(_l("You have already claimed this kit."), field="point")
        self.claim = claim


class OutOfStock(DomainError):
    def __init__(self) -> None:
        super().__init__(
            _l("No kits are left at this pickup point. Choose another point."), field="point"
        )


class NotEligible(DomainError):
    pass


class PickupRefused(DomainError):
    """A code that cannot be picked up (already, cancelled, expired…); ``claim`` says why."""

    def __init__(self, message: Any, claim: KitClaim) -> None:
        super().__init__(message, field="code")
        self.claim = claim


# --- helpers ------------------------------------------------------------------


def reservation_days() -> int:
    """How long a pickup reservation is held (KIT_RESERVATION_DAYS, default 3)."""
    value = current_app.config.get("KIT_RESERVATION_DAYS") or os.environ.get(
        "KIT_RESERVATION_DAYS", 3
    )
    return max(1, int(value))


def _tz() -> ZoneInfo:
    return ZoneInfo(current_app.config.get("BABEL_DEFAULT_TIMEZONE", "Asia/Shanghai"))


def local_to_utc(value: datetime) -> datetime:
    """A naive local (Asia/Shanghai) datetime from a form, as aware UTC."""
    return value.replace(tzinfo=_tz()).astimezone(ZoneInfo("UTC"))


def utc_to_local_naive(value: datetime) -> datetime:
    return value.astimezone(_tz()).replace(tzinfo=None)


def local_day_start(day: date) -> datetime:
    return local_to_utc(datetime(day.year, day.month, day.day))


def tag_label(tag: str) -> str:
    return str(TAG_LABELS.get(tag, tag))


def new_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def normalize_code(raw: str | None) -> str:
    """Upper-case, without spaces or dashes; raises unless it is a well-formed code."""
    code = re.sub(r"[\s-]", "", raw or "").upper()
    if not CODE_RE.match(code):
        raise DomainError(
            _l("A pickup code has 8 letters and digits (no 0, 1, I, L or O)."), field="code"
        )
    return code


class Member:
    """What eligibility needs to know about a member, loaded with one light query
    (tags only when a kit asks for one). A loaded ``User`` works the same way."""

    def __init__(self, user_id: int, status: str, enterprise_id: Any, branch_id: Any) -> None:
        self.id, self.status = user_id, status
        self.enterprise_id, self.branch_id = enterprise_id, branch_id

    @cached_property
    def tags(self) -> frozenset[str]:
        return frozenset(
            db.session.scalars(sa.select(MemberTag.tag).where(MemberTag.user_id == self.id))
        )


def member_of(user: Any) -> Any:
    """A user as it is (``User``, the signed-in user, ``Member``), or the eligibility
    facts of the user with this id."""
    if not isinstance(user, int):
        return user
    row = db.session.execute(
        sa.select(User.id, User.status, User.enterprise_id, User.branch_id).where(User.id == user)
    ).first()
    if row is None:
        raise NotFound(_l("No such member."))
    return Member(*row)


def _uid(user: Any) -> int:
    return user if isinstance(user, int) else user.id


# --- eligibility --------------------------------------------------------------


@dataclass
class Eligibility:
    """Whether a member may claim a kit now, and if not, why (in plain words)."""

    reasons: list[Any] = field(default_factory=list)
    existing: KitClaim | None = None

    @property
    def ok(self) -> bool:
        return not self.reasons and self.existing is None


def live_claim(kit_type_id: int, user_id: int) -> KitClaim | None:
    return db.session.scalar(
        sa.select(KitClaim)
        .options(so.lazyload(KitClaim.kit_type), so.lazyload(KitClaim.point))
        .where(
            KitClaim.kit_type_id == kit_type_id,
            KitClaim.user_id == user_id,
            KitClaim.status.in_(LIVE_STATUSES),
        )
    )


def organisation_rule(kit: KitType | KitRules | PublishedKit) -> tuple[set[int], set[int]]:
    """The enterprise ids and union-branch ids a kit is limited to (one query)."""
    if not kit.limited:  # read with the kit's row (also a :class:`KitRules`)
        return set(), set()
    if isinstance(kit, PublishedKit):
        return {e.id for e in kit.enterprises}, {b.id for b in kit.branches}
    loaded = sa.inspect(kit).unloaded
    if "enterprises" not in loaded and "branches" not in loaded:
        return {e.id for e in kit.enterprises}, {b.id for b in kit.branches}
    rows = db.session.execute(
        sa.select(kit_type_enterprises.c.enterprise_id, sa.literal("e"))
        .where(kit_type_enterprises.c.kit_type_id == kit.id)
        .union_all(
            sa.select(kit_type_branches.c.branch_id, sa.literal("b")).where(
                kit_type_branches.c.kit_type_id == kit.id
            )
        )
    ).all()
    return {i for i, k in rows if k == "e"}, {i for i, k in rows if k == "b"}


def window_state(kit: KitType | KitRules | PublishedKit, now: datetime | None = None) -> str:
    now = now or utcnow()
    if now < kit.opens_at:
        return "upcoming"
    if now >= kit.closes_at:
        return "closed"
    return "open"


def eligibility(
    kit: KitType | KitRules | PublishedKit,
    user: Any,
    *,
    now: datetime | None = None,
    existing: Any = ...,
) -> Eligibility:
    """Every rule the member fails (``existing`` may be passed in to save a query)."""
    now = now or utcnow()
    result = Eligibility()
    result.existing = live_claim(kit.id, user.id) if existing is ... else existing
    if not kit.active:
        result.reasons.append(_l("This kit is not offered at the moment."))
    state = window_state(kit, now)
    if state == "upcoming":
        result.reasons.append(
            _l("Claims open at %(time)s.", time=local_datetime(kit.opens_at, "short"))
        )
    elif state == "closed":
        result.reasons.append(
            _l("Claims closed at %(time)s.", time=local_datetime(kit.closes_at, "short"))
        )
    if user.status != "active":
        result.reasons.append(_l("Only active members can claim kits."))
    enterprise_ids, branch_ids = organisation_rule(kit)
    if (enterprise_ids or branch_ids) and (
        user.enterprise_id not in enterprise_ids and user.branch_id not in branch_ids
    ):
        names = [e.name for e in kit.enterprises] + [b.name for b in kit.branches]
        result.reasons.append(
            _l("This kit is only for members of: %(names)s.", names="、".join(names))
        )
    if kit.required_tag and kit.required_tag not in user.tags:
        result.reasons.append(
            _l(
                "This kit is only for members marked as “%(tag)s” in the union roster.",
                tag=tag_label(kit.required_tag),
            )
        )
    return result


# --- reading ------------------------------------------------------------------


def with_details(query: sa.Select) -> sa.Select:
    """Load kits with their contents and organisation lists (for pages)."""
    return query.options(
        so.selectinload(KitType.items),
        so.selectinload(KitType.enterprises),
        so.selectinload(KitType.branches),
    )


class ShownItem(NamedTuple):
    name: str
    quantity: int


class ShownOrganisation(NamedTuple):
    id: int
    name: str


class PublishedKit(NamedTuple):
    """A published kit as the kits page shows it and decides a member's eligibility:
    plain values, the same for every member, so a worker keeps them between requests
    (:func:`visible_kits`)."""

    id: int
    name: str
    picture_id: int | None
    active: bool
    opens_at: datetime
    closes_at: datetime
    limited: bool
    required_tag: str | None
    points_cost: int
    items: tuple[ShownItem, ...]
    enterprises: tuple[ShownOrganisation, ...]
    branches: tuple[ShownOrganisation, ...]


def visible_kits() -> list[PublishedKit]:
    """Kits shown to members: published ones, open first, then upcoming, then closed.

    Every member loading ``/kits`` (thousands at once when a kit opens) reads the same
    catalogue, so each worker keeps it for ``PROGRESS_CACHE_SECONDS`` (2 by default):
    a kit's edit shows within that. The window is judged against the clock on every
    request, and the stock and the member's claims are always read fresh; a claim
    decides on the database's rows (:func:`shelf`), never on this."""
    kits = cached_briefly(("kits.published",), _published_kits)
    order = {"open": 0, "upcoming": 1, "closed": 2}
    now = utcnow()
    return sorted(kits, key=lambda kit: order[window_state(kit, now)])


def _published_kits() -> list[PublishedKit]:
    return [
        PublishedKit(
            id=kit.id,
            name=kit.name,
            picture_id=kit.picture_id,
            active=kit.active,
            opens_at=kit.opens_at,
            closes_at=kit.closes_at,
            limited=kit.limited,
            required_tag=kit.required_tag,
            points_cost=kit.points_cost,
            items=tuple(ShownItem(item.name, item.quantity) for item in kit.items),
            enterprises=tuple(ShownOrganisation(e.id, e.name) for e in kit.enterprises),
            branches=tuple(ShownOrganisation(b.id, b.name) for b in kit.branches),
        )
        for kit in db.session.scalars(
            with_details(sa.select(KitType))
            .where(KitType.active.is_(True))
            .order_by(KitType.opens_at, KitType.id)
        )
    ]


def stocks_for(kit_ids: Sequence[int]) -> dict[int, list[KitStock]]:
    """kit type id -> its stock rows at active points (one query)."""
    result: dict[int, list[KitStock]] = {kit_id: [] for kit_id in kit_ids}
    if not kit_ids:
        return result
    for stock in db.session.scalars(_stocks_statement(), {"kit_ids": list(kit_ids)}):
        result[stock.kit_type_id].append(stock)
    return result


@cache
def _stocks_statement() -> sa.Select:
    """Built once: the kit pages and every claim read stock."""
    return (
        sa.select(KitStock)
        .join(PickupPoint, PickupPoint.id == KitStock.point_id)
        .where(
            KitStock.kit_type_id.in_(sa.bindparam("kit_ids", expanding=True)),
            PickupPoint.active.is_(True),
        )
        .order_by(PickupPoint.name)
    )


def live_claims_of(user_id: int) -> dict[int, KitClaim]:
    """kit type id -> this member's live claim."""
    return {
        claim.kit_type_id: claim
        for claim in db.session.scalars(
            sa.select(KitClaim).where(
                KitClaim.user_id == user_id, KitClaim.status.in_(LIVE_STATUSES)
            )
        )
    }


def claims_of(user_id: int, *, limit: int = 50) -> list[KitClaim]:
    return list(
        db.session.scalars(
            sa.select(KitClaim)
            .where(KitClaim.user_id == user_id)
            .order_by(KitClaim.id.desc())
            .limit(limit)
        )
    )


def find_by_code(code: str) -> KitClaim | None:
    return db.session.scalar(sa.select(KitClaim).where(KitClaim.pickup_code == code))


# --- claiming -----------------------------------------------------------------


def claim(
    user: Any,
    kit_type_id: int,
    point_id: Any,
    *,
    mode: str = "pickup",
    address: str | None = None,
    request_key: str | None = None,
    now: datetime | None = None,
    shelf: Shelf | None = None,
    prior: tuple[KitClaim | None, KitClaim | None] | None = None,
) -> KitClaim:
    """Reserve one kit for the member at a pickup point (or for delivery from it).

    ``shelf``: what :func:`shelf` read for this claim moments before (the kit's rules,
    the stock at active points): the kit, the point and the stock are not read again,
    as the rules were read without a lock either way; the conditional UPDATE still
    decides. ``prior``: what :func:`prior_claims` returned for this form."""
    now = now or utcnow()
    member = member_of(user)
    if request_key and len(request_key) > 64:
        raise ValueError("request keys are at most 64 characters")
    again, live = prior or prior_claims(request_key, member.id, kit_type_id)
    if again is not None:
        if again.user_id != member.id:
            raise DomainError(_l("This form has expired. Please reload the page."))
        return again  # a double-submitted form: the first claim, nothing new
    kit = rules_of(kit_type_id, shelf)
    check = eligibility(kit, member, now=now, existing=live)
    if check.existing is not None:
        raise AlreadyClaimed(check.existing)
    if check.reasons:
        raise NotEligible(check.reasons[0], field="point")
    if mode not in MODES or (mode == "delivery" and not kit.delivery_allowed):
        raise DomainError(_l("Choose how you get the kit."), field="mode")
    address = (address or "").strip()[:200] or None
    if mode == "delivery" and not address:
        raise DomainError(_l("Enter the delivery address."), field="address")
    point_name, seen_available = _point_of(kit.id, point_id, shelf)
    if point_name is None:
        raise DomainError(_l("Choose a pickup point."), field="point")
    # A quick way out when the point is already empty (most of a rush); the
    # conditional UPDATE below stays the one that decides.
    if not seen_available:
        raise OutOfStock()

    new = _insert_claim(
        kit,
        member,
        point_id,
        mode=mode,
        address=address if mode == "delivery" else None,
        request_key=request_key,
        now=now,
    )
    if kit.points_cost:
        key = f"kits:claim:{member.id}:{request_key}" if request_key else f"kits:claim:{new.id}"
        points.spend(
            member.id,
            kit.points_cost,
            reason="kit_claim",
            idempotency_key=key,
            ref=points.Ref("kit_claim", new.id),
        )
        new.points_spent = kit.points_cost
        new.spend_key = key
    params = {"kit": kit.name, "point": point_name, "code": new.pickup_code}
    if new.expires_at is not None:
        params["until"] = local_datetime(new.expires_at, "short")
        notify(member.id, "kits.claimed", params, f"/kits/claims/{new.id}")
    else:
        notify(member.id, "kits.claimed_delivery", params, f"/kits/claims/{new.id}")
    # Last, so the contended stock row stays locked only until the commit. Core in the
    # session's transaction (db.write flushes first): no ORM object holds the counters.
    taken = db.write(_take_one(), {"kit": kit.id, "point": point_id})
    if taken.rowcount != 1:
        raise OutOfStock()
    return new


@cache
def _take_one() -> sa.Update:
    """Built once (every winning claim runs it): one unit from available to reserved,
    if one is left."""
    stock = KitStock.__table__
    return (
        sa.update(stock)
        .where(
            stock.c.kit_type_id == sa.bindparam("kit"),
            stock.c.point_id == sa.bindparam("point"),
            stock.c.available > 0,
        )
        .values(available=stock.c.available - 1, reserved=stock.c.reserved + 1)
    )


def rules_of(kit_type_id: int, shelf: Shelf | None) -> KitType | KitRules:
    """The kit a claim decides on: the shelf's rules, or the row (a kit limited to some
    organisations names them when it refuses a member)."""
    if shelf is not None and not shelf.kit.limited:
        return shelf.kit
    kit = db.session.get(KitType, kit_type_id)
    if kit is None:
        raise NotFound(_l("No such kit."))
    return kit


def _point_of(kit_type_id: int, point_id: Any, shelf: Shelf | None) -> tuple[str | None, int]:
    """(name, units available) of an active pickup point of the kit; no name: no such
    point, or not active."""
    if not isinstance(point_id, int):
        return None, 0
    if shelf is not None:
        for stock in shelf.stocks:  # only active points have a place on the shelf
            if stock.point_id == point_id:
                return stock.point.name, stock.available
        return None, 0
    point = db.session.get(PickupPoint, point_id)
    if point is None or not point.active:
        return None, 0
    available = db.session.scalar(
        sa.select(KitStock.available).where(
            KitStock.kit_type_id == kit_type_id, KitStock.point_id == point_id
        )
    )
    return point.name, available or 0


def meets_empty_shelf(
    kit: KitType,
    user: Any,
    stocks: Sequence[KitStock],
    prior: tuple[KitClaim | None, KitClaim | None],
) -> bool:
    """Whether all a claim can be told is "all claimed": no earlier claim of this member
    or form to answer with (``prior``), every point empty, and no eligibility rule the
    member fails (that would be told first). Nothing needs locking to answer it."""
    again, live = prior
    if again is not None or live is not None or any(stock.available for stock in stocks):
        return False
    return not eligibility(kit, user, existing=None).reasons


class ShelfPoint(NamedTuple):
    name: str
    address: str
    hours: str


class ShelfStock(NamedTuple):
    """A stock row as the claim form and the "left at each point" card show it."""

    point_id: int
    available: int
    point: ShelfPoint


class KitRules(NamedTuple):
    """The columns of a kit a claim decides on (eligibility, window, form)."""

    id: int
    name: str
    active: bool
    opens_at: datetime
    closes_at: datetime
    limited: bool
    required_tag: str | None
    delivery_allowed: bool
    points_cost: int


@dataclass(frozen=True)
class Shelf:
    """What a claim reads before it decides anything: the kit's rules, its stock at
    each active point, and whether this member (or this form) has a claim of it."""

    kit: KitRules
    stocks: list[ShelfStock]
    has_prior: bool


#: ``prior_claims`` when :attr:`Shelf.has_prior` says there is nothing to read
NO_PRIOR: tuple[KitClaim | None, KitClaim | None] = (None, None)


def shelf(kit_type_id: int, user_id: int | None, request_key: str | None = None) -> Shelf | None:
    """One statement on the driver's cursor, without the ORM (every attempt of a rush
    reads this, and most of them end here with "all claimed"); ``None``: no such kit."""
    rows = db.read(*shelf_read(kit_type_id, user_id, request_key)).all()
    if not rows:
        return None
    stocks = [
        ShelfStock(r.point_id, r.available, ShelfPoint(r.point_name, r.point_address, r.hours))
        for r in rows
        if r.point_id is not None
    ]
    first = rows[0]
    return Shelf(KitRules._make(first[: len(KitRules._fields)]), stocks, bool(first.has_prior))


def shelf_read(
    kit_type_id: int, user_id: int | None, request_key: str | None = None
) -> tuple[sa.Select, dict[str, Any]]:
    """The statement :func:`shelf` reads and its parameters (read with the session
    check on a claim)."""
    params = {"kit_type_id": kit_type_id, "user_id": user_id, "request_key": request_key}
    return _shelf_statement(bool(request_key)), params


@cache
def _shelf_statement(with_key: bool) -> sa.Select:
    """Built once (twice: with and without a form key). The kit's row joined to its
    stock at active points (none: one row with empty stock columns), each row telling
    whether a claim of the member's or of this form exists (as :func:`prior_claims`)."""
    live = sa.and_(
        KitClaim.kit_type_id == KitType.id,
        KitClaim.user_id == sa.bindparam("user_id"),
        sa.or_(*(KitClaim.status == status for status in LIVE_STATUSES)),  # no expanding IN
    )
    wanted = sa.or_(KitClaim.request_key == sa.bindparam("request_key"), live) if with_key else live
    stock = sa.join(
        KitStock,
        PickupPoint,
        sa.and_(PickupPoint.id == KitStock.point_id, PickupPoint.active.is_(True)),
    )
    return (
        sa.select(
            *(getattr(KitType, name) for name in KitRules._fields),
            sa.exists().where(wanted).label("has_prior"),
            KitStock.point_id,
            KitStock.available,
            PickupPoint.name.label("point_name"),
            PickupPoint.address.label("point_address"),
            PickupPoint.hours,
        )
        .select_from(KitType)
        .outerjoin(stock, KitStock.kit_type_id == KitType.id)
        .where(KitType.id == sa.bindparam("kit_type_id"))
        .order_by(PickupPoint.name)
    )


def prior_claims(
    request_key: str | None, user_id: int, kit_type_id: int
) -> tuple[KitClaim | None, KitClaim | None]:
    """In one statement: the claim this form already made (a replay), and the member's
    live claim of this kit."""
    params = {"user_id": user_id, "kit_type_id": kit_type_id, "request_key": request_key}
    again = current = None
    for row in db.session.scalars(_replay_or_live_statement(bool(request_key)), params):
        if request_key and row.request_key == request_key:
            again = row
        mine = row.kit_type_id == kit_type_id and row.user_id == user_id
        if mine and row.status in LIVE_STATUSES:
            current = row
    return again, current


@cache
def _replay_or_live_statement(with_key: bool) -> sa.Select:
    """Built once (twice: with and without a form key): every claim runs it."""
    live = sa.and_(
        KitClaim.kit_type_id == sa.bindparam("kit_type_id"),
        KitClaim.user_id == sa.bindparam("user_id"),
        KitClaim.status.in_(LIVE_STATUSES),
    )
    wanted = sa.or_(KitClaim.request_key == sa.bindparam("request_key"), live) if with_key else live
    return (
        sa.select(KitClaim)
        .options(so.lazyload(KitClaim.kit_type), so.lazyload(KitClaim.point))
        .where(wanted)
    )


def _insert_claim(
    kit: KitType | KitRules,
    member: Any,
    point_id: int,
    *,
    mode: str,
    address: str | None,
    request_key: str | None,
    now: datetime,
) -> KitClaim:
    """``INSERT … ON CONFLICT DO NOTHING RETURNING``: one statement, and a unique
    violation (a live claim already, the same form twice, a pickup code drawn twice)
    becomes a domain answer instead of an aborted transaction."""
    expires_at = now + timedelta(days=reservation_days()) if mode == "pickup" else None
    for _attempt in range(5):
        values = {
            "points_spent": 0,
            "kit_type_id": kit.id,
            "point_id": point_id,
            "user_id": member.id,
            "status": "reserved",
            "mode": mode,
            "pickup_code": new_code(),
            "request_key": request_key or None,
            "delivery_address": address,
            "created_at": now,
            "expires_at": expires_at,
        }
        new = db.session.scalar(_claim_insert(), values)
        if new is not None:
            return new
        existing = live_claim(kit.id, member.id)
        if existing is not None:
            raise AlreadyClaimed(existing)
        if request_key:
            twin = db.session.scalar(sa.select(KitClaim).where(KitClaim.request_key == request_key))
            if twin is not None:
                return twin
        # the random pickup code collided: draw another
    raise RuntimeError("could not draw a unique pickup code")


_CLAIM_INSERT_COLUMNS = (
    "kit_type_id",
    "point_id",
    "user_id",
    "status",
    "mode",
    "pickup_code",
    "request_key",
    "points_spent",
    "delivery_address",
    "created_at",
    "expires_at",
)


@cache
def _claim_insert() -> sa.Select:
    """``INSERT … ON CONFLICT DO NOTHING RETURNING`` as ORM rows, built once.

    SQLAlchemy does not cache the dialects' ``on_conflict_do_nothing()`` constructs
    (they would be compiled on every claim, the costliest step of a claim); the same
    statement as text, typed by the table's columns, is compiled once. The syntax is
    the same on SQLite (3.35+) and PostgreSQL.
    """
    table = KitClaim.__table__
    names = ", ".join(_CLAIM_INSERT_COLUMNS)
    values = ", ".join(f":{name}" for name in _CLAIM_INSERT_COLUMNS)
    returning = ", ".join(column.name for column in table.columns)
    text = sa.text(
        f"INSERT INTO {table.name} ({names}) VALUES ({values}) "  # noqa: S608  # nosec B608 (our table and column names, no input)
        f"ON CONFLICT DO NOTHING RETURNING {returning}"
    ).bindparams(*(sa.bindparam(name, type_=table.c[name].type) for name in _CLAIM_INSERT_COLUMNS))
    return sa.select(KitClaim).from_statement(text.columns(*table.columns))


def _release(claim_row: KitClaim) -> None:
    """Put a reserved unit back on the shelf."""
    moved = db.session.execute(
        sa.update(KitStock)
        .where(
            KitStock.kit_type_id == claim_row.kit_type_id,
            KitStock.point_id == claim_row.point_id,
            KitStock.reserved > 0,
        )
        .values(available=KitStock.available + 1, reserved=KitStock.reserved - 1)
        .execution_options(synchronize_session=False)
    )
    if moved.rowcount != 1:
        raise RuntimeError(f"stock of claim {claim_row.id} holds no reservation")


def _hand_out(claim_row: KitClaim) -> None:
    moved = db.session.execute(
        sa.update(KitStock)
        .where(
            KitStock.kit_type_id == claim_row.kit_type_id,
            KitStock.point_id == claim_row.point_id,
            KitStock.reserved > 0,
        )
        .values(picked_up=KitStock.picked_up + 1, reserved=KitStock.reserved - 1)
        .execution_options(synchronize_session=False)
    )
    if moved.rowcount != 1:
        raise RuntimeError(f"stock of claim {claim_row.id} holds no reservation")


def _refund(claim_row: KitClaim) -> None:
    if claim_row.points_spent and claim_row.spend_key:
        points.refund(
            claim_row.spend_key,
            reason="kit_refund",
            idempotency_key=f"kits:refund:{claim_row.id}",
        )


def _move(claim_id: int, where: Iterable[Any], **values: Any) -> bool:
    """Conditionally move a claim out of ``reserved``; True for the one caller that wins."""
    result = db.session.execute(
        sa.update(KitClaim)
        .where(KitClaim.id == claim_id, KitClaim.status == "reserved", *where)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


def _reload(claim_id: int) -> KitClaim:
    found = db.session.scalar(
        sa.select(KitClaim).where(KitClaim.id == claim_id).execution_options(populate_existing=True)
    )
    if found is None:
        raise LookupError(f"kit claim {claim_id} vanished inside its own transaction")
    return found


def get_claim_of(user_id: int, claim_id: int) -> KitClaim:
    """The member's own claim; anyone else's (or none) is NotFound."""
    found = db.session.get(KitClaim, claim_id)
    if found is None or found.user_id != user_id:
        raise NotFound(_l("No such claim."))
    return found


def cancel(user: Any, claim_id: int, *, now: datetime | None = None) -> KitClaim:
    """The member gives a reservation back: stock returns, points are refunded."""
    now = now or utcnow()
    own = get_claim_of(_uid(user), claim_id)
    if not _move(own.id, [], status="cancelled", cancelled_at=now):
        raise DomainError(_l("This claim can no longer be cancelled."))
    _release(own)
    _refund(own)
    db.session.flush()
    return _reload(own.id)


def expire(claim_id: int, *, now: datetime | None = None) -> bool:
    """Release one overdue pickup reservation (False if it was not due or already moved)."""
    now = now or utcnow()
    due = [KitClaim.mode == "pickup", KitClaim.expires_at <= now]
    if not _move(claim_id, due, status="expired", expired_at=now):
        return False
    expired = _reload(claim_id)
    _release(expired)
    _refund(expired)
    notify(
        expired.user_id,
        "kits.expired",
        {"kit": expired.kit_type.name, "point": expired.point.name},
        f"/kits/claims/{expired.id}",
        dedupe_key=f"kits.expired:{expired.id}",
    )
    db.session.flush()
    return True


def due_for_expiry(now: datetime) -> list[int]:
    return list(
        db.session.scalars(
            sa.select(KitClaim.id)
            .where(
                KitClaim.status == "reserved",
                KitClaim.mode == "pickup",
                KitClaim.expires_at <= now,
            )
            .order_by(KitClaim.id)
        )
    )


def remind_expiring(now: datetime, *, within: timedelta = timedelta(days=1)) -> int:
    """Tell members whose reservation ends within ``within`` (once per claim)."""
    sent = 0
    rows = db.session.scalars(
        sa.select(KitClaim).where(
            KitClaim.status == "reserved",
            KitClaim.mode == "pickup",
            KitClaim.expires_at > now,
            KitClaim.expires_at <= now + within,
        )
    )
    for row in rows:
        if notify(
            row.user_id,
            "kits.expiring",
            {
                "kit": row.kit_type.name,
                "point": row.point.name,
                "until": local_datetime(row.expires_at, "short"),
            },
            f"/kits/claims/{row.id}",
            dedupe_key=f"kits.expiring:{row.id}",
        ):
            sent += 1
    db.session.flush()
    return sent


# --- staff: pickup and shipping -------------------------------------------------


def can_hand_over(current: KitClaim, now: datetime | None = None) -> bool:
    """Reserved and, for a pickup, not past its reservation time."""
    now = now or utcnow()
    if current.status != "reserved":
        return False
    return current.mode == "delivery" or (
        current.expires_at is not None and current.expires_at > now
    )


def refusal(current: KitClaim, now: datetime | None = None) -> PickupRefused:
    """Why this claim cannot be handed over now (the answer to a second scan)."""
    now = now or utcnow()
    if current.status == "picked_up":
        return PickupRefused(
            _l(
                "Already picked up at %(time)s (checked by %(staff)s).",
                time=local_datetime(current.picked_up_at, "short"),
                staff=current.picker.name if current.picker else "—",
            ),
            current,
        )
    if current.status == "shipped":
        return PickupRefused(
            _l("Already shipped at %(time)s.", time=local_datetime(current.shipped_at, "short")),
            current,
        )
    if current.status == "cancelled":
        return PickupRefused(_l("This claim was cancelled by the member."), current)
    if current.status == "expired" or (
        current.expires_at is not None and current.expires_at <= now
    ):
        return PickupRefused(
            _l(
                "This reservation expired at %(time)s.",
                time=local_datetime(current.expires_at, "short"),
            ),
            current,
        )
    if current.mode == "delivery":
        return PickupRefused(_l("This claim is for delivery; mark it shipped instead."), current)
    return PickupRefused(_l("This claim cannot be picked up."), current)


def mark_picked_up(claim_id: int, staff: Any, *, now: datetime | None = None) -> KitClaim:
    """Hand the kit over. Exactly one of any number of simultaneous scans succeeds."""
    now = now or utcnow()
    ok = _move(
        claim_id,
        [KitClaim.mode == "pickup", KitClaim.expires_at > now],
        status="picked_up",
        picked_up_at=now,
        picked_up_by=_uid(staff),
    )
    current = _reload(claim_id)
    if not ok:
        raise refusal(current, now)
    _hand_out(current)
    record(staff, "kits.claim.picked_up", "kit_claim", current.id, {"code": current.pickup_code})
    db.session.flush()
    return current


def mark_shipped(
    claim_id: int, staff: Any, note: str | None, *, now: datetime | None = None
) -> KitClaim:
    """Record that a delivery-mode claim was sent, with a tracking note the member sees."""
    now = now or utcnow()
    note = (note or "").strip()
    if not note:
        raise DomainError(_l("Enter the courier and tracking number."), field="tracking_note")
    if len(note) > 200:
        raise DomainError(_l("Use at most 200 characters."), field="tracking_note")
    ok = _move(
        claim_id,
        [KitClaim.mode == "delivery"],
        status="shipped",
        shipped_at=now,
        shipped_by=_uid(staff),
        tracking_note=note,
    )
    current = _reload(claim_id)
    if not ok:
        if current.status == "reserved" and current.mode == "pickup":
            raise PickupRefused(_l("This claim is for pickup at the point."), current)
        raise refusal(current, now)
    _hand_out(current)
    record(staff, "kits.claim.shipped", "kit_claim", current.id, {"note": note})
    notify(
        current.user_id,
        "kits.shipped",
        {"kit": current.kit_type.name, "note": note},
        f"/kits/claims/{current.id}",
    )
    db.session.flush()
    return current


def claims_by_phone(phone: str) -> list[KitClaim]:
    return list(
        db.session.scalars(
            sa.select(KitClaim)
            .join(User, User.id == KitClaim.user_id)
            .where(User.phone == phone)
            .order_by(KitClaim.id.desc())
            .limit(50)
        )
    )


# --- staff: kit types, points, stock --------------------------------------------

_ITEM_RE = re.compile(r"^(?P<name>.+?)\s*(?:[×xX*＊]\s*|\s+)(?P<qty>\d{1,5})\s*(?:\S{0,2})?$")


def parse_contents(text: str | None) -> list[tuple[str, int]]:
    """Lines like ``口罩 ×20`` → [("口罩", 20)]; raises with the line number of a bad line."""
    items: list[tuple[str, int]] = []
    for number, raw in enumerate((text or "").splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        match = _ITEM_RE.match(line)
        qty = int(match["qty"]) if match else 0
        name = match["name"].strip() if match else ""
        if not match or not name or qty < 1 or len(name) > 60:
            raise DomainError(
                _l("Line %(n)s: write one item per line, like “口罩 ×20”.", n=number),
                field="contents",
            )
        items.append((name, qty))
    if not items:
        raise DomainError(_l("List at least one item, like “口罩 ×20”."), field="contents")
    return items


def format_contents(kit: KitType) -> str:
    return "\n".join(f"{item.name} ×{item.quantity}" for item in kit.items)


def save_kit_type(
    actor: Any,
    kit: KitType | None,
    *,
    name: str,
    description: str,
    contents: str,
    opens_at: datetime,
    closes_at: datetime,
    points_cost: int,
    required_tag: str | None,
    enterprise_ids: Iterable[int],
    branch_ids: Iterable[int],
    delivery_allowed: bool,
    active: bool,
    picture_id: int | None = None,
) -> KitType:
    """Create or update a kit type (audited)."""
    name = (name or "").strip()
    if not name:
        raise DomainError(_l("Enter a name."), field="name")
    clash = db.session.scalar(sa.select(KitType.id).where(KitType.name == name))
    if clash is not None and (kit is None or clash != kit.id):
        raise DomainError(_l("Another kit already has this name."), field="name")
    items = parse_contents(contents)
    if closes_at <= opens_at:
        raise DomainError(_l("The claim window must end after it starts."), field="closes_at")
    if not 0 <= points_cost <= MAX_POINTS_COST:
        raise DomainError(
            _l("Enter 0 to %(max)s points.", max=MAX_POINTS_COST), field="points_cost"
        )
    enterprises = list(
        db.session.scalars(sa.select(Enterprise).where(Enterprise.id.in_(list(enterprise_ids))))
    )
    branches = list(
        db.session.scalars(sa.select(UnionBranch).where(UnionBranch.id.in_(list(branch_ids))))
    )
    created = kit is None
    if kit is None:
        kit = KitType(name=name, opens_at=opens_at, closes_at=closes_at)
        db.session.add(kit)
    kit.name = name
    kit.description = (description or "").strip()
    kit.opens_at, kit.closes_at = opens_at, closes_at
    kit.points_cost = points_cost
    kit.required_tag = (required_tag or "").strip() or None
    kit.delivery_allowed = bool(delivery_allowed)
    kit.active = bool(active)
    kit.enterprises = enterprises
    kit.branches = branches
    if picture_id is not None:
        kit.picture_id = picture_id
    kit.items = [
        KitItem(name=item_name, quantity=qty, position=index)
        for index, (item_name, qty) in enumerate(items)
    ]
    db.session.flush()
    record(
        actor,
        "kits.type.create" if created else "kits.type.update",
        "kit_type",
        kit.id,
        {
            "name": kit.name,
            "contents": format_contents(kit),
            "points_cost": kit.points_cost,
            "required_tag": kit.required_tag,
            "enterprises": [e.name for e in enterprises],
            "branches": [b.name for b in branches],
            "delivery_allowed": kit.delivery_allowed,
            "active": kit.active,
        },
    )
    return kit


def save_point(
    actor: Any,
    point: PickupPoint | None,
    *,
    name: str,
    address: str,
    hours: str,
    active: bool = True,
) -> PickupPoint:
    """Create or update a pickup point (audited)."""
    name, address, hours = (name or "").strip(), (address or "").strip(), (hours or "").strip()
    if not name:
        raise DomainError(_l("Enter a name."), field="name")
    if not address:
        raise DomainError(_l("Enter the address."), field="address")
    clash = db.session.scalar(sa.select(PickupPoint.id).where(PickupPoint.name == name))
    if clash is not None and (point is None or clash != point.id):
        raise DomainError(_l("Another pickup point already has this name."), field="name")
    created = point is None
    if point is None:
        point = PickupPoint(name=name, address=address)
        db.session.add(point)
    point.name, point.address, point.hours, point.active = name, address, hours, bool(active)
    db.session.flush()
    record(
        actor,
        "kits.point.create" if created else "kits.point.update",
        "kit_pickup_point",
        point.id,
        {"name": name, "address": address, "hours": hours, "active": point.active},
    )
    return point


def adjust_stock(
    actor: Any, kit_type_id: int, point_id: int, delta: Any, reason: str | None
) -> KitStock:
    """Add (or, with a negative number, remove) units at a point, with a reason.

    Stock never drops below what is reserved or handed out: only units on the
    shelf can be removed (``UPDATE … WHERE available + delta >= 0``).
    """
    reason = (reason or "").strip()
    if isinstance(delta, bool) or not isinstance(delta, int) or delta == 0:
        raise DomainError(_l("Enter a whole number of units other than 0."), field="delta")
    if abs(delta) > MAX_STOCK_CHANGE:
        raise DomainError(
            _l("Change at most %(max)s units at once.", max=MAX_STOCK_CHANGE), field="delta"
        )
    if not reason:
        raise DomainError(_l("Give a reason for the change."), field="reason")
    if len(reason) > 200:
        raise DomainError(_l("Use at most 200 characters."), field="reason")
    if db.session.get(KitType, kit_type_id) is None:
        raise NotFound(_l("No such kit."))
    point = db.session.get(PickupPoint, point_id)
    if point is None:
        raise DomainError(_l("Choose a pickup point."), field="point")
    insert_ignoring_conflicts(
        db.session,
        KitStock.__table__,
        {
            "kit_type_id": kit_type_id,
            "point_id": point_id,
            "received": 0,
            "reserved": 0,
            "picked_up": 0,
            "available": 0,
        },
        ["kit_type_id", "point_id"],
    )
    changed = db.session.execute(
        sa.update(KitStock)
        .where(
            KitStock.kit_type_id == kit_type_id,
            KitStock.point_id == point_id,
            KitStock.available + delta >= 0,
        )
        .values(received=KitStock.received + delta, available=KitStock.available + delta)
        .execution_options(synchronize_session=False)
    )
    stock = db.session.scalar(
        sa.select(KitStock)
        .where(KitStock.kit_type_id == kit_type_id, KitStock.point_id == point_id)
        .execution_options(populate_existing=True)
    )
    if stock is None:
        raise LookupError(f"kit stock ({kit_type_id}, {point_id}) not found")
    if changed.rowcount != 1:
        raise DomainError(
            _l(
                "Only %(n)s units are on the shelf; reserved and handed-out kits cannot be "
                "removed.",
                n=stock.available,
            ),
            field="delta",
        )
    db.session.add(StockMove(stock_id=stock.id, delta=delta, reason=reason, actor_id=_uid(actor)))
    record(
        actor,
        "kits.stock.adjust",
        "kit_stock",
        stock.id,
        {"kit_type_id": kit_type_id, "point": point.name, "delta": delta, "reason": reason},
    )
    db.session.flush()
    return stock


# --- figures and lists ----------------------------------------------------------


@dataclass
class Figures:
    received: int = 0
    reserved: int = 0
    picked_up: int = 0
    available: int = 0
    expired: int = 0
    cancelled: int = 0

    @property
    def claimed(self) -> int:
        """Live claims: reserved now or already handed out."""
        return self.reserved + self.picked_up


def figures_by_kit() -> dict[int, Figures]:
    """kit type id -> figures (two aggregate queries)."""
    result: dict[int, Figures] = {}
    for kit_id, received, reserved, picked_up, available in db.session.execute(
        sa.select(
            KitStock.kit_type_id,
            sa.func.sum(KitStock.received),
            sa.func.sum(KitStock.reserved),
            sa.func.sum(KitStock.picked_up),
            sa.func.sum(KitStock.available),
        ).group_by(KitStock.kit_type_id)
    ):
        result[kit_id] = Figures(
            int(received or 0), int(reserved or 0), int(picked_up or 0), int(available or 0)
        )
    for kit_id, status, count in db.session.execute(
        sa.select(KitClaim.kit_type_id, KitClaim.status, sa.func.count(KitClaim.id))
        .where(KitClaim.status.in_(("expired", "cancelled")))
        .group_by(KitClaim.kit_type_id, KitClaim.status)
    ):
        setattr(result.setdefault(kit_id, Figures()), status, int(count))
    return result


def total_figures() -> Figures:
    total = Figures()
    for figures in figures_by_kit().values():
        for name in ("received", "reserved", "picked_up", "available", "expired", "cancelled"):
            setattr(total, name, getattr(total, name) + getattr(figures, name))
    return total


def claims_query(
    *,
    status: str | None = None,
    point_id: int | None = None,
    kit_type_id: int | None = None,
    mode: str | None = None,
    day_from: date | None = None,
    day_to: date | None = None,
) -> sa.Select:
    """Staff claims list: newest first, filtered."""
    query = sa.select(KitClaim)
    if status:
        query = query.where(KitClaim.status == status)
    if point_id:
        query = query.where(KitClaim.point_id == point_id)
    if kit_type_id:
        query = query.where(KitClaim.kit_type_id == kit_type_id)
    if mode:
        query = query.where(KitClaim.mode == mode)
    if day_from:
        query = query.where(KitClaim.created_at >= local_day_start(day_from))
    if day_to:
        query = query.where(KitClaim.created_at < local_day_start(day_to + timedelta(days=1)))
    return query.order_by(KitClaim.id.desc())


def handed_out(status: str) -> bool:
    return status in HANDED_OUT
