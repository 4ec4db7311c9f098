"""Imports every domain's models so the one metadata (Alembic, tests) sees them all."""

import memberplatform.admin.models
import memberplatform.courses.models
import memberplatform.donations.models
import memberplatform.kits.models
import memberplatform.legal.models  # noqa: F401  (each domain's tables)
from memberplatform.audit.models import AuditEntry
from memberplatform.auth.models import Enterprise, MemberTag, UnionBranch, User, UserRole
from memberplatform.core.uploads import Upload
from memberplatform.db import Base
from memberplatform.notifications.models import Notification
from memberplatform.points.models import CheckIn, LedgerEntry, LotUse, PointsAccount, PointsLot

__all__ = [
    "AuditEntry",
    "Base",
    "CheckIn",
    "Enterprise",
    "LedgerEntry",
    "LotUse",
    "MemberTag",
    "Notification",
    "PointsAccount",
    "PointsLot",
    "UnionBranch",
    "Upload",
    "User",
    "UserRole",
]
