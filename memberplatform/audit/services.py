"""Recording audit entries; every service that changes something on behalf of
staff, lawyers or admins calls :func:`record` in the same transaction."""

from __future__ import annotations

from typing import Any

from flask import has_request_context, request

from memberplatform.audit.models import AuditEntry
from memberplatform.extensions import db


def record(
    actor: Any,
    action: str,
    object_type: str,
    object_id: Any = None,
    changes: dict[str, Any] | None = None,
) -> AuditEntry:
    entry = AuditEntry(
        actor_id=getattr(actor, "id", actor),
        action=action,
        object_type=object_type,
        object_id=None if object_id is None else str(object_id),
        changes=changes,
        ip=request.remote_addr if has_request_context() else None,
    )
    db.session.add(entry)
    return entry
