"""Donations: campaigns, donate, cancel with refunds, fulfilment. Services flush, never commit.

Locks are always taken in the same order — the campaign row first, then a
member's points account (inside ``points.services``) — so a donation and a
cancellation of the same campaign queue instead of deadlocking.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache
from typing import Any

import sqlalchemy as sa
from werkzeug.datastructures import FileStorage

from memberplatform.audit.services import record
from memberplatform.auth.models import User
from memberplatform.core.errors import DomainError
from memberplatform.core.masking import mask_name
from memberplatform.core.uploads import DOCUMENTS, save_upload
from memberplatform.db import utcnow
from memberplatform.donations.models import BENEFICIARY_TYPES, Campaign, Donation, Fulfilment
from memberplatform.extensions import db
from memberplatform.notifications.services import notify
from memberplatform.points import services as points
from memberplatform.points.services import Ref
from memberplatform.web.i18n import lazy_gettext as _l

MAX_UNITS = 1_000_000
FROZEN_WHEN_DONATED = ("points_per_unit", "item_name", "unit_label")
EDITABLE = (
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
KEY_PATTERN = re.compile(r"^[A-Za-z0-9-]{8,64}$")
CERTIFICATE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
RECENT_DONORS = 10
REFUND_BATCH = 200


# --- reading ---------------------------------------------------------------------


def lock_campaign(campaign_id: int) -> Campaign:
    """The campaign, locked until the end of the transaction (404-style error if unknown)."""
    campaign = db.session.scalar(
        sa.select(Campaign)
        .where(Campaign.id == campaign_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if campaign is None:
        raise DomainError(_l("There is no such campaign."))
    return campaign


#: what the donor wall and a member's list show of a donation (rows, not objects:
#: the campaign page and every donation in a rush read them, ``db.read``)
_LISTED = (
    Donation.id,
    Donation.campaign_id,
    Donation.user_id,
    Donation.units,
    Donation.points,
    Donation.wall_name,
    Donation.certificate_no,
    Donation.created_at,
    Donation.refunded_at,
)


def recent_donations(campaign_id: int, limit: int = RECENT_DONORS) -> list[Any]:
    """The donor wall: the latest donations (capped), newest first, as rows."""
    return db.read(_recent_statement(limit), {"campaign_id": campaign_id}).all()


@cache
def _recent_statement(limit: int) -> sa.Select:
    # Planned for each campaign (db.read's ``plan_per_execution``): the donations are
    # skewed (a few campaigns hold nearly all), and PostgreSQL's one generic plan walked
    # the primary key backwards, filtering, which takes 8 ms for a small campaign among
    # 100,000 donations to others; planned with the campaign it walks (campaign_id, id).
    return (
        sa.select(*_LISTED)
        .where(Donation.campaign_id == sa.bindparam("campaign_id"))
        .order_by(Donation.id.desc())
        .limit(limit)
        .execution_options(plan_per_execution=True)
    )


def donations_of(user: Any, campaign_id: int | None = None, limit: int = 50) -> list[Any]:
    """A member's donations (to one campaign), newest first, as rows."""
    return db.read(*donations_of_read(user, campaign_id, limit)).all()


def donations_of_read(
    user: Any, campaign_id: int | None = None, limit: int = 50
) -> tuple[sa.Select, dict[str, Any]]:
    """The statement :func:`donations_of` reads and its parameters (read ahead on the
    campaign page)."""
    params = {"user_id": _user_id(user), "campaign_id": campaign_id}
    return _donations_of_statement(campaign_id is not None, limit), params


@cache
def _donations_of_statement(one_campaign: bool, limit: int) -> sa.Select:
    query = sa.select(*_LISTED).where(Donation.user_id == sa.bindparam("user_id"))
    if one_campaign:
        query = query.where(Donation.campaign_id == sa.bindparam("campaign_id"))
    return query.order_by(Donation.id.desc()).limit(limit)


def fulfilments_of(campaign_id: int) -> list[Any]:
    """A campaign's deliveries, in order, as rows."""
    return db.read(*fulfilments_read(campaign_id)).all()


def fulfilments_read(campaign_id: int) -> tuple[sa.Select, dict[str, Any]]:
    """The statement :func:`fulfilments_of` reads and its parameters."""
    return _fulfilments_statement(), {"campaign_id": campaign_id}


@cache
def _fulfilments_statement() -> sa.Select:
    return (
        sa.select(
            Fulfilment.id,
            Fulfilment.campaign_id,
            Fulfilment.quantity,
            Fulfilment.delivered_on,
            Fulfilment.note,
            Fulfilment.upload_id,
        )
        .where(Fulfilment.campaign_id == sa.bindparam("campaign_id"))
        .order_by(Fulfilment.delivered_on, Fulfilment.id)
    )


def by_certificate(number: str) -> Donation | None:
    number = (number or "").strip().upper()
    if not number or len(number) > 24:
        return None
    return db.session.scalar(sa.select(Donation).where(Donation.certificate_no == number))


def _user_id(user: Any) -> int:
    return user if isinstance(user, int) else user.id


# --- campaigns -------------------------------------------------------------------


def _clean(values: dict[str, Any]) -> dict[str, Any]:
    """Validate campaign fields; raise DomainError next to the field at fault."""
    out = {key: values[key] for key in EDITABLE if key in values}
    for key in ("title", "beneficiary_name", "item_name"):
        text = (out.get(key) or "").strip()
        if not text:
            raise DomainError(_l("This field is required."), field=key)
        out[key] = text
    out["story"] = (out.get("story") or "").strip()
    out["unit_label"] = (out.get("unit_label") or "").strip()[:10]
    if out.get("beneficiary_type") not in BENEFICIARY_TYPES:
        out["beneficiary_type"] = "other"
    for key in ("points_per_unit", "target_units"):
        number = out.get(key)
        if not isinstance(number, int) or isinstance(number, bool) or not 0 < number <= MAX_UNITS:
            raise DomainError(
                _l("Enter a whole number from 1 to %(max)s.", max=MAX_UNITS), field=key
            )
    for key in ("min_units", "max_units"):
        number = out.get(key)
        if number is not None and (not isinstance(number, int) or not 0 < number <= MAX_UNITS):
            raise DomainError(
                _l("Enter a whole number from 1 to %(max)s, or leave it empty.", max=MAX_UNITS),
                field=key,
            )
    if out.get("min_units") and out.get("max_units") and out["max_units"] < out["min_units"]:
        raise DomainError(
            _l("The maximum must not be smaller than the minimum."), field="max_units"
        )
    if out.get("min_units") and out["min_units"] > out["target_units"]:
        raise DomainError(_l("The minimum must not exceed the target."), field="min_units")
    opens, closes = out.get("opens_at"), out.get("closes_at")
    if not isinstance(opens, datetime):
        raise DomainError(_l("Enter a date and time."), field="opens_at")
    if not isinstance(closes, datetime):
        raise DomainError(_l("Enter a date and time."), field="closes_at")
    if closes <= opens:
        raise DomainError(_l("The campaign must close after it opens."), field="closes_at")
    return out


def create_campaign(actor: Any, **values: Any) -> Campaign:
    """A new campaign, as a draft; staff open it when it is ready."""
    data = _clean(values)
    campaign = Campaign(**data, status="draft", created_by=_user_id(actor))
    db.session.add(campaign)
    db.session.flush()
    record(actor, "donations.campaign.create", "donation_campaign", campaign.id, _audit(data))
    return campaign


def update_campaign(campaign_id: int, actor: Any, **values: Any) -> Campaign:
    """Edit a campaign; once it has donations its item and points per unit are frozen."""
    campaign = lock_campaign(campaign_id)
    if campaign.status in ("fulfilled", "cancelled"):
        raise DomainError(_l("A fulfilled or cancelled campaign can no longer be edited."))
    data = _clean(values)
    if campaign.donation_count:
        for key in FROZEN_WHEN_DONATED:
            if data[key] != getattr(campaign, key):
                raise DomainError(
                    _l(
                        "This campaign already has donations: "
                        "the item and points per unit are fixed."
                    ),
                    field=key,
                )
    if data["target_units"] < campaign.pledged_units:
        raise DomainError(
            _l(
                "%(pledged)s units are already pledged; the target cannot be lower.",
                pledged=campaign.pledged_units,
            ),
            field="target_units",
        )
    changes = {
        key: [_plain(getattr(campaign, key)), _plain(value)]
        for key, value in data.items()
        if getattr(campaign, key) != value
    }
    for key, value in data.items():
        setattr(campaign, key, value)
    db.session.flush()
    if changes:
        record(actor, "donations.campaign.update", "donation_campaign", campaign.id, changes)
    return campaign


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime | date) else value


def _audit(data: dict[str, Any]) -> dict[str, Any]:
    return {key: _plain(value) for key, value in data.items() if key != "story"}


TRANSITIONS = {
    "open": ("draft", "closed"),
    "close": ("open",),
    "fulfil": ("closed",),
}


def change_status(campaign_id: int, action: str, actor: Any) -> Campaign:
    """open (draft/closed → open), close (open → closed), fulfil (closed → fulfilled)."""
    campaign = lock_campaign(campaign_id)
    allowed = TRANSITIONS.get(action)
    if allowed is None:
        raise DomainError(_l("This action is not available."))
    if campaign.status not in allowed:
        raise DomainError(_l("This action is not possible for the campaign's current status."))
    now = utcnow()
    before = campaign.status
    if action == "open":
        if campaign.closes_at <= now:
            raise DomainError(
                _l("The closing time has passed: set a later closing time first."),
                field="closes_at",
            )
        campaign.status = "open"
        campaign.closed_at = None
    elif action == "close":
        campaign.status = "closed"
        campaign.closed_at = now
    else:
        if campaign.fulfilled_units == 0:
            raise DomainError(_l("Record at least one delivery before marking it delivered."))
        campaign.status = "fulfilled"
        campaign.fulfilled_at = now
        _notify_delivered(campaign)
    db.session.flush()
    record(
        actor,
        f"donations.campaign.{action}",
        "donation_campaign",
        campaign.id,
        {"status": [before, campaign.status]},
    )
    return campaign


def _notify_delivered(campaign: Campaign) -> None:
    link = f"/donations/{campaign.id}"
    for user_id in db.session.scalars(
        sa.select(Donation.user_id).where(Donation.campaign_id == campaign.id).distinct()
    ):
        notify(
            user_id,
            "donations.delivered",
            {"campaign": campaign.title, "amount": campaign.amount(campaign.fulfilled_units)},
            link,
            dedupe_key=f"donations.delivered:{campaign.id}:{user_id}",
        )


# --- donate ----------------------------------------------------------------------


@dataclass(frozen=True)
class DonationResult:
    donation: Donation
    created: bool  # False: a replayed form; nothing was charged again


def new_certificate_no(now: datetime | None = None) -> str:
    year = (now or utcnow()).year
    tail = "".join(secrets.choice(CERTIFICATE_ALPHABET) for _ in range(10))
    return f"JZ{year}-{tail}"


def check_units(campaign: Campaign, units: Any) -> int:
    """The units a member asked for, or a DomainError saying what is allowed."""
    if isinstance(units, bool) or not isinstance(units, int):
        raise DomainError(_l("Enter a whole number of units."), field="units")
    if units < 1:
        raise DomainError(_l("Donate at least 1 unit."), field="units")
    if campaign.min_units and units < campaign.min_units:
        raise DomainError(
            _l("Donate at least %(min)s units.", min=campaign.min_units), field="units"
        )
    if campaign.max_units and units > campaign.max_units:
        raise DomainError(
            _l("At most %(max)s units per donation.", max=campaign.max_units), field="units"
        )
    if units > campaign.remaining_units:
        raise DomainError(
            _l(
                "Only %(left)s units remain to reach the target; donate at most that many.",
                left=campaign.remaining_units,
            ),
            field="units",
        )
    return units


def check_accepting(campaign: Campaign, now: datetime | None = None) -> None:
    phase = campaign.phase(now)
    if phase == "open":
        if campaign.remaining_units <= 0:
            raise DomainError(_l("The target has been reached; thank you!"), field="units")
        return
    messages = {
        "draft": _l("This campaign is not open yet."),
        "upcoming": _l("This campaign is not open yet."),
        "ended": _l("This campaign has ended."),
        "closed": _l("This campaign is closed."),
        "fulfilled": _l("This campaign is closed."),
        "cancelled": _l("This campaign was cancelled."),
    }
    raise DomainError(messages[phase], field="units")


def _existing_donation(user_id: int, key: str) -> Donation | None:
    """The donation made with this form, if any (every donation asks, twice): its id and
    donor first, the donation loaded only when there is one."""
    found = db.read(_donation_by_key(), {"key": key}).first()
    if found is None:
        return None
    if found.user_id != user_id:
        raise DomainError(_l("This form was already used. Please reload the page and try again."))
    return db.session.get(Donation, found.id)


@cache
def _donation_by_key() -> sa.Select:
    return sa.select(Donation.id, Donation.user_id).where(
        Donation.idempotency_key == sa.bindparam("key")
    )


@cache
def _donor_name() -> sa.Select:
    return sa.select(User.name).where(User.id == sa.bindparam("user_id"))


@cache
def _gave_before() -> sa.Select:
    return (
        sa.select(Donation.id)
        .where(
            Donation.campaign_id == sa.bindparam("campaign_id"),
            Donation.user_id == sa.bindparam("user_id"),
        )
        .limit(1)
    )


def donate(
    member: Any,
    campaign_id: int,
    units: Any,
    *,
    idempotency_key: str,
    show_on_wall: bool = True,
    now: datetime | None = None,
) -> DonationResult:
    """One transaction: debit the ledger, add the units to the campaign, never past its target.

    The same ``idempotency_key`` (one per rendered form) returns the first donation
    and charges nothing again.
    """
    user_id = _user_id(member)
    key = (idempotency_key or "").strip()
    if not KEY_PATTERN.match(key):
        raise DomainError(_l("This form is out of date. Please reload the page and try again."))
    found = _existing_donation(user_id, key)
    if found is not None:
        return DonationResult(found, created=False)
    donor_name = getattr(member, "name", None)  # the signed-in member's, as read with them
    if donor_name is None:  # an id: read before the queue
        donor = db.read(_donor_name(), {"user_id": user_id}).first()
        if donor is None:
            raise DomainError(_l("There is no such member."))
        donor_name = donor.name
    campaign = lock_campaign(campaign_id)  # donations to one campaign queue here
    found = _existing_donation(user_id, key)  # a twin committed while we waited
    if found is not None:
        return DonationResult(found, created=False)
    now = now or utcnow()
    check_accepting(campaign, now)
    units = check_units(campaign, units)
    cost = units * campaign.points_per_unit
    new_donor = (
        db.read(_gave_before(), {"campaign_id": campaign.id, "user_id": user_id}).first() is None
    )
    with db.session.begin_nested():  # a refused debit leaves no half-written donation
        donation = Donation(
            campaign_id=campaign.id,
            user_id=user_id,
            units=units,
            points=cost,
            wall_name=mask_name(donor_name) if show_on_wall else None,
            idempotency_key=key,
            certificate_no=new_certificate_no(now),
            created_at=now,
        )
        db.session.add(donation)
        db.session.flush()
        entry = points.spend(
            user_id,
            cost,
            reason="donation",
            idempotency_key=donation.ledger_key,
            ref=Ref("donation", donation.id),
        )
        donation.ledger_entry_id = entry.id
        pledged = db.write(
            _pledge(),
            {
                "campaign_id": campaign.id,
                "units": units,
                "new_donors": 1 if new_donor else 0,
                "now": now,
            },
        ).scalar()
        if pledged is None:  # cannot happen under the lock; the database guards it anyway
            raise DomainError(_l("The campaign changed; please try again."), field="units")
        db.session.flush()
    db.session.expire(campaign)
    return DonationResult(donation, created=True)


@cache
def _pledge() -> sa.Update:
    """Built once (every donation): the units go on the campaign only while it is open
    and stays within its target."""
    campaigns = Campaign.__table__
    units = sa.bindparam("units", type_=campaigns.c.pledged_units.type)
    return (
        sa.update(campaigns)
        .where(
            campaigns.c.id == sa.bindparam("campaign_id"),
            campaigns.c.status == "open",
            campaigns.c.pledged_units + units <= campaigns.c.target_units,
        )
        .values(
            pledged_units=campaigns.c.pledged_units + units,
            donation_count=campaigns.c.donation_count + 1,
            donor_count=campaigns.c.donor_count + sa.bindparam("new_donors", type_=sa.Integer),
            updated_at=sa.bindparam("now", type_=campaigns.c.updated_at.type),
        )
        .returning(campaigns.c.pledged_units)
    )


# --- cancel and refund -----------------------------------------------------------


def cancel_campaign(campaign_id: int, actor: Any, reason: str, *, limit: int | None = None) -> int:
    """Cancel a campaign and refund every donor once; returns the donations refunded now.

    Running it again on a cancelled campaign (or ``donations-refund``) finishes an
    interrupted refund run; ``limit`` refunds only that many in this transaction.
    """
    reason = (reason or "").strip()
    if not reason:
        raise DomainError(_l("Give a reason for the cancellation."), field="reason")
    campaign = lock_campaign(campaign_id)
    if campaign.status == "fulfilled":
        raise DomainError(_l("A delivered campaign cannot be cancelled."))
    if campaign.status != "cancelled":
        before = campaign.status
        campaign.status = "cancelled"
        campaign.cancelled_at = utcnow()
        campaign.cancel_reason = reason[:500]
        db.session.flush()
        record(
            actor,
            "donations.campaign.cancel",
            "donation_campaign",
            campaign.id,
            {"status": [before, "cancelled"], "reason": reason[:500]},
        )
    return refund_pending(campaign_id, actor=actor, limit=limit)


def refund_pending(campaign_id: int, *, actor: Any = None, limit: int | None = None) -> int:
    """Refund (up to ``limit``) not-yet-refunded donations of a cancelled campaign.

    Each refund carries a key derived from the donation, so a run that was
    interrupted after the points moved but before the donation was marked
    cannot credit twice.
    """
    campaign = lock_campaign(campaign_id)
    if campaign.status != "cancelled":
        raise DomainError(_l("Only a cancelled campaign is refunded."))
    query = (
        sa.select(Donation)
        .where(Donation.campaign_id == campaign_id, Donation.refunded_at.is_(None))
        .order_by(Donation.id)
    )
    if limit:
        query = query.limit(limit)
    done = 0
    for donation in db.session.scalars(query).all():
        entry = points.refund(
            donation.ledger_key,
            reason="donation_refund",
            idempotency_key=f"donation-refund:{donation.id}",
            actor=actor,
        )
        donation.refund_entry_id = entry.id
        donation.refunded_at = utcnow()
        notify(
            donation.user_id,
            "donations.refunded",
            {"campaign": campaign.title, "points": donation.points},
            f"/donations/{campaign.id}",
            dedupe_key=f"donations.refunded:{donation.id}",
        )
        done += 1
    db.session.flush()
    return done


def pending_refunds(campaign_id: int) -> int:
    return (
        db.session.scalar(
            sa.select(sa.func.count(Donation.id)).where(
                Donation.campaign_id == campaign_id, Donation.refunded_at.is_(None)
            )
        )
        or 0
    )


# --- fulfilment ------------------------------------------------------------------


def record_fulfilment(
    campaign_id: int,
    actor: Any,
    *,
    quantity: Any,
    delivered_on: Any,
    note: str = "",
    file: FileStorage | None = None,
) -> Fulfilment:
    """Record pledged units turned into goods and delivered (never more than pledged)."""
    campaign = lock_campaign(campaign_id)
    if campaign.status not in ("open", "closed", "fulfilled"):
        raise DomainError(_l("Deliveries can be recorded only for open or closed campaigns."))
    if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 1:
        raise DomainError(_l("Enter a whole number of at least 1."), field="quantity")
    left = campaign.pledged_units - campaign.fulfilled_units
    if quantity > left:
        raise DomainError(
            _l(
                "Only %(left)s pledged units are not yet delivered.",
                left=left,
            ),
            field="quantity",
        )
    if not isinstance(delivered_on, date):
        raise DomainError(_l("Enter a date."), field="delivered_on")
    upload = None
    if file is not None and file.filename:
        upload = save_upload(
            file,
            kinds=DOCUMENTS,
            max_bytes=5 * 1024 * 1024,
            uploaded_by=_user_id(actor),
            field="file",
        )
    updated = db.session.execute(
        sa.update(Campaign)
        .where(
            Campaign.id == campaign.id,
            Campaign.fulfilled_units + quantity <= Campaign.pledged_units,
        )
        .values(fulfilled_units=Campaign.fulfilled_units + quantity)
        .execution_options(synchronize_session=False)
    )
    if updated.rowcount != 1:
        raise DomainError(_l("The campaign changed; please try again."), field="quantity")
    fulfilment = Fulfilment(
        campaign_id=campaign.id,
        quantity=quantity,
        delivered_on=delivered_on,
        note=(note or "").strip()[:2000],
        upload_id=upload.id if upload else None,
        recorded_by=_user_id(actor),
    )
    db.session.add(fulfilment)
    db.session.flush()
    db.session.expire(campaign)
    record(
        actor,
        "donations.fulfilment.create",
        "donation_campaign",
        campaign.id,
        {"quantity": quantity, "delivered_on": delivered_on.isoformat(), "file": bool(upload)},
    )
    return fulfilment


# --- figures ---------------------------------------------------------------------


def _local_day(column: Any) -> Any:
    """The Asia/Shanghai calendar day of a UTC timestamp column, in SQL."""
    if db.session.get_bind().dialect.name == "postgresql":
        return sa.cast(sa.func.timezone("Asia/Shanghai", sa.func.timezone("UTC", column)), sa.Date)
    return sa.func.date(column, "+8 hours")


def daily_figures(campaign_id: int) -> list[dict[str, Any]]:
    """Per local day: donations, donors, units, and the running total of units."""
    day = _local_day(Donation.created_at).label("day")
    rows = db.session.execute(
        sa.select(
            day,
            sa.func.count(Donation.id),
            sa.func.count(sa.distinct(Donation.user_id)),
            sa.func.sum(Donation.units),
        )
        .where(Donation.campaign_id == campaign_id)
        .group_by(day)
        .order_by(day)
    ).all()
    running = 0
    out = []
    for day_value, count, donors, units in rows:
        running += units or 0
        out.append(
            {
                "day": str(day_value)[:10],
                "donations": count,
                "donors": donors,
                "units": units or 0,
                "total": running,
            }
        )
    return out
