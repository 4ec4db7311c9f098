"""Bulk seeding at benchmark scale: members with points histories, fast on both engines.

Rows are written with Core ``executemany`` in large chunks inside one transaction
(no ORM objects), with ids assigned here; PostgreSQL sequences are moved past
them afterwards so the application keeps inserting normally.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from memberplatform.auth.models import User, UserRole
from memberplatform.points.models import LedgerEntry, PointsAccount, PointsLot

CHUNK = 20_000
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超霞平刚"
PHONE_BASE = 15_000_000_000  # bench members: 150xxxxxxxx


def bench_phone(index: int) -> str:
    return str(PHONE_BASE + index)


def _chunks(rows: Iterator[dict], size: int = CHUNK) -> Iterator[list[dict]]:
    batch: list[dict] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _next_id(conn: sa.Connection, table: sa.Table) -> int:
    return (conn.scalar(sa.select(sa.func.max(table.c.id))) or 0) + 1


def seed_members(engine: sa.Engine, members: int, entries_each: int, password_hash: str) -> dict:
    """Add ``members`` active members, each with ``entries_each`` earned ledger entries."""
    started = time.perf_counter()
    now = datetime.now(UTC)
    expiry = datetime(now.year + 1, 12, 31, 16, 0, tzinfo=UTC)
    with engine.begin() as conn:
        first_user = _next_id(conn, User.__table__)
        first_account = _next_id(conn, PointsAccount.__table__)
        first_entry = _next_id(conn, LedgerEntry.__table__)
        first_lot = _next_id(conn, PointsLot.__table__)
        user_ids = range(first_user, first_user + members)

        def users():
            for n, uid in enumerate(user_ids):
                yield {
                    "id": uid,
                    "phone": bench_phone(uid),
                    "name": SURNAMES[n % 20] + GIVEN[n * 7 % 20] + GIVEN[n % 20],
                    "password_hash": password_hash,
                    "status": "active",
                    "member_no": f"B{uid:07d}",
                    "session_token": f"bench{uid:027d}",
                    "created_at": now - timedelta(days=n % 365),
                    "activated_at": now,
                }

        for batch in _chunks(users()):
            conn.execute(User.__table__.insert(), batch)
        for batch in _chunks({"user_id": uid, "role": "member"} for uid in user_ids):
            conn.execute(UserRole.__table__.insert(), batch)
        for batch in _chunks(
            {
                "id": first_account + n,
                "user_id": uid,
                "balance": 10 * entries_each,
                "created_at": now,
            }
            for n, uid in enumerate(user_ids)
        ):
            conn.execute(PointsAccount.__table__.insert(), batch)

        def entries():
            entry_id = first_entry
            for n in range(members):
                account = first_account + n
                for k in range(entries_each):
                    yield {
                        "id": entry_id,
                        "account_id": account,
                        "amount": 10,
                        "balance_after": 10 * (k + 1),
                        "kind": "earn",
                        "reason": "grant",
                        "idempotency_key": f"bench:{account}:{k}",
                        "note": "bench",
                        "created_at": now - timedelta(days=entries_each - k),
                    }
                    entry_id += 1

        for batch in _chunks(entries()):
            conn.execute(LedgerEntry.__table__.insert(), batch)
        for batch in _chunks(
            {
                "id": first_lot + i,
                "account_id": first_account + i // entries_each,
                "entry_id": first_entry + i,
                "amount": 10,
                "remaining": 10,
                "expires_at": expiry,
            }
            for i in range(members * entries_each)
        ):
            conn.execute(PointsLot.__table__.insert(), batch)
        if conn.dialect.name == "postgresql":
            for table in ("users", "points_accounts", "ledger_entries", "points_lots"):
                conn.execute(
                    sa.text(
                        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                        f"(SELECT max(id) FROM {table}))"
                    )
                )
    if engine.dialect.name == "postgresql":
        # As after any bulk load: VACUUM sets the rows' hint bits and the visibility map
        # now, instead of the first page reads dirtying a million rows' pages during the
        # measurement; CHECKPOINT writes them out before it starts.
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text("VACUUM (ANALYZE)"))
            with contextlib.suppress(sa.exc.DBAPIError):  # needs the checkpoint privilege
                conn.execute(sa.text("CHECKPOINT"))
    else:
        with engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE")
    return {
        "members": members,
        "ledger_entries": members * entries_each,
        "first_user_id": first_user,
        "seconds": round(time.perf_counter() - started, 1),
    }
