"""Models of the staff console: branch scopes of staff users and password-reset links."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
import sqlalchemy.orm as so

from memberplatform.db import Base, utcnow


class StaffScope(Base):
    """Limits a staff user to one union branch: they see and manage only its members.

    Staff without a row see every branch; admins are never limited.
    """

    __tablename__ = "staff_scopes"

    user_id: so.Mapped[int] = so.mapped_column(
        sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    branch_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("union_branches.id"), index=True)
    created_at: so.Mapped[datetime] = so.mapped_column(default=utcnow)


class PasswordReset(Base):
    """A one-time link that staff issue so a member can set a new password.

    Only the SHA-256 of the token is stored; the link is shown once, to the staff
    user who issued it. A link is usable while it is not used, not revoked (a
    newer link revokes older ones) and not expired; using it is a conditional
    ``UPDATE … WHERE used_at IS NULL``, so it works exactly once.
    """

    __tablename__ = "password_resets"
    __table_args__ = (
        sa.CheckConstraint("expires_at > created_at", name="expires_after_created"),
        sa.Index("ix_password_resets_user_id_open", "user_id", "used_at", "revoked_at"),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    user_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"))
    token_hash: so.Mapped[str] = so.mapped_column(sa.String(64), unique=True)
    created_by: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("users.id"))
    created_at: so.Mapped[datetime] = so.mapped_column(default=utcnow)
    expires_at: so.Mapped[datetime]
    used_at: so.Mapped[datetime | None]
    revoked_at: so.Mapped[datetime | None]
