"""What the donations domain registers: points reasons and links, notification texts,
integrity checks, demo data, panels and exports."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from functools import cache
from typing import Any

import sqlalchemy as sa
import sqlalchemy.orm as so
from flask import url_for

from memberplatform.core.registry import (
    admin_panel,
    demo_seeder,
    home_panel,
    integrity_check,
    me_panel,
    register_export,
)
from memberplatform.db import utcnow
from memberplatform.donations import services
from memberplatform.donations.models import Campaign, Donation, Fulfilment, format_amount
from memberplatform.extensions import db
from memberplatform.notifications.services import register_message
from memberplatform.points import services as points
from memberplatform.points.models import LedgerEntry
from memberplatform.web.i18n import lazy_gettext as _l

points.register_reason("donation", _l("Points donation"))
points.register_reason("donation_refund", _l("Refund of a points donation (campaign cancelled)"))
points.register_ref_link(
    "donation", lambda donation_id: url_for("donations.my_donation", donation_id=donation_id)
)

register_message(
    "donations.refunded",
    _l("The campaign “%(campaign)s” was cancelled; your %(points)s points have been returned."),
)
register_message(
    "donations.delivered",
    _l("Delivered: the campaign “%(campaign)s” has handed over %(amount)s. Thank you!"),
)

register_export(_l("Points donations (all campaigns)"), "donations.export_all")


# --- integrity ---------------------------------------------------------------------


@integrity_check("donations: pledged units equal the donations and stay within the target")
def _pledged_matches_donations(session: so.Session) -> Iterator[str]:
    totals = (
        sa.select(
            Donation.campaign_id,
            sa.func.sum(Donation.units).label("units"),
            sa.func.count(Donation.id).label("count"),
            sa.func.count(sa.distinct(Donation.user_id)).label("donors"),
        )
        .group_by(Donation.campaign_id)
        .subquery()
    )
    units = sa.func.coalesce(totals.c.units, 0)
    count = sa.func.coalesce(totals.c.count, 0)
    donors = sa.func.coalesce(totals.c.donors, 0)
    rows = session.execute(
        sa.select(
            Campaign.id,
            Campaign.pledged_units,
            Campaign.target_units,
            Campaign.donation_count,
            Campaign.donor_count,
            units,
            count,
            donors,
        )
        .outerjoin(totals, totals.c.campaign_id == Campaign.id)
        .where(
            sa.or_(
                Campaign.pledged_units != units,
                Campaign.pledged_units > Campaign.target_units,
                Campaign.donation_count != count,
                Campaign.donor_count != donors,
            )
        )
    )
    for cid, pledged, target, n, d, real_units, real_n, real_d in rows:
        yield (
            f"campaign {cid}: pledged {pledged} (target {target}), {n} donations, {d} donors; "
            f"donations sum to {real_units} units, {real_n} donations, {real_d} donors"
        )


@integrity_check("donations: each donation has exactly one ledger debit")
def _one_debit_each(session: so.Session) -> Iterator[str]:
    debits = (
        sa.select(
            LedgerEntry.ref_id,
            sa.func.count(LedgerEntry.id).label("n"),
            sa.func.sum(LedgerEntry.amount).label("amount"),
            sa.func.max(LedgerEntry.id).label("entry_id"),
        )
        .where(LedgerEntry.ref_type == "donation", LedgerEntry.kind == "spend")
        .group_by(LedgerEntry.ref_id)
        .subquery()
    )
    rows = session.execute(
        sa.select(
            Donation.id, Donation.points, Donation.ledger_entry_id, debits.c.n, debits.c.amount
        )
        .outerjoin(debits, debits.c.ref_id == Donation.id)
        .where(
            sa.or_(
                debits.c.n.is_(None),
                debits.c.n != 1,
                debits.c.amount != -Donation.points,
                Donation.ledger_entry_id.is_(None),
                Donation.ledger_entry_id != debits.c.entry_id,
            )
        )
        .limit(100)
    )
    for donation_id, points_, entry_id, n, amount in rows:
        yield (
            f"donation {donation_id}: {n or 0} debit(s) totalling {amount or 0} "
            f"for {points_} points (entry {entry_id})"
        )
    orphans = session.execute(
        sa.select(LedgerEntry.id, LedgerEntry.ref_id)
        .outerjoin(Donation, Donation.id == LedgerEntry.ref_id)
        .where(LedgerEntry.ref_type == "donation", Donation.id.is_(None))
        .limit(100)
    )
    for entry_id, ref_id in orphans:
        yield f"ledger entry {entry_id} refers to missing donation {ref_id}"


@integrity_check("donations: each refund has exactly one credit; cancelled campaigns are refunded")
def _one_credit_per_refund(session: so.Session) -> Iterator[str]:
    credits = (
        sa.select(
            LedgerEntry.ref_id,
            sa.func.count(LedgerEntry.id).label("n"),
            sa.func.sum(LedgerEntry.amount).label("amount"),
        )
        .where(LedgerEntry.ref_type == "donation", LedgerEntry.kind == "refund")
        .group_by(LedgerEntry.ref_id)
        .subquery()
    )
    n = sa.func.coalesce(credits.c.n, 0)
    rows = session.execute(
        sa.select(Donation.id, Donation.points, Donation.refunded_at, n, credits.c.amount)
        .outerjoin(credits, credits.c.ref_id == Donation.id)
        .where(
            sa.or_(
                sa.and_(Donation.refunded_at.is_(None), n != 0),
                sa.and_(Donation.refunded_at.is_not(None), n != 1),
                sa.and_(Donation.refunded_at.is_not(None), credits.c.amount != Donation.points),
            )
        )
        .limit(100)
    )
    for donation_id, points_, refunded_at, count, amount in rows:
        state = "refunded" if refunded_at else "not refunded"
        yield f"donation {donation_id} ({state}, {points_} points): {count} credit(s) of {amount}"
    for campaign_id, left in session.execute(
        sa.select(Donation.campaign_id, sa.func.count(Donation.id))
        .join(Campaign, Campaign.id == Donation.campaign_id)
        .where(Campaign.status == "cancelled", Donation.refunded_at.is_(None))
        .group_by(Donation.campaign_id)
    ):
        yield (
            f"campaign {campaign_id} is cancelled but {left} donation(s) are not refunded "
            f"(run: flask --app memberplatform donations-refund {campaign_id})"
        )


@integrity_check("donations: delivered units equal the fulfilment records, within the pledge")
def _fulfilled_matches_records(session: so.Session) -> Iterator[str]:
    totals = (
        sa.select(Fulfilment.campaign_id, sa.func.sum(Fulfilment.quantity).label("quantity"))
        .group_by(Fulfilment.campaign_id)
        .subquery()
    )
    quantity = sa.func.coalesce(totals.c.quantity, 0)
    for cid, fulfilled, pledged, real in session.execute(
        sa.select(Campaign.id, Campaign.fulfilled_units, Campaign.pledged_units, quantity)
        .outerjoin(totals, totals.c.campaign_id == Campaign.id)
        .where(
            sa.or_(
                Campaign.fulfilled_units != quantity,
                Campaign.fulfilled_units > Campaign.pledged_units,
            )
        )
    ):
        yield f"campaign {cid}: fulfilled {fulfilled} of {pledged}, records sum to {real}"


# --- panels ------------------------------------------------------------------------


def _me_reads(user_id: int) -> list[tuple[sa.Select, dict[str, Any]]]:
    return [(_my_donations(), {"user_id": user_id})]


@me_panel("donations", 20, "donations/_me_panel.html", reads=_me_reads)
def _me(user: Any) -> dict[str, Any]:
    """The latest five donations and the totals of all of them, in one statement."""
    rows = db.read(*_me_reads(user.id)[0]).all()
    return {
        "count": rows[0].live_count if rows else 0,
        "points": rows[0].live_points if rows else 0,
        "recent": [(row, format_amount(row.units, row.unit_label, row.item_name)) for row in rows],
    }


@cache
def _my_donations() -> sa.Select:
    live = Donation.refunded_at.is_(None)
    return (
        sa.select(
            Donation.certificate_no,
            Donation.units,
            Donation.created_at,
            Donation.refunded_at,
            Campaign.title.label("campaign_title"),
            Campaign.unit_label,
            Campaign.item_name,
            # window totals see every donation of the member, before the LIMIT
            sa.func.sum(sa.case((live, 1), else_=0)).over().label("live_count"),
            sa.func.sum(sa.case((live, Donation.points), else_=0)).over().label("live_points"),
        )
        .join(Campaign, Campaign.id == Donation.campaign_id)
        .where(Donation.user_id == sa.bindparam("user_id"))
        .order_by(Donation.id.desc())
        .limit(5)
    )


@home_panel("donations", 20, "donations/_home_panel.html")
def _home() -> dict[str, Any]:
    featured = db.session.scalar(
        sa.select(Campaign)
        .where(Campaign.status.in_(("open", "closed", "fulfilled")))
        .order_by(sa.case((Campaign.status == "open", 0), else_=1), Campaign.pledged_units.desc())
        .limit(1)
    )
    donors = db.session.scalar(
        sa.select(sa.func.count(sa.distinct(Donation.user_id))).where(
            Donation.refunded_at.is_(None)
        )
    )
    return {"featured": featured, "donors": donors or 0}


@admin_panel("donations", 20, "donations/_admin_panel.html")
def _admin() -> dict[str, Any]:
    open_count, total = db.session.execute(
        sa.select(
            sa.func.count(Campaign.id).filter(Campaign.status == "open"),
            sa.func.count(Campaign.id),
        )
    ).one()
    donations, donors, points_total = db.session.execute(
        sa.select(
            sa.func.count(Donation.id),
            sa.func.count(sa.distinct(Donation.user_id)),
            sa.func.coalesce(sa.func.sum(Donation.points), 0),
        ).where(Donation.refunded_at.is_(None))
    ).one()
    return {
        "open": open_count,
        "campaigns": total,
        "donations": donations,
        "donors": donors,
        "points": points_total,
    }


# --- demo data ---------------------------------------------------------------------

MASK_TITLE = "积分捐：为武汉科技大学附属普仁医院捐赠医用口罩"
MASK_STORY = (
    "疫情期间，科学城民营科技企业的职工通过会员服务平台“积分捐”，把平日积累的会员积分"
    "捐出来：每 10 积分兑换 1 只医用口罩，由工会统一采购后送到武汉科技大学附属普仁医院，"
    "支援一线医护人员。目标 13000 只口罩，3382 名职工参与了这次接力。"
)
PAST_TITLE = "积分捐：为社区防疫志愿者捐赠消毒液"
PAST_STORY = (
    "春节后复工前，工会发起积分捐，为中关村街道社区防疫志愿者服务队捐赠消毒液。"
    "每 20 积分兑换 1 瓶消毒液，已全部采购并送达。"
)


def _ensure_points(member: Any, needed: int, tag: str) -> None:
    if points.balance_of(member) < needed:
        points.earn(
            member,
            needed,
            reason="grant",
            idempotency_key=f"demo:donations:{tag}:{member.id}",
            note="演示积分",
        )


@demo_seeder("donations", 20)
def _seed(session: so.Session, users: Any, *args: Any) -> None:
    now = utcnow()
    staff = users.staff
    members = list(users.members)

    mask = session.scalar(sa.select(Campaign).where(Campaign.title == MASK_TITLE))
    if mask is None:
        mask = services.create_campaign(
            staff,
            title=MASK_TITLE,
            story=MASK_STORY,
            beneficiary_name="武汉科技大学附属普仁医院",
            beneficiary_type="hospital",
            item_name="医用口罩",
            unit_label="只",
            points_per_unit=10,
            target_units=13000,
            min_units=1,
            max_units=500,
            opens_at=now - timedelta(days=7),
            closes_at=now + timedelta(days=90),
        )
        services.change_status(mask.id, "open", staff)
    if mask.status == "open":
        for i, member in enumerate(members[:36]):
            key = f"demo-mask-{i + 1:03d}"
            if session.scalar(sa.select(Donation.id).where(Donation.idempotency_key == key)):
                continue
            units = (5, 10, 20, 30, 50)[i % 5]
            if units > mask.remaining_units:
                break
            _ensure_points(member, units * mask.points_per_unit, "mask")
            services.donate(member, mask.id, units, idempotency_key=key, show_on_wall=i % 4 != 3)

    past = session.scalar(sa.select(Campaign).where(Campaign.title == PAST_TITLE))
    if past is None:
        opened = now - timedelta(days=400)
        past = services.create_campaign(
            staff,
            title=PAST_TITLE,
            story=PAST_STORY,
            beneficiary_name="中关村街道社区防疫志愿者服务队",
            beneficiary_type="community",
            item_name="消毒液",
            unit_label="瓶",
            points_per_unit=20,
            target_units=200,
            min_units=None,
            max_units=None,
            opens_at=opened,
            closes_at=opened + timedelta(days=14),
        )
        past.status = "open"
        session.flush()
    if past.status == "open":
        for i, member in enumerate(members[:40]):
            key = f"demo-past-{i + 1:03d}"
            if session.scalar(sa.select(Donation.id).where(Donation.idempotency_key == key)):
                continue
            _ensure_points(member, 100, "past")
            services.donate(
                member,
                past.id,
                5,
                idempotency_key=key,
                now=past.opens_at + timedelta(days=1, minutes=17 * i),
            )
        services.change_status(past.id, "close", staff)
    if past.status == "closed":
        if past.fulfilled_units == 0:
            services.record_fulfilment(
                past.id,
                staff,
                quantity=past.pledged_units,
                delivered_on=date.fromordinal(past.closes_at.date().toordinal() + 2),
                note="200 瓶 500ml 医用消毒液已由工会统一采购，送达社区防疫志愿者服务队并签收。",
            )
        services.change_status(past.id, "fulfil", staff)
    session.flush()
