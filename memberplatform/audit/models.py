from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
import sqlalchemy.orm as so

from memberplatform.db import Base, utcnow


class AuditEntry(Base):
    """One action by a user: never updated, never deleted by the application."""

    __tablename__ = "audit_entries"
    __table_args__ = (sa.Index("ix_audit_entries_object", "object_type", "object_id"),)

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    actor_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("users.id"), index=True)
    action: so.Mapped[str] = so.mapped_column(sa.String(60))
    object_type: so.Mapped[str] = so.mapped_column(sa.String(40))
    object_id: so.Mapped[str | None] = so.mapped_column(sa.String(40))
    changes: so.Mapped[dict[str, Any] | None] = so.mapped_column(sa.JSON)
    ip: so.Mapped[str | None] = so.mapped_column(sa.String(45))
    created_at: so.Mapped[datetime] = so.mapped_column(default=utcnow, index=True)
