"""Accounts: users with roles, member profiles, enterprises and union branches."""

from __future__ import annotations

import secrets
from datetime import datetime

import sqlalchemy as sa
import sqlalchemy.orm as so
from flask_login import UserMixin

from memberplatform.db import Base, utcnow

ROLES = ("member", "lawyer", "staff", "admin")
STATUSES = ("pending", "active", "disabled")


def new_session_token() -> str:
    return secrets.token_hex(16)


class Enterprise(Base):
    """A member enterprise of the science park."""

    __tablename__ = "enterprises"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    name: so.Mapped[str] = so.mapped_column(sa.String(120), unique=True)
    created_at: so.Mapped[datetime] = so.mapped_column(default=utcnow)


class UnionBranch(Base):
    """A grassroots union (基层工会) that members belong to."""

    __tablename__ = "union_branches"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    name: so.Mapped[str] = so.mapped_column(sa.String(120), unique=True)
    created_at: so.Mapped[datetime] = so.mapped_column(default=utcnow)


class UserRole(Base):
    __tablename__ = "user_roles"
    __table_args__ = (sa.CheckConstraint(f"role IN {ROLES!r}", name="role_known"),)

    user_id: so.Mapped[int] = so.mapped_column(
        sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    role: so.Mapped[str] = so.mapped_column(sa.String(16), primary_key=True)


class MemberTag(Base):
    """A label on a member used by eligibility rules, e.g. 'returned-to-work'."""

    __tablename__ = "member_tags"

    user_id: so.Mapped[int] = so.mapped_column(
        sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    tag: so.Mapped[str] = so.mapped_column(sa.String(40), primary_key=True)


class User(UserMixin, Base):
    __tablename__ = "users"
    __table_args__ = (sa.CheckConstraint(f"status IN {STATUSES!r}", name="status_known"),)

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    phone: so.Mapped[str] = so.mapped_column(sa.String(20), unique=True)
    name: so.Mapped[str] = so.mapped_column(sa.String(50))
    password_hash: so.Mapped[str | None] = so.mapped_column(sa.String(255))
    status: so.Mapped[str] = so.mapped_column(sa.String(10), default="active")
    member_no: so.Mapped[str | None] = so.mapped_column(sa.String(32), unique=True)
    enterprise_id: so.Mapped[int | None] = so.mapped_column(
        sa.ForeignKey("enterprises.id"), index=True
    )
    branch_id: so.Mapped[int | None] = so.mapped_column(
        sa.ForeignKey("union_branches.id"), index=True
    )
    locale: so.Mapped[str | None] = so.mapped_column(sa.String(10))
    session_token: so.Mapped[str] = so.mapped_column(sa.String(32), default=new_session_token)
    created_at: so.Mapped[datetime] = so.mapped_column(default=utcnow)
    activated_at: so.Mapped[datetime | None]
    last_login_at: so.Mapped[datetime | None]

    # Loaded when read (the signed-in user's roles come with its row, see auth.identity;
    # lists that show roles ask for them with selectinload).
    role_rows: so.Mapped[list[UserRole]] = so.relationship(cascade="all, delete-orphan")
    tag_rows: so.Mapped[list[MemberTag]] = so.relationship(cascade="all, delete-orphan")
    enterprise: so.Mapped[Enterprise | None] = so.relationship(lazy="joined")
    branch: so.Mapped[UnionBranch | None] = so.relationship(lazy="joined")

    def get_id(self) -> str:
        # The token part changes with the password, which ends every other session.
        return f"{self.id}:{self.session_token}"

    @property
    def is_active(self) -> bool:  # Flask-Login: disabled and pending users cannot log in
        return self.status == "active"

    @property
    def roles(self) -> frozenset[str]:
        return frozenset(row.role for row in self.role_rows)

    @property
    def tags(self) -> frozenset[str]:
        return frozenset(row.tag for row in self.tag_rows)

    @property
    def enterprise_name(self) -> str | None:
        return self.enterprise.name if self.enterprise else None

    @property
    def branch_name(self) -> str | None:
        return self.branch.name if self.branch else None

    @property
    def record(self) -> User:
        """Itself (``current_user.record`` is the ORM user whatever ``current_user`` is)."""
        return self

    def has_role(self, *roles: str) -> bool:
        """True when the user holds any of ``roles`` (admin holds every role)."""
        mine = self.roles
        return "admin" in mine or any(role in mine for role in roles)

    def __repr__(self) -> str:
        return f"<User {self.id} {self.phone}>"
