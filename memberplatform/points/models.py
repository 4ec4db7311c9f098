"""Points accounts, the append-only ledger, expiry lots and daily check-ins."""

from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa
import sqlalchemy.orm as so

from memberplatform.db import Base, utcnow

KINDS = ("earn", "spend", "refund", "adjust", "expire")


class PointsAccount(Base):
    """One per user; ``balance`` is a cache of the sum of the ledger, never negative."""

    __tablename__ = "points_accounts"
    __table_args__ = (sa.CheckConstraint("balance >= 0", name="balance_not_negative"),)

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    user_id: so.Mapped[int] = so.mapped_column(
        sa.ForeignKey("users.id", ondelete="CASCADE"), unique=True
    )
    balance: so.Mapped[int] = so.mapped_column(default=0)
    created_at: so.Mapped[datetime] = so.mapped_column(default=utcnow)


class LedgerEntry(Base):
    """One change of a balance. Never updated or deleted: a correction is a new entry."""

    __tablename__ = "ledger_entries"
    __table_args__ = (
        sa.CheckConstraint("amount <> 0", name="amount_not_zero"),
        sa.CheckConstraint("balance_after >= 0", name="balance_after_not_negative"),
        sa.CheckConstraint(f"kind IN {KINDS!r}", name="kind_known"),
        sa.Index("ix_ledger_entries_account_id_id", "account_id", "id"),
        sa.Index("ix_ledger_entries_ref", "ref_type", "ref_id"),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    account_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("points_accounts.id"))
    amount: so.Mapped[int]
    balance_after: so.Mapped[int]
    kind: so.Mapped[str] = so.mapped_column(sa.String(10))
    #: reason code, shown to the member in their language (see points.reasons)
    reason: so.Mapped[str] = so.mapped_column(sa.String(40))
    #: what caused it: ("donation", id), ("course", id), ("kit_claim", id) …
    ref_type: so.Mapped[str | None] = so.mapped_column(sa.String(20))
    ref_id: so.Mapped[int | None]
    actor_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("users.id"))
    note: so.Mapped[str | None] = so.mapped_column(sa.String(200))
    idempotency_key: so.Mapped[str] = so.mapped_column(sa.String(120), unique=True)
    created_at: so.Mapped[datetime] = so.mapped_column(default=utcnow)


class PointsLot(Base):
    """Points credited together and expiring together; debits consume the soonest first."""

    __tablename__ = "points_lots"
    __table_args__ = (
        sa.CheckConstraint("amount > 0", name="amount_positive"),
        sa.CheckConstraint("remaining >= 0 AND remaining <= amount", name="remaining_in_range"),
        sa.Index("ix_points_lots_account_expiry", "account_id", "expires_at"),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    account_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("points_accounts.id"))
    #: the credit that opened it (a refund may reopen several lots)
    entry_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("ledger_entries.id"), index=True)
    amount: so.Mapped[int]
    remaining: so.Mapped[int]
    expires_at: so.Mapped[datetime] = so.mapped_column(index=True)


class LotUse(Base):
    """How much of which lot a debit (spend, expire, negative adjust) consumed."""

    __tablename__ = "points_lot_uses"
    __table_args__ = (sa.CheckConstraint("amount > 0", name="amount_positive"),)

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    entry_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("ledger_entries.id"), index=True)
    lot_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("points_lots.id"), index=True)
    amount: so.Mapped[int]


class CheckIn(Base):
    """A daily check-in (签到), at most one per member per calendar day in Asia/Shanghai."""

    __tablename__ = "check_ins"
    __table_args__ = (sa.UniqueConstraint("user_id", "day"),)

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    user_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"))
    day: so.Mapped[date]
    streak: so.Mapped[int]
    points: so.Mapped[int]
    created_at: so.Mapped[datetime] = so.mapped_column(default=utcnow)
