"""What the kits domain registers: points reasons, notification messages, integrity
checks, demo data, the /me, home and admin panels and the CSV export."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from functools import cache
from typing import Any

import sqlalchemy as sa
import sqlalchemy.orm as so
from flask import url_for

from memberplatform.audit.models import AuditEntry
from memberplatform.auth.models import Enterprise
from memberplatform.core.errors import DomainError
from memberplatform.core.registry import (
    admin_panel,
    demo_seeder,
    home_panel,
    integrity_check,
    me_panel,
    register_export,
)
from memberplatform.db import utcnow
from memberplatform.extensions import db
from memberplatform.kits import services
from memberplatform.kits.models import (
    HANDED_OUT,
    LIVE_STATUSES,
    KitClaim,
    KitStock,
    KitType,
    PickupPoint,
    StockMove,
)
from memberplatform.notifications.services import register_message
from memberplatform.points.services import register_reason, register_ref_link
from memberplatform.web.i18n import lazy_gettext as _l

register_reason("kit_claim", _l("Health kit claim"))
register_reason("kit_refund", _l("Health kit claim cancelled: points returned"))
register_ref_link("kit_claim", lambda claim_id: url_for("kits.claim_page", claim_id=claim_id))

register_message(
    "kits.claimed",
    _l(
        "Your %(kit)s is reserved at %(point)s. Pickup code %(code)s; "
        "please pick it up before %(until)s."
    ),
)
register_message(
    "kits.claimed_delivery",
    _l("Your %(kit)s is reserved for delivery; we will tell you when it is shipped."),
)
register_message(
    "kits.expiring",
    _l("Your %(kit)s reservation at %(point)s ends at %(until)s. Please pick it up in time."),
)
register_message(
    "kits.expired",
    _l("Your %(kit)s reservation at %(point)s has expired and the kit was released."),
)
register_message("kits.shipped", _l("Your %(kit)s has been shipped: %(note)s"))

register_export(_l("Kit claims (distribution list)"), "kits.staff_claims_csv")


# --- integrity ------------------------------------------------------------------


@integrity_check("kits: reserved + picked up + left == received, per point")
def _counters_add_up(session: so.Session) -> Iterator[str]:
    for stock_id, received, reserved, picked_up, available in session.execute(
        sa.select(
            KitStock.id,
            KitStock.received,
            KitStock.reserved,
            KitStock.picked_up,
            KitStock.available,
        ).where(
            (KitStock.reserved + KitStock.picked_up + KitStock.available != KitStock.received)
            | (KitStock.available < 0)
            | (KitStock.reserved < 0)
            | (KitStock.picked_up < 0)
        )
    ):
        yield (
            f"stock {stock_id}: reserved {reserved} + picked up {picked_up} + left {available}"
            f" != received {received}"
        )


@integrity_check("kits: stock counters match the claims")
def _counters_match_claims(session: so.Session) -> Iterator[str]:
    reserved = sa.func.sum(sa.case((KitClaim.status == "reserved", 1), else_=0))
    out = sa.func.sum(sa.case((KitClaim.status.in_(HANDED_OUT), 1), else_=0))
    counted = (
        sa.select(
            KitClaim.kit_type_id,
            KitClaim.point_id,
            reserved.label("reserved"),
            out.label("out"),
        )
        .group_by(KitClaim.kit_type_id, KitClaim.point_id)
        .subquery()
    )
    rows = session.execute(
        sa.select(
            KitStock.id,
            KitStock.reserved,
            KitStock.picked_up,
            sa.func.coalesce(counted.c.reserved, 0),
            sa.func.coalesce(counted.c.out, 0),
        )
        .outerjoin(
            counted,
            (counted.c.kit_type_id == KitStock.kit_type_id)
            & (counted.c.point_id == KitStock.point_id),
        )
        .where(
            (KitStock.reserved != sa.func.coalesce(counted.c.reserved, 0))
            | (KitStock.picked_up != sa.func.coalesce(counted.c.out, 0))
        )
    )
    for stock_id, reserved_n, out_n, claims_reserved, claims_out in rows:
        yield (
            f"stock {stock_id}: reserved {reserved_n}/picked up {out_n} but claims say "
            f"{claims_reserved}/{claims_out}"
        )
    orphans = session.scalar(
        sa.select(sa.func.count(KitClaim.id))
        .outerjoin(
            KitStock,
            (KitStock.kit_type_id == KitClaim.kit_type_id)
            & (KitStock.point_id == KitClaim.point_id),
        )
        .where(KitStock.id.is_(None), KitClaim.status.in_(LIVE_STATUSES))
    )
    if orphans:
        yield f"{orphans} live claim(s) without a stock row"


@integrity_check("kits: received stock equals the recorded stock moves")
def _received_matches_moves(session: so.Session) -> Iterator[str]:
    moved = (
        sa.select(StockMove.stock_id, sa.func.sum(StockMove.delta).label("total"))
        .group_by(StockMove.stock_id)
        .subquery()
    )
    for stock_id, received, total in session.execute(
        sa.select(KitStock.id, KitStock.received, moved.c.total)
        .outerjoin(moved, moved.c.stock_id == KitStock.id)
        .where(KitStock.received != sa.func.coalesce(moved.c.total, 0))
    ):
        yield f"stock {stock_id}: received {received} but stock moves add up to {total or 0}"


@integrity_check("kits: at most one live claim per member per kit type")
def _one_claim_each(session: so.Session) -> Iterator[str]:
    for kit_id, user_id, count in session.execute(
        sa.select(KitClaim.kit_type_id, KitClaim.user_id, sa.func.count(KitClaim.id))
        .where(KitClaim.status.in_(LIVE_STATUSES))
        .group_by(KitClaim.kit_type_id, KitClaim.user_id)
        .having(sa.func.count(KitClaim.id) > 1)
    ):
        yield f"member {user_id} holds {count} live claims of kit {kit_id}"


@integrity_check("kits: each pickup code is unique and redeemed at most once")
def _redeemed_once(session: so.Session) -> Iterator[str]:
    for code, count in session.execute(
        sa.select(KitClaim.pickup_code, sa.func.count(KitClaim.id))
        .group_by(KitClaim.pickup_code)
        .having(sa.func.count(KitClaim.id) > 1)
    ):
        yield f"pickup code {code} is used by {count} claims"
    for object_id, count in session.execute(
        sa.select(AuditEntry.object_id, sa.func.count(AuditEntry.id))
        .where(AuditEntry.action.in_(("kits.claim.picked_up", "kits.claim.shipped")))
        .group_by(AuditEntry.object_id)
        .having(sa.func.count(AuditEntry.id) > 1)
    ):
        yield f"claim {object_id} was handed out {count} times"
    for claim_id, status in session.execute(
        sa.select(KitClaim.id, KitClaim.status).where(
            ((KitClaim.status == "picked_up") & KitClaim.picked_up_by.is_(None))
            | ((KitClaim.status == "shipped") & KitClaim.shipped_at.is_(None))
            | ((KitClaim.status != "picked_up") & KitClaim.picked_up_at.is_not(None))
        )
    ):
        yield f"claim {claim_id} ({status}) has inconsistent hand-out records"


# --- panels ---------------------------------------------------------------------


def _me_reads(user_id: int) -> list[tuple[sa.Select, dict[str, Any]]]:
    return [(_my_latest_claims(), {"user_id": user_id})]


@me_panel("kits", 30, "kits/_me_panel.html", reads=_me_reads)
def _me(user: Any) -> dict[str, Any]:
    return {"claims": db.read(*_me_reads(user.id)[0]).all()}


@cache
def _my_latest_claims() -> sa.Select:
    return (
        sa.select(
            KitClaim.id,
            KitClaim.status,
            KitClaim.mode,
            KitClaim.pickup_code,
            KitClaim.expires_at,
            KitType.name.label("kit_name"),
            PickupPoint.name.label("point_name"),
        )
        .join(KitType, KitType.id == KitClaim.kit_type_id)
        .join(PickupPoint, PickupPoint.id == KitClaim.point_id)
        .where(KitClaim.user_id == sa.bindparam("user_id"))
        .order_by(KitClaim.id.desc())
        .limit(5)
    )


@home_panel("kits", 30, "kits/_home_panel.html")
def _home() -> dict[str, Any]:
    left = db.session.execute(
        sa.select(KitType.name, sa.func.sum(KitStock.available), sa.func.sum(KitStock.received))
        .join(KitStock, KitStock.kit_type_id == KitType.id)
        .where(KitType.active.is_(True), KitType.closes_at > utcnow())
        .group_by(KitType.id, KitType.name)
        .order_by(KitType.name)
    ).all()
    return {"kits": [(name, int(a or 0), int(r or 0)) for name, a, r in left]}


@admin_panel("kits", 30, "kits/_admin_panel.html")
def _admin() -> dict[str, Any]:
    return {"figures": services.total_figures()}


# --- demo data ------------------------------------------------------------------

HEALTH_KIT = "健康防护包"
ANTIBODY_KIT = "新冠抗体检测试剂"
POINTS = [
    ("中关村软件园", "海淀区西北旺东路10号院 中关村软件园服务大厅", "工作日 9:00–17:30"),
    ("科学城服务中心", "海淀区丰豪东路9号 科学城服务中心一层", "每天 9:00–18:00"),
]


def _demo_kit(session: so.Session, actor: Any, name: str, **fields: Any) -> KitType:
    kit = session.scalar(sa.select(KitType).where(KitType.name == name))
    if kit is None:
        now = utcnow()
        kit = services.save_kit_type(
            actor,
            None,
            name=name,
            opens_at=now - timedelta(days=7),
            closes_at=now + timedelta(days=90),
            **fields,
        )
    return kit


def _demo_stock(session: so.Session, actor: Any, kit: KitType, point: PickupPoint, n: int):
    stock = session.scalar(
        sa.select(KitStock).where(KitStock.kit_type_id == kit.id, KitStock.point_id == point.id)
    )
    if stock is None or stock.received == 0:
        services.adjust_stock(actor, kit.id, point.id, n, "首批物资到货")


@demo_seeder("kits", 30)
def seed(session: so.Session, users: Any, *_: Any) -> None:
    """1,000 health protection kits over two points, the antibody test kit, some claims."""
    staff = users.staff
    points_by_name = {}
    for name, address, hours in POINTS:
        point = session.scalar(sa.select(PickupPoint).where(PickupPoint.name == name))
        if point is None:
            point = services.save_point(staff, None, name=name, address=address, hours=hours)
        points_by_name[name] = point
    zgc, city = points_by_name["中关村软件园"], points_by_name["科学城服务中心"]

    health = _demo_kit(
        session,
        staff,
        HEALTH_KIT,
        description="为返岗复工的职工准备的健康防护包：口罩和消毒液。每位会员限领一份。",
        contents="医用外科口罩 ×20\n84 消毒液（500 ml）×1\n免洗洗手液 ×1",
        points_cost=0,
        required_tag=None,
        enterprise_ids=[],
        branch_ids=[],
        delivery_allowed=False,
        active=True,
    )
    tech_firms = list(
        session.scalars(
            sa.select(Enterprise.id).where(
                Enterprise.name.in_(["中关村软件园云计算有限公司", "科学城智能制造科技有限公司"])
            )
        )
    )
    antibody = _demo_kit(
        session,
        staff,
        ANTIBODY_KIT,
        description="面向民营科技企业已返岗职工的免费新冠抗体检测试剂，可到点领取或快递到家。",
        contents="新冠抗体检测试剂盒 ×1\n一次性采血针 ×1\n使用说明 ×1",
        points_cost=0,
        required_tag="returned-to-work",
        enterprise_ids=tech_firms,
        branch_ids=[],
        delivery_allowed=True,
        active=True,
    )
    _demo_stock(session, staff, health, zgc, 600)
    _demo_stock(session, staff, health, city, 400)
    _demo_stock(session, staff, antibody, city, 200)

    members = users.members
    for index, member in enumerate(members[:8]):
        try:
            with session.begin_nested():  # a refusal undoes only this claim
                made = services.claim(
                    member,
                    health.id,
                    (zgc if index % 2 == 0 else city).id,
                    request_key=f"demo:health:{member.id}",
                )
        except DomainError:  # claimed by hand in the demo meanwhile, or none left
            continue
        if index < 4 and made.status == "reserved":
            services.mark_picked_up(made.id, staff)
    eligible = [m for m in members if not services.eligibility(antibody, m).reasons][:3]
    for n, member in enumerate(eligible):
        try:
            with session.begin_nested():
                made = services.claim(
                    member,
                    antibody.id,
                    city.id,
                    mode="delivery" if n == 1 else "pickup",
                    address="海淀区上地十街1号院" if n == 1 else None,
                    request_key=f"demo:antibody:{member.id}",
                )
        except DomainError:
            continue
        if made.status == "reserved" and n == 1:
            services.mark_shipped(made.id, staff, "顺丰速运 SF1234567890")
        elif made.status == "reserved" and n == 2:
            services.mark_picked_up(made.id, staff)
    session.flush()
