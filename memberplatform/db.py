"""The one model layer: declarative base, engine, and a session per app context.

Transactions
------------
A request commits once, in ``after_request``, when its response is a success
(status < 400); anything else, and any exception, rolls back. Service
functions only ``flush``. A rush view commits itself as soon as its service call
succeeds (the kit claim), so the contended stock row (PostgreSQL) or the write
lock (SQLite) is not held while the response is built, and reads what it needs
before it knows whether it will write in :meth:`Database.reading`.

SQLite runs in WAL mode with ``foreign_keys`` on and a busy timeout. The
``sqlite3`` driver's legacy transaction handling is switched off (the recipe in
SQLAlchemy's "Serializable isolation / Savepoints / Transactional DDL" section)
and SQLAlchemy emits ``BEGIN`` itself: ``BEGIN IMMEDIATE`` for anything that may
write, so two writers queue on the busy timeout instead of failing with
``database is locked`` on a read-to-write upgrade, and a plain deferred
``BEGIN`` for GET/HEAD/OPTIONS requests, which only read and must not queue.
Even so, every invariant is also guarded by a conditional ``UPDATE … WHERE``,
a unique index or a CHECK, so PostgreSQL (read committed, with row locks
from ``with_for_update``) holds the same invariants.
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
import sqlalchemy.orm as so
from flask import Flask, current_app, g, has_app_context, has_request_context
from flask.globals import _cv_app, _cv_request

from memberplatform.prepared import prepare, run, run_batch

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def utcnow() -> datetime:
    """The current time, timezone-aware, in UTC (what the database stores)."""
    return datetime.now(UTC)


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """Stores naive UTC, returns aware UTC, on every engine."""

    impl = sa.DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC)


class Base(so.DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime()}  # noqa: RUF012


def _wants_write() -> bool:
    """Whether a transaction starting now may write (decides BEGIN IMMEDIATE on SQLite)."""
    request_context = _cv_request.get(None)  # not the proxies: every statement asks
    if request_context is None:
        return True
    flags = _cv_app.get().g.__dict__
    if flags.get("reading"):
        return False
    return request_context.request.method not in SAFE_METHODS or bool(flags.get("write_intent"))


def mark_write_intent() -> None:
    """Call before the first query of a GET view that will write (e.g. an audit entry).

    A read-only transaction already open (the session check read the user) ends
    here, so the next statement starts the writing one."""
    _leave_read_only("write_intent")


def needs_transaction() -> None:
    """Call before a read-only request's first query when it must run in a transaction
    anyway: a streamed export (PostgreSQL's server-side cursors live in one). Unlike
    :func:`mark_write_intent`, SQLite's transaction stays a reader's."""
    _leave_read_only("needs_transaction")


def _leave_read_only(flag: str) -> None:
    """Set ``g.<flag>``; a read-only transaction open until now ends (it only read)."""
    from memberplatform.extensions import db

    read_only = not _wants_write() and not g.get("needs_transaction")
    setattr(g, flag, True)
    session = db.session()
    if read_only and session.in_transaction():
        session.commit()


def _reads_only() -> bool:
    """Whether the request is in its read-only part (no transaction needed); outside a
    request :func:`_wants_write` is always true."""
    return not _wants_write() and not _cv_app.get().g.__dict__.get("needs_transaction")


def _has_changes(session: so.Session) -> bool:
    return bool(session.new or session.dirty or session.deleted)


class _HeldReader:
    """A thread's connection for reads outside a transaction, kept between requests."""

    __slots__ = ("connection", "driver", "engine", "idle_since", "pid")

    def __init__(self, engine: sa.Engine, connection: Any) -> None:
        self.engine = engine
        self.connection = connection  #: the pool's wrapper, detached: closing it closes
        self.driver = connection.driver_connection  #: what statements run on
        self.pid = os.getpid()
        self.idle_since = time.monotonic()


#: each thread's reader (a worker's thread serves one request at a time)
_held_readers: dict[threading.Thread, _HeldReader] = {}
#: readers a forked child inherited: never used, never closed (the parent's sessions)
_inherited_readers: list[_HeldReader] = []


def _reader(engine: sa.Engine) -> Any:
    """The driver's connection :meth:`Database.read` uses outside a transaction: on
    SQLite each statement is its own (the driver's transaction handling is off), on
    PostgreSQL it runs in autocommit, as the session's read-only requests do.

    Each thread keeps one such connection from request to request, out of the pool
    (``detach``), already in autocommit: taking one from the pool and giving it back
    (the checkout, autocommit switched on and off, the reset on return) was a quarter
    of a badge's instructions, for the one statement most fragments run. As the pool does
    (:func:`_ping_when_idle`), a connection idle for ``PING_AFTER_IDLE_SECONDS`` is
    pinged before use and replaced when the database has gone away meanwhile; one
    that broke during a request is dropped at its end."""
    flags = _cv_app.get().g
    reader = flags.__dict__.get("db_reader")
    if reader is not None:
        return reader
    thread = threading.current_thread()
    held = _held_readers.get(thread)
    if held is not None and (held.engine is not engine or held.pid != os.getpid()):
        _drop_reader(thread)
        held = None
    if held is not None and time.monotonic() - held.idle_since >= PING_AFTER_IDLE_SECONDS:
        try:
            engine.dialect.do_ping(held.driver)
        except engine.dialect.loaded_dbapi.Error:
            _drop_reader(thread)
            held = None
    if held is None:
        for gone in [t for t in list(_held_readers) if not t.is_alive()]:  # threads that ended
            _drop_reader(gone)
        held = _HeldReader(engine, engine.raw_connection())
        held.connection.detach()  # the pool's size and resets are the sessions' concern
        if engine.dialect.name == "postgresql":
            held.driver.autocommit = True
        _held_readers[thread] = held
    flags.db_reader = held.driver
    return held.driver


def _release_reader() -> None:
    """The request is done with its reader: it stays with the thread, unless it broke."""
    if _cv_app.get().g.__dict__.pop("db_reader", None) is None:
        return
    thread = threading.current_thread()
    held = _held_readers.get(thread)
    if held is None:
        return
    if getattr(held.driver, "closed", False):  # lost mid-request
        _drop_reader(thread)
    else:
        held.idle_since = time.monotonic()


def _drop_reader(thread: threading.Thread) -> None:
    held = _held_readers.pop(thread, None)
    if held is None:
        return
    if held.pid != os.getpid():
        _inherited_readers.append(held)  # closing it would end the parent's session
        return
    with contextlib.suppress(Exception):  # already broken: nothing to close cleanly
        held.connection.close()


def _drop_readers_of(engine: sa.Engine) -> None:
    for thread in [t for t, held in list(_held_readers.items()) if held.engine is engine]:
        _drop_reader(thread)


def wrote() -> bool:
    """Whether this request has written yet (an INSERT, UPDATE or DELETE): what it read
    before may be out of date."""
    app_ctx = _cv_app.get(None)  # not the proxies: the header's counts ask on every page
    return app_ctx is not None and bool(app_ctx.g.__dict__.get("db_wrote"))


_WRITE_VERBS = ("INSERT", "UPDATE", "DELETE")


def _writes(context: Any, statement: str) -> bool:
    if context is None:  # run on the driver's cursor (memberplatform.prepared)
        return statement.lstrip()[:6].upper() in _WRITE_VERBS
    if context.isinsert or context.isupdate or context.isdelete:
        return True
    return bool(context.is_text and context.compiled is not None) and (
        statement.lstrip()[:6].upper() in _WRITE_VERBS
    )


def _watch_writes(engine: sa.Engine) -> None:
    """Note a request's writes (:func:`wrote`), and refuse one in a request that said
    it would only read: on PostgreSQL it would run outside any transaction."""

    @sa.event.listens_for(engine, "before_cursor_execute")
    def _note(conn, cursor, statement, parameters, context, executemany) -> None:
        if not has_app_context() or not _writes(context, statement):
            return
        if has_request_context() and not _wants_write():
            raise ReadOnlyRequestError(
                "a write in a request that only reads: call mark_write_intent() before "
                "its first query, or write outside db.reading()"
            )
        g.db_wrote = True


class ReadOnlyRequestError(RuntimeError):
    """A GET request (or a ``db.reading()`` block) tried to write."""


def _scope() -> int:
    from flask.globals import _cv_app

    ctx = _cv_app.get(None)
    return id(ctx) if ctx is not None else 0


class _Session(so.Session):
    """A session that binds to the current application's engine."""

    def begin_nested(self) -> so.SessionTransaction:
        """A savepoint lives in a transaction: a read-only request (on PostgreSQL
        without one) asks for it first (:func:`needs_transaction`)."""
        if has_request_context() and not _wants_write():
            needs_transaction()
        return super().begin_nested()

    def get_bind(self, mapper=None, clause=None, bind=None, **kw):  # type: ignore[override]
        if bind is not None:
            return bind
        if not has_app_context():
            raise RuntimeError("database session used outside an application context")
        extensions = current_app.extensions
        reads_only = not _wants_write() and not g.get("needs_transaction")
        if reads_only and "db_engine_reads" in extensions:
            return extensions["db_engine_reads"]
        return extensions["db_engine"]


class Database:
    """Engine and scoped session bound to the Flask application."""

    def __init__(self) -> None:
        self.session = so.scoped_session(
            so.sessionmaker(class_=_Session, expire_on_commit=False), scopefunc=_scope
        )

    def init_app(self, app: Flask) -> None:
        url = app.config["DATABASE_URL"]
        engine = create_engine(
            url,
            busy_timeout=app.config.get("SQLITE_BUSY_TIMEOUT", 20),
            pool_size=app.config.get("DATABASE_POOL_SIZE", 10),
            max_overflow=app.config.get("DATABASE_MAX_OVERFLOW", 10),
        )
        app.extensions["db_engine"] = engine
        if engine.dialect.name == "postgresql":
            # Requests that only read run without BEGIN/COMMIT (two round trips each):
            # under read committed every statement sees a fresh snapshot anyway.
            app.extensions["db_engine_reads"] = engine.execution_options(
                isolation_level="AUTOCOMMIT"
            )

        # A request whose reads all went through read() never made a session, and
        # committing one that never began would begin a transaction to end it.
        sessions = self.session.registry

        @app.after_request
        def _commit(response):  # one commit per request, if there is anything to end
            if sessions.has():
                session = sessions()
                if session.in_transaction() or _has_changes(session):
                    if response.status_code < 400:
                        session.commit()
                    else:
                        session.rollback()
            return response

        @app.teardown_appcontext
        def _remove(exc: BaseException | None) -> None:
            _release_reader()
            if sessions.has():
                self.session.remove()

    def read(self, statement: sa.Executable, params: dict[str, Any] | None = None) -> Any:
        """Run a Core ``SELECT`` of columns: for the statements every page runs (the
        signed-in user, the header counts, the /me panels).

        It runs compiled once, on the driver's cursor (:mod:`memberplatform.prepared`),
        without the ORM or SQLAlchemy's per-execution work. In a writing request, or
        once the session has a transaction, it runs in that transaction, after the
        session's pending changes are flushed (as ``Session.execute`` would). In the
        read-only part of a request it runs without a transaction on the connection
        its thread keeps for such reads (:func:`_reader`), as every read-only request
        does on PostgreSQL: no session, no BEGIN or COMMIT, for a fragment that reads
        only the signed-in user. After
        :meth:`read_ahead`, a statement read ahead is answered (once) from its rows."""
        app_ctx = _cv_app.get()  # the context variable: each proxy read costs (7 a page)
        engine = app_ctx.app.extensions["db_engine"]
        prepared = prepare(statement, engine.dialect)
        sessions = self.session.registry
        session = sessions() if sessions.has() else None
        if session is not None and _has_changes(session):
            session.flush()
        ahead = app_ctx.g.__dict__.get("read_ahead")
        if ahead is not None:
            answer = ahead.answer(statement, params)
            if answer is not None:
                return answer
        if (session is None or not session.in_transaction()) and _reads_only():
            if prepared is None:
                reads = current_app.extensions.get("db_engine_reads", engine)
                with reads.connect() as connection:
                    return connection.execute(statement, params).freeze()()
            return run(prepared, engine, _reader(engine), params)
        return self._run_in_session(statement, prepared, engine, params)

    def write(self, statement: sa.Executable, params: dict[str, Any] | None = None) -> Any:
        """Run a Core ``INSERT``, ``UPDATE`` or ``DELETE`` in the session's transaction:
        for the writes every claim, donation and enrolment makes (a notification,
        a unit taken from the shelf).

        As :meth:`read`, it runs compiled once on the driver's cursor, after the
        session's pending changes are flushed; the result has ``rowcount`` and, with
        ``RETURNING``, the rows (``scalar_one()`` …). A statement that does not
        qualify (:func:`memberplatform.prepared.prepare`) runs through SQLAlchemy.
        Measured on PostgreSQL: a notification's ``INSERT … RETURNING id`` costs the
        worker ~85 µs of CPU this way, ~170 µs through ``Session.execute``."""
        engine = current_app.extensions["db_engine"]
        session = self.session()
        if _has_changes(session):
            session.flush()
        return self._run_in_session(statement, prepare(statement, engine.dialect), engine, params)

    def _run_in_session(
        self, statement: sa.Executable, prepared: Any, engine: sa.Engine, params: Any
    ) -> Any:
        """``statement`` on the session's connection (its transaction begins if it has
        not): on the driver's cursor when ``prepared``, else through SQLAlchemy."""
        connection = self.session().connection()
        if prepared is None:
            return connection.execute(statement, params)
        return run(prepared, engine, connection.connection.driver_connection, params, connection)

    def read_ahead(self, reads: Iterable[tuple[sa.Executable, dict[str, Any] | None]]) -> None:
        """Run ``reads`` (statement, params) now, together, and answer :meth:`read`
        from their rows for the rest of the request: the session check reads a view's
        declared first reads with the signed-in user's statement this way
        (``web.access.reads_with_user``, ``auth.identity``).

        On PostgreSQL, in a request's read-only part, they are sent in one round trip
        (one query of ``EXECUTE`` commands, :func:`memberplatform.prepared.run_batch`)
        instead of one each: the worker and the database each wake once instead of
        once per statement. Elsewhere they run one after
        another, as the view's own reads would. Each read is answered once; a read
        not made ahead, one made again, or any read after the request has written
        runs as usual. A later call replaces what an earlier one read.
        """
        reads = list(reads)
        answers = self._read_all(reads)
        flags = _cv_app.get().g
        flags.read_ahead = _ReadAhead(reads, answers, bool(flags.__dict__.get("db_wrote")))

    def _read_all(self, reads: list[tuple[sa.Executable, dict[str, Any] | None]]) -> list[Any]:
        engine = _cv_app.get().app.extensions["db_engine"]
        if engine.dialect.name == "postgresql" and len(reads) > 1 and not self._in_transaction():
            sessions = self.session.registry
            pending = sessions.has() and _has_changes(sessions())
            prepared = [prepare(statement, engine.dialect) for statement, _ in reads]
            # a statement planned per execution is not PREPAREd by name either
            batchable = all(p is not None and not p.driver_options for p in prepared)
            if _reads_only() and not pending and batchable:
                connection = _reader(engine)
                return run_batch(
                    [(p, params) for p, (_, params) in zip(prepared, reads, strict=True)],
                    engine,
                    connection,
                )
        return [self.read(statement, params) for statement, params in reads]

    @contextmanager
    def reading(self) -> Iterator[None]:
        """Reads a writing request makes before it knows whether it will write.

        They run as a read-only request's do, in a transaction of their own that ends
        here: on SQLite a deferred one, so the request's ``BEGIN IMMEDIATE`` (the
        database-wide write lock) starts at its first write and a request that ends up
        not writing (a sold-out kit) never queues behind the writers; on PostgreSQL
        without BEGIN and COMMIT. Inside an open transaction it changes nothing.
        """
        if not has_request_context() or self._in_transaction():
            yield
            return
        g.reading = True
        try:
            yield
        except BaseException:
            if self._in_transaction():
                self.session.rollback()
            raise
        else:
            if self._in_transaction():  # the ORM read too (db.read needs none)
                self.session.commit()  # ends the read; nothing was written
        finally:
            g.reading = False

    def _in_transaction(self) -> bool:
        """Whether the request's session exists and has begun (without making one)."""
        return self.session.registry.has() and self.session().in_transaction()

    @property
    def engine(self) -> sa.Engine:
        return current_app.extensions["db_engine"]

    def dispose(self, app: Flask) -> None:
        """Drop the connections inherited across a fork (gunicorn post_fork): the pool's
        and the thread's reader."""
        engine = app.extensions["db_engine"]
        _drop_readers_of(engine)  # a reader opened before the fork is set aside, not closed
        engine.dispose(close=False)

    @contextmanager
    def transaction(self) -> Iterator[so.Session]:
        """Commit on success, roll back on error: for CLI commands and threads."""
        session = self.session()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


class _ReadAhead:
    """Rows read by :meth:`Database.read_ahead`, each handed out once."""

    __slots__ = ("answers", "wrote")

    def __init__(self, reads: list[tuple[Any, Any]], results: list[Any], wrote: bool) -> None:
        self.wrote = wrote
        self.answers: dict[tuple[int, Any], list[Any]] = {}
        for (statement, params), rows in zip(reads, results, strict=True):
            key = _read_key(statement, params)
            if key is not None:
                self.answers.setdefault(key, []).append(rows)

    def answer(self, statement: sa.Executable, params: dict[str, Any] | None) -> Any:
        if bool(_cv_app.get().g.__dict__.get("db_wrote")) != self.wrote:
            return None  # written since: what was read ahead may be out of date
        key = _read_key(statement, params)
        found = self.answers.get(key) if key is not None else None
        if not found:
            return None
        return found.pop(0)


def _read_key(statement: Any, params: dict[str, Any] | None) -> tuple[int, Any] | None:
    try:
        return id(statement), frozenset(params.items()) if params else frozenset()
    except TypeError:  # an unhashable parameter: not answered ahead
        return None


def create_engine(
    url: str, *, busy_timeout: int = 20, pool_size: int = 10, max_overflow: int = 10
) -> sa.Engine:
    """Create an engine with the platform's settings for SQLite or PostgreSQL.

    ``pool_size`` + ``max_overflow`` bound the PostgreSQL connections of one worker
    process: at least its threads (one connection each for a request)."""
    if url.startswith("sqlite"):
        path = sa.engine.make_url(url).database
        if path and path != ":memory:":
            with contextlib.suppress(OSError):  # an unusable path shows as a failed /healthz
                os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        engine = sa.create_engine(
            url, connect_args={"timeout": busy_timeout, "check_same_thread": False}
        )
        _configure_sqlite(engine, busy_timeout)
    else:
        engine = sa.create_engine(url, pool_size=pool_size, max_overflow=max_overflow)
        _ping_when_idle(engine)
    _watch_writes(engine)
    return engine


#: a pooled connection (or a thread's reader) unused for longer than this is checked
#: before it is used
PING_AFTER_IDLE_SECONDS = 1.0


def _ping_when_idle(engine: sa.Engine) -> None:
    """SQLAlchemy's ``pool_pre_ping``, only for connections that sat idle.

    ``pool_pre_ping`` costs a round trip on every checkout, and a request checks out
    once or twice. A connection back in the pool less than a second ago was working
    then; one idle for longer (the database may have restarted meanwhile) is pinged,
    and a dead one is replaced before any request sees it (``DisconnectionError``
    makes the pool connect anew). A restart in the middle of a rush can still fail a
    request in flight, as it would with ``pool_pre_ping``; the pool is then renewed.
    """

    @sa.event.listens_for(engine, "connect")
    def _connected(dbapi_connection: Any, record: Any) -> None:
        record.info["returned_at"] = time.monotonic()

    @sa.event.listens_for(engine, "checkin")
    def _returned(dbapi_connection: Any, record: Any) -> None:
        record.info["returned_at"] = time.monotonic()

    @sa.event.listens_for(engine, "checkout")
    def _handed_out(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        returned_at = record.info.get("returned_at")
        if returned_at is not None and time.monotonic() - returned_at < PING_AFTER_IDLE_SECONDS:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as error:
            raise sa.exc.DisconnectionError(str(error)) from error


def _configure_sqlite(engine: sa.Engine, busy_timeout: int) -> None:
    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        dbapi_connection.isolation_level = None  # SQLAlchemy emits BEGIN itself
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout) * 1000}")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(connection):
        # Straight to the driver: SQLAlchemy's execution path costs more than the BEGIN.
        driver = connection.connection.driver_connection
        driver.execute("BEGIN IMMEDIATE" if _wants_write() else "BEGIN")


def insert_ignoring_conflicts(
    session: so.Session, table: sa.Table, values: dict[str, Any], conflict_columns: list[str]
) -> None:
    """INSERT … ON CONFLICT DO NOTHING on SQLite and PostgreSQL (race-free get-or-create),
    in the transaction of ``session`` (the platform's, ``db.session``).

    The statement is built once per table, columns and dialect and run through
    :meth:`Database.write`: SQLAlchemy caches no compiled form of the dialects'
    ``ON CONFLICT`` inserts and compiled one on every call (~0.3–0.4 ms of CPU each,
    every points posting). Given every value the row gets (a column's Python-side
    default included), it runs compiled once on the driver's cursor."""
    from memberplatform.extensions import db

    dialect = session.get_bind().dialect.name
    statement = _insert_ignoring(table, tuple(values), tuple(conflict_columns), dialect)
    db.write(statement, values)


@functools.lru_cache(maxsize=64)
def _insert_ignoring(
    table: sa.Table, names: tuple[str, ...], conflict_columns: tuple[str, ...], dialect: str
) -> sa.Insert:
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    values = {name: sa.bindparam(name, type_=table.c[name].type) for name in names}
    return (
        insert(table)
        .values(values)
        .on_conflict_do_nothing(index_elements=list(conflict_columns))
        .returning(*table.primary_key.columns)  # named: no primary-key fetch of its own
    )
