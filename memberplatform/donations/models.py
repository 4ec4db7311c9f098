"""Points-donation campaigns, donations (each with one ledger debit) and fulfilment records."""

from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa
import sqlalchemy.orm as so

from memberplatform.db import Base, utcnow

STATUSES = ("draft", "open", "closed", "fulfilled", "cancelled")
BENEFICIARY_TYPES = ("hospital", "community", "school", "welfare", "workers", "other")


class Campaign(Base):
    """A points donation (积分捐): points become ``target_units`` of an item for a beneficiary.

    ``pledged_units``, ``donation_count`` and ``donor_count`` are counters kept in the
    same transaction as each donation (the progress fragment reads only this row);
    ``check-integrity`` compares them with the donations.
    """

    __tablename__ = "donation_campaigns"
    __table_args__ = (
        sa.CheckConstraint(f"status IN {STATUSES!r}", name="status_known"),
        sa.CheckConstraint("points_per_unit > 0", name="points_per_unit_positive"),
        sa.CheckConstraint("target_units > 0", name="target_positive"),
        sa.CheckConstraint(
            "pledged_units >= 0 AND pledged_units <= target_units", name="pledged_within_target"
        ),
        sa.CheckConstraint(
            "fulfilled_units >= 0 AND fulfilled_units <= pledged_units",
            name="fulfilled_within_pledged",
        ),
        sa.CheckConstraint("donation_count >= donor_count AND donor_count >= 0", name="counts"),
        sa.CheckConstraint("min_units IS NULL OR min_units >= 1", name="min_units_positive"),
        sa.CheckConstraint(
            "max_units IS NULL OR "
            "(max_units >= 1 AND (min_units IS NULL OR max_units >= min_units))",
            name="max_units_valid",
        ),
        sa.CheckConstraint("closes_at > opens_at", name="window_valid"),
        sa.Index("ix_donation_campaigns_status_closes_at", "status", "closes_at"),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    title: so.Mapped[str] = so.mapped_column(sa.String(120))
    story: so.Mapped[str] = so.mapped_column(sa.Text, default="")
    beneficiary_name: so.Mapped[str] = so.mapped_column(sa.String(120))
    beneficiary_type: so.Mapped[str] = so.mapped_column(sa.String(20), default="other")
    item_name: so.Mapped[str] = so.mapped_column(sa.String(60))
    #: the measure word shown between number and item (只, 瓶, 箱 …)
    unit_label: so.Mapped[str] = so.mapped_column(sa.String(10), default="")
    points_per_unit: so.Mapped[int]
    target_units: so.Mapped[int]
    min_units: so.Mapped[int | None]
    max_units: so.Mapped[int | None]
    opens_at: so.Mapped[datetime]
    closes_at: so.Mapped[datetime]
    status: so.Mapped[str] = so.mapped_column(sa.String(12), default="draft")
    pledged_units: so.Mapped[int] = so.mapped_column(default=0)
    donation_count: so.Mapped[int] = so.mapped_column(default=0)
    donor_count: so.Mapped[int] = so.mapped_column(default=0)
    fulfilled_units: so.Mapped[int] = so.mapped_column(default=0)
    cancel_reason: so.Mapped[str | None] = so.mapped_column(sa.String(500))
    created_by: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("users.id"))
    created_at: so.Mapped[datetime] = so.mapped_column(default=utcnow)
    updated_at: so.Mapped[datetime] = so.mapped_column(default=utcnow, onupdate=utcnow)
    closed_at: so.Mapped[datetime | None]
    fulfilled_at: so.Mapped[datetime | None]
    cancelled_at: so.Mapped[datetime | None]

    @property
    def remaining_units(self) -> int:
        return max(0, self.target_units - self.pledged_units)

    @property
    def points_pledged(self) -> int:
        return self.pledged_units * self.points_per_unit

    @property
    def percent(self) -> int:
        return min(100, self.pledged_units * 100 // self.target_units) if self.target_units else 0

    def accepting(self, now: datetime | None = None) -> bool:
        now = now or utcnow()
        return self.status == "open" and self.opens_at <= now < self.closes_at

    def phase(self, now: datetime | None = None) -> str:
        """What members see: draft, upcoming, open, ended, closed, fulfilled, cancelled."""
        now = now or utcnow()
        if self.status == "open":
            if now < self.opens_at:
                return "upcoming"
            if now >= self.closes_at:
                return "ended"
        return self.status

    def amount(self, units: int) -> str:
        """``13000 只医用口罩``: a number of units with the measure word and item."""
        return format_amount(units, self.unit_label, self.item_name)


def format_amount(units: int, unit_label: str, item_name: str) -> str:
    return f"{units:,} {unit_label}{item_name}"


class Donation(Base):
    """One member's donation: exactly one ledger debit, and at most one refund credit."""

    __tablename__ = "donations"
    __table_args__ = (
        sa.CheckConstraint("units > 0", name="units_positive"),
        sa.CheckConstraint("points > 0", name="points_positive"),
        sa.Index("ix_donations_campaign_id_id", "campaign_id", "id"),
        sa.Index("ix_donations_campaign_id_user_id", "campaign_id", "user_id"),
        sa.Index("ix_donations_user_id_id", "user_id", "id"),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    campaign_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("donation_campaigns.id"))
    user_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("users.id"))
    units: so.Mapped[int]
    points: so.Mapped[int]
    #: masked name shown on the donor wall (张*明); None = anonymous
    wall_name: so.Mapped[str | None] = so.mapped_column(sa.String(60))
    #: from the donate form (one per rendered form): a replay returns this donation
    idempotency_key: so.Mapped[str] = so.mapped_column(sa.String(64), unique=True)
    certificate_no: so.Mapped[str] = so.mapped_column(sa.String(24), unique=True)
    ledger_entry_id: so.Mapped[int | None] = so.mapped_column(
        sa.ForeignKey("ledger_entries.id"), unique=True
    )
    refund_entry_id: so.Mapped[int | None] = so.mapped_column(
        sa.ForeignKey("ledger_entries.id"), unique=True
    )
    created_at: so.Mapped[datetime] = so.mapped_column(default=utcnow)
    refunded_at: so.Mapped[datetime | None]

    campaign: so.Mapped[Campaign] = so.relationship(lazy="joined", innerjoin=True)

    @property
    def ledger_key(self) -> str:
        return f"donation:{self.idempotency_key}"


class Fulfilment(Base):
    """Staff's record of pledged units turned into goods and delivered."""

    __tablename__ = "donation_fulfilments"
    __table_args__ = (sa.CheckConstraint("quantity > 0", name="quantity_positive"),)

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    campaign_id: so.Mapped[int] = so.mapped_column(
        sa.ForeignKey("donation_campaigns.id"), index=True
    )
    quantity: so.Mapped[int]
    delivered_on: so.Mapped[date]
    note: so.Mapped[str] = so.mapped_column(sa.Text, default="")
    upload_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("uploads.id"))
    recorded_by: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("users.id"))
    created_at: so.Mapped[datetime] = so.mapped_column(default=utcnow)
