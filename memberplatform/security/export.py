"""A member's own data as one JSON file (profile, points, claims, donations, requests, …).

Generic over the schema: every table with a foreign key to ``users.id`` contributes the
rows that point at the member, and every table with a foreign key to one of *those* rows
(e.g. ledger entries of the member's points account, messages of the member's legal
requests) contributes its rows too. Secrets and internal keys are left out; encrypted
fields come out decrypted (the member's own ID number).

Wiring (a view in home/views.py)::

    @bp.get("/me/export")
    @roles_required()
    def export_my_data():  # access: any logged-in user, their own data only
        from memberplatform.security.export import export_response
        return export_response(current_user)
"""

from __future__ import annotations

import json
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from flask import Response

from memberplatform.db import Base, utcnow
from memberplatform.extensions import db

#: never exported: credentials, session material, internal keys and storage paths
SECRET_COLUMNS = frozenset(
    {
        "password_hash",
        "session_token",
        "token",
        "token_hash",
        "storage_name",
        "dedupe_key",
        "idempotency_key",
        "pickup_code_hash",
        "ip",
    }
)


#: columns that make a row the member's own (rows reached through created_by, actor_id,
#: assigned lawyer … are exported but not expanded: their children are other people's data)
OWNER_COLUMNS = frozenset({"user_id", "member_id", "requester_id", "owner_id"})


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes):
        return None
    return value


def _rows(table: sa.Table, where) -> list[dict[str, Any]]:
    columns = [c for c in table.columns if c.name not in SECRET_COLUMNS]
    pk = list(table.primary_key.columns)
    query = sa.select(*columns).where(where).order_by(*pk)
    return [
        {key: _plain(value) for key, value in row._mapping.items()}
        for row in db.session.execute(query)
    ]


def collect(user_id: int) -> dict[str, list[dict[str, Any]]]:
    users = Base.metadata.tables["users"]
    data: dict[str, list[dict[str, Any]]] = {"users": _rows(users, users.c.id == user_id)}
    owned: dict[str, set[Any]] = {}
    # level 1: rows that reference the user
    for table in Base.metadata.sorted_tables:
        if table.name == "users":
            continue
        conditions = [
            fk.parent == user_id
            for fk in table.foreign_keys
            if fk.column.table.name == "users" and fk.column.name == "id"
        ]
        if conditions:
            rows = _rows(table, sa.or_(*conditions))
            if rows:
                data[table.name] = rows
                pk = list(table.primary_key.columns)
                owner_fk = any(
                    fk.parent.name in OWNER_COLUMNS
                    for fk in table.foreign_keys
                    if fk.column.table.name == "users"
                )
                if len(pk) == 1 and owner_fk:
                    owned[table.name] = {row[pk[0].name] for row in rows if pk[0].name in row}
    # level 2: rows that belong to those rows (ledger entries of the account, messages …)
    for table in Base.metadata.sorted_tables:
        conditions = [
            fk.parent.in_(sorted(owned[fk.column.table.name]))
            for fk in table.foreign_keys
            if fk.column.table.name in owned and fk.column.table.name != table.name
        ]
        if not conditions:
            continue
        rows = _rows(table, sa.or_(*conditions))
        known = {json.dumps(r, sort_keys=True, default=str) for r in data.get(table.name, [])}
        extra = [r for r in rows if json.dumps(r, sort_keys=True, default=str) not in known]
        if extra:
            data.setdefault(table.name, []).extend(extra)
    return data


def export_json(user: Any) -> str:
    payload = {
        "exported_at": utcnow().isoformat(),
        "user_id": user.id,
        "tables": collect(user.id),
    }
    return json.dumps(payload, ensure_ascii=False, indent=2, default=str)


def export_response(user: Any) -> Response:
    response = Response(export_json(user), mimetype="application/json")
    stamp = utcnow().strftime("%Y%m%d")
    response.headers["Content-Disposition"] = (
        f'attachment; filename="memberplatform-my-data-{stamp}.json"'
    )
    response.headers["Cache-Control"] = "private, no-store"
    return response
