from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
import sqlalchemy.orm as so

from memberplatform.db import Base, utcnow


class Notification(Base):
    """A message to one user, stored as a key + parameters so it renders in their language."""

    __tablename__ = "notifications"
    __table_args__ = (sa.Index("ix_notifications_user_unread", "user_id", "read_at"),)

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    user_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"))
    kind: so.Mapped[str] = so.mapped_column(sa.String(40))
    params: so.Mapped[dict[str, Any]] = so.mapped_column(sa.JSON, default=dict)
    link: so.Mapped[str | None] = so.mapped_column(sa.String(300))
    # Set when the same event must never notify twice (e.g. "expiring" per lot).
    dedupe_key: so.Mapped[str | None] = so.mapped_column(sa.String(120), unique=True)
    created_at: so.Mapped[datetime] = so.mapped_column(default=utcnow)
    read_at: so.Mapped[datetime | None]
