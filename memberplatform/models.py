"""Imports every domain's models so the one metadata (Alembic, tests) sees them all."""

from memberplatform.audit.models import AuditEntry
from memberplatform.auth.models import Enterprise, MemberTag, UnionBranch, User, UserRole
from memberplatform.db import Base

__all__ = ["AuditEntry", "Base", "Enterprise", "MemberTag", "UnionBranch", "User", "UserRole"]
