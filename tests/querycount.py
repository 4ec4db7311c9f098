"""Count the SQL statements a block of code sends (query-count guards)."""

from __future__ import annotations

from contextlib import contextmanager

import sqlalchemy as sa


@contextmanager
def count_queries(engine: sa.Engine):
    statements: list[str] = []

    def listener(conn, cursor, statement, parameters, context, executemany):
        if (
            not statement.lstrip()
            .upper()
            .startswith(("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE", "PRAGMA"))
        ):
            statements.append(statement)

    sa.event.listen(engine, "before_cursor_execute", listener)
    try:
        yield statements
    finally:
        sa.event.remove(engine, "before_cursor_execute", listener)


@contextmanager
def record_transactions(engine: sa.Engine):
    """Yield the list of what ``engine`` sends, in order: ("begin", whether the
    transaction may write — BEGIN IMMEDIATE on SQLite) and ("sql", statement)."""
    from memberplatform.db import _wants_write

    events: list[tuple[str, object]] = []

    def began(connection):
        events.append(("begin", _wants_write()))

    def statement(conn, cursor, sql, *args):
        events.append(("sql", sql))

    sa.event.listen(engine, "begin", began)
    sa.event.listen(engine, "before_cursor_execute", statement)
    try:
        yield events
    finally:
        sa.event.remove(engine, "begin", began)
        sa.event.remove(engine, "before_cursor_execute", statement)


def read_before_writing(events: list[tuple[str, object]], table: str) -> bool:
    """Whether ``table`` was first read (not locked) before a writing transaction began."""
    writing = events.index(("begin", True))
    reads = [
        i
        for i, (kind, sql) in enumerate(events)
        if kind == "sql" and f"FROM {table}" in str(sql) and "FOR UPDATE" not in str(sql)
    ]
    return bool(reads) and reads[0] < writing


@contextmanager
def round_trips(engine: sa.Engine):
    """Yield the statements ``engine`` sends, grouped by the query that carried them to
    the database: one group per round trip. On PostgreSQL a group is what one
    ``execute`` of a psycopg cursor sent (``prepared.run_batch`` sends several in
    one); a query no statement was announced for (a connection's ping after it sat
    idle, a ``PREPARE``) is left out. On SQLite each statement is its own."""
    groups: list[list[str]] = []
    pending: dict[int, list[str]] = {}

    def announced(conn, cursor, statement, *args):
        if engine.dialect.name == "postgresql":
            pending.setdefault(id(cursor), []).append(statement)
        else:
            groups.append([statement])

    sa.event.listen(engine, "before_cursor_execute", announced)
    original = None
    if engine.dialect.name == "postgresql":
        import psycopg

        original = psycopg.Cursor.execute

        def execute(cursor, *args, **kwargs):
            sent = pending.pop(id(cursor), None)
            if sent:
                groups.append(sent)
            return original(cursor, *args, **kwargs)

        psycopg.Cursor.execute = execute
    try:
        yield groups
    finally:
        sa.event.remove(engine, "before_cursor_execute", announced)
        if original is not None:
            psycopg.Cursor.execute = original
        # announced, sent some other way (executemany): each a round trip of its own
        groups.extend([statement] for sent in pending.values() for statement in sent)
