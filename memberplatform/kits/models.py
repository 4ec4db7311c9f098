"""Health kits (健康防护包, 抗体检测试剂): kit types, pickup points, stock and claims.

Invariants held by the database itself:

* per (kit type, pickup point) stock row: ``reserved + picked_up + available ==
  received`` and every counter is never negative (CHECK constraints); a claim
  moves one unit with a conditional ``UPDATE … WHERE available > 0``;
* one claim per member per kit type among the *live* claims (reserved, picked
  up, shipped): a partial unique index, so a cancelled or expired claim does
  not block a new one;
* a pickup code is unique, and a claim leaves ``reserved`` at most once
  (conditional ``UPDATE … WHERE status = 'reserved'``).

(The counter of units still on the shelf is called ``available`` because
``left`` is an SQL keyword.)
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
import sqlalchemy.orm as so

from memberplatform.auth.models import Enterprise, UnionBranch, User
from memberplatform.core.uploads import Upload
from memberplatform.db import Base, utcnow

CLAIM_STATUSES = ("reserved", "picked_up", "shipped", "cancelled", "expired")
#: statuses of a claim that still holds its unit (and blocks a second claim)
LIVE_STATUSES = ("reserved", "picked_up", "shipped")
#: statuses that have handed the unit out of the point (counted in ``picked_up``)
HANDED_OUT = ("picked_up", "shipped")
MODES = ("pickup", "delivery")
#: the alphabet of pickup codes: no 0/O, 1/I/L — easy to read out and type
CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
CODE_LENGTH = 8

_live = sa.text("status IN ('reserved', 'picked_up', 'shipped')")


class PickupPoint(Base):
    """Where members pick their kits up (name, address, opening hours)."""

    __tablename__ = "kit_pickup_points"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    name: so.Mapped[str] = so.mapped_column(sa.String(80), unique=True)
    address: so.Mapped[str] = so.mapped_column(sa.String(200))
    hours: so.Mapped[str] = so.mapped_column(sa.String(120), default="")
    active: so.Mapped[bool] = so.mapped_column(default=True)
    created_at: so.Mapped[datetime] = so.mapped_column(default=utcnow)


kit_type_enterprises = sa.Table(
    "kit_type_enterprises",
    Base.metadata,
    sa.Column("kit_type_id", sa.ForeignKey("kit_types.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("enterprise_id", sa.ForeignKey("enterprises.id"), primary_key=True),
)

kit_type_branches = sa.Table(
    "kit_type_branches",
    Base.metadata,
    sa.Column("kit_type_id", sa.ForeignKey("kit_types.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("branch_id", sa.ForeignKey("union_branches.id"), primary_key=True),
)


class KitType(Base):
    """A kind of kit members can claim, with its contents, window and eligibility."""

    __tablename__ = "kit_types"
    __table_args__ = (
        sa.CheckConstraint("points_cost >= 0", name="points_cost_not_negative"),
        sa.CheckConstraint("closes_at > opens_at", name="window_ordered"),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    name: so.Mapped[str] = so.mapped_column(sa.String(80), unique=True)
    description: so.Mapped[str] = so.mapped_column(sa.Text, default="")
    picture_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey(Upload.id))
    opens_at: so.Mapped[datetime]
    closes_at: so.Mapped[datetime]
    points_cost: so.Mapped[int] = so.mapped_column(default=0)
    #: members must carry this tag (e.g. "returned-to-work"); None: no tag needed
    required_tag: so.Mapped[str | None] = so.mapped_column(sa.String(40))
    delivery_allowed: so.Mapped[bool] = so.mapped_column(default=False)
    #: published to members
    active: so.Mapped[bool] = so.mapped_column(default=True)
    created_at: so.Mapped[datetime] = so.mapped_column(default=utcnow)
    #: limited to some enterprises or union branches (read with the row: a claim
    #: by an unlimited kit needs no query for the organisation rule)
    limited: so.Mapped[bool] = so.column_property(
        sa.or_(
            sa.exists().where(kit_type_enterprises.c.kit_type_id == id),
            sa.exists().where(kit_type_branches.c.kit_type_id == id),
        )
    )

    # lazy by default: the claim path needs none of them; pages use selectinload
    items: so.Mapped[list[KitItem]] = so.relationship(
        cascade="all, delete-orphan",
        order_by="KitItem.position",
        back_populates="kit_type",
    )
    enterprises: so.Mapped[list[Enterprise]] = so.relationship(
        secondary=kit_type_enterprises, order_by="Enterprise.name"
    )
    branches: so.Mapped[list[UnionBranch]] = so.relationship(
        secondary=kit_type_branches, order_by="UnionBranch.name"
    )


class KitItem(Base):
    """One line of a kit's contents, e.g. 口罩 ×20."""

    __tablename__ = "kit_items"
    __table_args__ = (sa.CheckConstraint("quantity > 0", name="quantity_positive"),)

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    kit_type_id: so.Mapped[int] = so.mapped_column(
        sa.ForeignKey("kit_types.id", ondelete="CASCADE"), index=True
    )
    name: so.Mapped[str] = so.mapped_column(sa.String(60))
    quantity: so.Mapped[int]
    position: so.Mapped[int] = so.mapped_column(default=0)

    kit_type: so.Mapped[KitType] = so.relationship(back_populates="items")


class KitStock(Base):
    """The units of one kit type held at one pickup point."""

    __tablename__ = "kit_stocks"
    __table_args__ = (
        sa.UniqueConstraint("kit_type_id", "point_id"),
        sa.CheckConstraint("received >= 0", name="received_not_negative"),
        sa.CheckConstraint("reserved >= 0", name="reserved_not_negative"),
        sa.CheckConstraint("picked_up >= 0", name="picked_up_not_negative"),
        sa.CheckConstraint("available >= 0", name="available_not_negative"),
        sa.CheckConstraint(
            "reserved + picked_up + available = received", name="counters_consistent"
        ),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    kit_type_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("kit_types.id"))
    point_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("kit_pickup_points.id"), index=True)
    received: so.Mapped[int] = so.mapped_column(default=0)
    reserved: so.Mapped[int] = so.mapped_column(default=0)
    #: handed out: picked up at the point or shipped from it
    picked_up: so.Mapped[int] = so.mapped_column(default=0)
    #: still on the shelf and claimable ("left")
    available: so.Mapped[int] = so.mapped_column(default=0)

    kit_type: so.Mapped[KitType] = so.relationship(lazy="joined")
    point: so.Mapped[PickupPoint] = so.relationship(lazy="joined")


class StockMove(Base):
    """A change of received stock by staff (delivery in, damaged out), with its reason."""

    __tablename__ = "kit_stock_moves"
    __table_args__ = (sa.CheckConstraint("delta <> 0", name="delta_not_zero"),)

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    stock_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("kit_stocks.id"), index=True)
    delta: so.Mapped[int]
    reason: so.Mapped[str] = so.mapped_column(sa.String(200))
    actor_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("users.id"))
    created_at: so.Mapped[datetime] = so.mapped_column(default=utcnow)


class KitClaim(Base):
    """A member's claim of one kit: reserved at a point, then picked up (or shipped)."""

    __tablename__ = "kit_claims"
    __table_args__ = (
        sa.CheckConstraint(f"status IN {CLAIM_STATUSES!r}", name="status_known"),
        sa.CheckConstraint(f"mode IN {MODES!r}", name="mode_known"),
        sa.CheckConstraint("points_spent >= 0", name="points_spent_not_negative"),
        sa.CheckConstraint(
            "(status = 'picked_up') = (picked_up_at IS NOT NULL)", name="picked_up_recorded"
        ),
        # one live claim per member per kit type; cancelled/expired ones do not count
        sa.Index(
            "uq_kit_claims_live_member_kit",
            "kit_type_id",
            "user_id",
            unique=True,
            sqlite_where=_live,
            postgresql_where=_live,
        ),
        sa.Index("ix_kit_claims_status_expires", "status", "expires_at"),
        sa.Index("ix_kit_claims_point_status", "point_id", "status"),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    kit_type_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("kit_types.id"))
    point_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("kit_pickup_points.id"))
    user_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("users.id"), index=True)
    status: so.Mapped[str] = so.mapped_column(sa.String(12), default="reserved")
    mode: so.Mapped[str] = so.mapped_column(sa.String(10), default="pickup")
    pickup_code: so.Mapped[str] = so.mapped_column(sa.String(CODE_LENGTH), unique=True)
    #: the claim form's idempotency key: a double-submitted form returns the same claim
    request_key: so.Mapped[str | None] = so.mapped_column(sa.String(64), unique=True)
    points_spent: so.Mapped[int] = so.mapped_column(default=0)
    spend_key: so.Mapped[str | None] = so.mapped_column(sa.String(120))
    delivery_address: so.Mapped[str | None] = so.mapped_column(sa.String(200))
    tracking_note: so.Mapped[str | None] = so.mapped_column(sa.String(200))
    created_at: so.Mapped[datetime] = so.mapped_column(default=utcnow, index=True)
    #: a pickup reservation is released after this (None for delivery)
    expires_at: so.Mapped[datetime | None]
    picked_up_at: so.Mapped[datetime | None]
    picked_up_by: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("users.id"))
    shipped_at: so.Mapped[datetime | None]
    shipped_by: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("users.id"))
    cancelled_at: so.Mapped[datetime | None]
    expired_at: so.Mapped[datetime | None]

    kit_type: so.Mapped[KitType] = so.relationship(lazy="joined")
    point: so.Mapped[PickupPoint] = so.relationship(lazy="joined")
    user: so.Mapped[User] = so.relationship(foreign_keys=[user_id])
    picker: so.Mapped[User | None] = so.relationship(foreign_keys=[picked_up_by])
    shipper: so.Mapped[User | None] = so.relationship(foreign_keys=[shipped_by])
