"""Models of the legal domain: the service menu, requests and their threads,
the lawyers' conflict list, the hotline and the live consultation schedule."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
import sqlalchemy.orm as so

from memberplatform.db import Base, utcnow

STATUSES = ("submitted", "assigned", "waiting_for_member", "answered", "closed")
#: statuses in which the request waits for a lawyer (the SLA clock runs)
AWAITING_LAWYER = ("submitted", "assigned")
OPEN_STATUSES = ("submitted", "assigned", "waiting_for_member", "answered")
ITEM_STATUSES = ("active", "retired")
MESSAGE_KINDS = ("question", "follow_up", "answer", "info_request", "note", "hand_back")


class Category(Base):
    """A group of menu items (劳动合同, 工资报酬, …)."""

    __tablename__ = "legal_categories"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    name: so.Mapped[str] = so.mapped_column(sa.String(60), unique=True)
    name_en: so.Mapped[str | None] = so.mapped_column(sa.String(80))
    position: so.Mapped[int] = so.mapped_column(default=0)
    created_at: so.Mapped[datetime] = so.mapped_column(default=utcnow)

    items: so.Mapped[list[MenuItem]] = so.relationship(
        back_populates="category", order_by="MenuItem.position, MenuItem.id"
    )


class MenuItem(Base):
    """One service of the menu: what it is, what to prepare, its SLA, who answers it,
    and the extra form fields it needs (``fields``: a list of field definitions)."""

    __tablename__ = "legal_menu_items"
    __table_args__ = (
        sa.CheckConstraint("sla_hours > 0 AND sla_hours <= 400", name="sla_positive"),
        sa.CheckConstraint(f"status IN {ITEM_STATUSES!r}", name="status_known"),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    category_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("legal_categories.id"))
    code: so.Mapped[str] = so.mapped_column(sa.String(40), unique=True)
    title: so.Mapped[str] = so.mapped_column(sa.String(80))
    title_en: so.Mapped[str | None] = so.mapped_column(sa.String(120))
    description: so.Mapped[str] = so.mapped_column(sa.Text)
    prepare: so.Mapped[str] = so.mapped_column(sa.Text, default="")
    sla_hours: so.Mapped[int]
    #: [{"name", "label_zh", "label_en", "type", "required"}, …]
    fields: so.Mapped[list[dict[str, Any]]] = so.mapped_column(sa.JSON, default=list)
    status: so.Mapped[str] = so.mapped_column(sa.String(10), default="active")
    position: so.Mapped[int] = so.mapped_column(default=0)
    created_at: so.Mapped[datetime] = so.mapped_column(default=utcnow)
    updated_at: so.Mapped[datetime] = so.mapped_column(default=utcnow, onupdate=utcnow)

    category: so.Mapped[Category] = so.relationship(back_populates="items", lazy="joined")
    # read when one item's lawyers are needed (taking a request, the item form)
    lawyer_rows: so.Mapped[list[ItemLawyer]] = so.relationship(cascade="all, delete-orphan")

    @property
    def lawyer_ids(self) -> frozenset[int]:
        """Lawyers who may take this item (empty: every lawyer)."""
        return frozenset(row.lawyer_id for row in self.lawyer_rows)


class ItemLawyer(Base):
    """A lawyer who may take requests for a menu item."""

    __tablename__ = "legal_item_lawyers"

    item_id: so.Mapped[int] = so.mapped_column(
        sa.ForeignKey("legal_menu_items.id", ondelete="CASCADE"), primary_key=True
    )
    lawyer_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("users.id"), primary_key=True)


class LawyerClient(Base):
    """An enterprise a lawyer serves: they may not take requests against it."""

    __tablename__ = "legal_lawyer_clients"

    lawyer_id: so.Mapped[int] = so.mapped_column(
        sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    #: normalized name (no spaces, case-folded), compared with LegalRequest.other_party_key
    enterprise_key: so.Mapped[str] = so.mapped_column(sa.String(120), primary_key=True)
    enterprise_name: so.Mapped[str] = so.mapped_column(sa.String(120))
    created_at: so.Mapped[datetime] = so.mapped_column(default=utcnow)


class RequestCounter(Base):
    """The last request number of a year (FL-2026-000123)."""

    __tablename__ = "legal_request_counters"

    year: so.Mapped[int] = so.mapped_column(primary_key=True, autoincrement=False)
    last: so.Mapped[int] = so.mapped_column(default=0)


class LegalRequest(Base):
    """A member's request for one menu item, answered by one lawyer in a private thread."""

    __tablename__ = "legal_requests"
    __table_args__ = (
        sa.CheckConstraint(f"status IN {STATUSES!r}", name="status_known"),
        sa.CheckConstraint("rating IS NULL OR (rating >= 1 AND rating <= 5)", name="rating_range"),
        sa.CheckConstraint(
            "(status = 'submitted') = (lawyer_id IS NULL) OR status = 'closed'",
            name="lawyer_matches_status",
        ),
        sa.Index("ix_legal_requests_queue", "status", "created_at"),
        # a lawyer's desk: counts per status, and a page of cases by due date
        sa.Index("ix_legal_requests_lawyer_status", "lawyer_id", "status"),
        sa.Index("ix_legal_requests_lawyer_due", "lawyer_id", "due_at"),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    number: so.Mapped[str] = so.mapped_column(sa.String(20), unique=True)
    item_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("legal_menu_items.id"), index=True)
    requester_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("users.id"), index=True)
    lawyer_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("users.id"))
    status: so.Mapped[str] = so.mapped_column(sa.String(20), default="submitted")
    question: so.Mapped[str] = so.mapped_column(sa.Text)
    field_values: so.Mapped[dict[str, Any]] = so.mapped_column(sa.JSON, default=dict)
    #: set when the member asks on behalf of an enterprise
    enterprise_name: so.Mapped[str | None] = so.mapped_column(sa.String(120))
    other_party: so.Mapped[str | None] = so.mapped_column(sa.String(120))
    other_party_key: so.Mapped[str | None] = so.mapped_column(sa.String(120), index=True)
    created_at: so.Mapped[datetime] = so.mapped_column(default=utcnow)
    #: when the current SLA clock runs out (reset when the member's turn ends)
    due_at: so.Mapped[datetime]
    assigned_at: so.Mapped[datetime | None]
    first_response_at: so.Mapped[datetime | None]
    first_response_seconds: so.Mapped[int | None]
    answered_at: so.Mapped[datetime | None]
    closed_at: so.Mapped[datetime | None]
    rating: so.Mapped[int | None]
    rating_comment: so.Mapped[str | None] = so.mapped_column(sa.String(500))
    rated_at: so.Mapped[datetime | None]

    item: so.Mapped[MenuItem] = so.relationship(lazy="joined")
    requester = so.relationship("User", foreign_keys=[requester_id], lazy="joined")
    lawyer = so.relationship("User", foreign_keys=[lawyer_id], lazy="joined")


class RequestMessage(Base):
    """One entry of a request's thread. ``internal`` notes are for lawyers and admins only."""

    __tablename__ = "legal_messages"
    __table_args__ = (
        sa.CheckConstraint(f"kind IN {MESSAGE_KINDS!r}", name="kind_known"),
        sa.CheckConstraint("internal = (kind = 'note')", name="internal_is_note"),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    request_id: so.Mapped[int] = so.mapped_column(
        sa.ForeignKey("legal_requests.id", ondelete="CASCADE"), index=True
    )
    author_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("users.id"))
    kind: so.Mapped[str] = so.mapped_column(sa.String(20))
    body: so.Mapped[str] = so.mapped_column(sa.Text)
    internal: so.Mapped[bool] = so.mapped_column(default=False)
    created_at: so.Mapped[datetime] = so.mapped_column(default=utcnow)

    author = so.relationship("User", lazy="joined")
    attachments: so.Mapped[list[RequestAttachment]] = so.relationship(
        lazy="selectin", order_by="RequestAttachment.id"
    )


class RequestAttachment(Base):
    """A file (PDF, PNG or JPEG) attached to a message of a request."""

    __tablename__ = "legal_attachments"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    request_id: so.Mapped[int] = so.mapped_column(
        sa.ForeignKey("legal_requests.id", ondelete="CASCADE"), index=True
    )
    message_id: so.Mapped[int] = so.mapped_column(
        sa.ForeignKey("legal_messages.id", ondelete="CASCADE"), index=True
    )
    upload_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("uploads.id"), unique=True)
    created_at: so.Mapped[datetime] = so.mapped_column(default=utcnow)

    upload = so.relationship("Upload", lazy="joined")


class RequestEvent(Base):
    """The request's own audit trail: every transition with actor, time, from and to."""

    __tablename__ = "legal_request_events"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    request_id: so.Mapped[int] = so.mapped_column(
        sa.ForeignKey("legal_requests.id", ondelete="CASCADE"), index=True
    )
    actor_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("users.id"))
    action: so.Mapped[str] = so.mapped_column(sa.String(20))
    from_status: so.Mapped[str | None] = so.mapped_column(sa.String(20))
    to_status: so.Mapped[str] = so.mapped_column(sa.String(20))
    detail: so.Mapped[dict[str, Any] | None] = so.mapped_column(sa.JSON)
    created_at: so.Mapped[datetime] = so.mapped_column(default=utcnow)

    actor = so.relationship("User", lazy="joined")


class Hotline(Base):
    """A consultation hotline shown on the legal page (number and hours)."""

    __tablename__ = "legal_hotlines"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    name: so.Mapped[str] = so.mapped_column(sa.String(60), unique=True)
    number: so.Mapped[str] = so.mapped_column(sa.String(30))
    hours: so.Mapped[str] = so.mapped_column(sa.String(80))
    active: so.Mapped[bool] = so.mapped_column(default=True)
    position: so.Mapped[int] = so.mapped_column(default=0)


class ConsultationSession(Base):
    """A live (video) consultation session given by a lawyer."""

    __tablename__ = "legal_sessions"
    __table_args__ = (
        sa.CheckConstraint("duration_minutes > 0 AND duration_minutes <= 480", name="duration"),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    title: so.Mapped[str] = so.mapped_column(sa.String(120))
    speaker: so.Mapped[str] = so.mapped_column(sa.String(60))
    starts_at: so.Mapped[datetime] = so.mapped_column(index=True)
    duration_minutes: so.Mapped[int] = so.mapped_column(default=60)
    #: where to watch: a platform name, a room or a URL
    venue: so.Mapped[str] = so.mapped_column(sa.String(200), default="")
    description: so.Mapped[str] = so.mapped_column(sa.Text, default="")
    cancelled: so.Mapped[bool] = so.mapped_column(default=False)
    created_at: so.Mapped[datetime] = so.mapped_column(default=utcnow)
