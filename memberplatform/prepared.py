"""The statements every page runs, compiled once and run on the driver's cursor.

SQLAlchemy's execution path around a small ``SELECT`` — cache key, execution
context, result metadata — costs three to four times the statement itself on
SQLite (measured: ~90 µs of ~120 µs for the signed-in user's statement), and a
member's dashboard runs seven of them. :func:`run` keeps what SQLAlchemy does
for such a statement and drops the rest: the SQL string and its parameters'
order and converters come from SQLAlchemy's own compiler once per statement and
dialect; the rows' values go through the same result processors (a SQLite date
string becomes a ``date``, a UTC column an aware ``datetime``), looked up for
the driver's column types on the first execution, as SQLAlchemy does.

Every statement still passes the engine's ``before_cursor_execute`` hooks, so
statement counts (tests, ``make bench``) and the write guard see it.

Plain ``SELECT`` statements qualify, and Core ``INSERT``/``UPDATE``/``DELETE``
statements that name every value they write (a column's Python-side default,
which SQLAlchemy computes per execution, keeps a statement out); their
``RETURNING`` columns make the rows, and the rows written are counted
(:attr:`Rows.rowcount`). A statement SQLAlchemy would render at execution time
(an expanding ``IN``, escaped parameter names) or whose rows would not make
attribute names returns ``None`` from :func:`prepare` and runs through
SQLAlchemy as before.

psycopg prepares a statement on the server once it has run a few times, and
PostgreSQL may then keep one generic plan for every value. Where the best plan
depends on the value (a column whose values are skewed), the statement says
``.execution_options(plan_per_execution=True)`` and is planned with its values
each time.
"""

from __future__ import annotations

import itertools
import keyword
import re
import threading
import weakref
from collections import namedtuple
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import sqlalchemy as sa

_lock = threading.Lock()
#: (statement, dialect name) -> Prepared, or None when the statement does not qualify
_cache: dict[tuple[int, str], tuple[sa.Executable, Prepared | None]] = {}
#: statements are built once (``functools.cache``); this bounds a careless caller
MAX_PREPARED = 256


class Prepared:
    """One ``SELECT`` compiled for one dialect."""

    __slots__ = (
        "binds",
        "defaults",
        "driver_options",
        "name",
        "positional",
        "processors",
        "row",
        "sql",
        "types",
    )

    def __init__(
        self,
        compiled: sa.engine.Compiled,
        columns: dict[str, Any],
        dialect: Any,
        plan_per_execution: bool = False,
    ) -> None:
        self.sql: str = compiled.string
        #: keyword arguments of the driver's ``execute``: a statement whose best plan
        #: depends on its values (skewed data) is not prepared by psycopg, so PostgreSQL
        #: plans it with them every time instead of settling on one generic plan
        self.driver_options: dict[str, Any] = (
            {"prepare": False} if plan_per_execution and dialect.name == "postgresql" else {}
        )
        self.types = [column.type for column in columns.values()]
        self.positional: tuple[str, ...] | None = (
            tuple(compiled.positiontup or ()) if dialect.positional else None
        )
        self.defaults: dict[str, Any] = dict(compiled.params)
        binds: list[tuple[str, Callable[[Any], Any]]] = []
        for name, bind in compiled.binds.items():
            processor = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if processor is not None:
                binds.append((name, processor))
        self.binds = binds
        self.row = _row_type(list(columns))
        #: (column index, result processor) of the columns that have one; set on the
        #: first execution, from the driver's column types
        self.processors: list[tuple[int, Callable[[Any], Any]]] | None = None
        self.name: str | None = None

    def named(self, dialect: Any) -> str:
        """The name :func:`run_batch` prepares it under on a connection (PostgreSQL)."""
        if self.name is None:
            if dialect.paramstyle != "pyformat" or self.positional is not None:
                raise ValueError("run_batch runs statements compiled for psycopg")
            self.name = f"mp_{next(_names)}"
        return self.name

    @property
    def dollar_sql(self) -> str:
        """The SQL with PostgreSQL's ``$1``… placeholders, numbered in the order of
        :attr:`defaults` (every parameter the statement has)."""
        order = {name: index for index, name in enumerate(self.defaults, 1)}
        return _PYFORMAT.sub(lambda m: f"${order[m[1]]}" if m[1] else "%", self.sql)

    def parameters(self, params: dict[str, Any] | None) -> Sequence[Any] | dict[str, Any]:
        values = {**self.defaults, **params} if params else dict(self.defaults)
        for name, processor in self.binds:
            values[name] = processor(values[name])
        if self.positional is not None:
            return tuple(values[name] for name in self.positional)
        return values


#: psycopg's placeholders and its escaped "%" in SQLAlchemy's SQL for it
_PYFORMAT = re.compile(r"%\((\w+)\)s|%%")


def _row_type(keys: list[str]) -> type:
    base = namedtuple("Row", keys)  # one type per statement

    class Row(base):  # type: ignore[misc, valid-type]
        __slots__ = ()

        @property
        def _mapping(self) -> dict[str, Any]:
            return self._asdict()

    return Row


def prepare(statement: sa.Executable, dialect: Any) -> Prepared | None:
    """The statement compiled for ``dialect`` (cached), or None when it does not qualify."""
    key = (id(statement), dialect.name)
    found = _cache.get(key)
    if found is not None and found[0] is statement:
        return found[1]
    prepared = _compile(statement, dialect)
    with _lock:
        if len(_cache) >= MAX_PREPARED:
            _cache.clear()
        _cache[key] = (statement, prepared)  # the statement is kept: its id stays its own
    return prepared


def _compile(statement: sa.Executable, dialect: Any) -> Prepared | None:
    dml = isinstance(statement, sa.Insert | sa.Update | sa.Delete)
    if not dml and not isinstance(statement, sa.Select | sa.CompoundSelect):
        return None
    if dml and statement.entity_description.get("entity") is not None:
        return None  # an ORM statement: the session keeps its objects in step
    compiled = _with_constants_inline(statement, dialect).compile(dialect=dialect)
    if (
        compiled.post_compile_params
        or compiled.literal_execute_params
        or getattr(compiled, "escaped_bind_names", None)
        or getattr(compiled, "insert_prefetch", None)  # defaults SQLAlchemy computes
        or getattr(compiled, "update_prefetch", None)
        or getattr(compiled, "implicit_returning", None)  # SQLAlchemy's primary key fetch
        or any(bind.callable is not None for bind in compiled.binds.values())
    ):
        return None
    # a write's RETURNING columns, as compiled (a copied statement can carry another's
    # memoized ``exported_columns``)
    selected = compiled.effective_returning or () if dml else statement.selected_columns
    columns = {column.key: column for column in selected} if dml else dict(selected.items())
    if len(columns) != len(selected) or not all(
        key.isidentifier() and not key.startswith("_") and not keyword.iskeyword(key)
        for key in columns
    ):
        return None
    per_execution = bool(statement.get_execution_options().get("plan_per_execution"))
    return Prepared(compiled, columns, dialect, per_execution)


#: Python values a constant of the statement may have to be written into its SQL
_CONSTANT_TYPES = (str, int, bool)


def _with_constants_inline(statement: sa.Executable, dialect: Any) -> sa.Executable:
    """The statement with its constants (``status != "cancelled"``, ``limit(5)``)
    written into the SQL as literals; only the caller's named parameters
    (``sa.bindparam("user_id")``) stay parameters.

    PostgreSQL plans a statement psycopg has prepared once, generically, when that
    plan costs about what the plans for the actual values do. A constant sent as a
    parameter is unknown to the generic plan: estimated with the column's average
    selectivity (a rare ``status = 'waitlisted'`` as a common one), its cost can
    keep PostgreSQL planning the statement afresh on every execution (measured: the
    /me courses statement, 0.3–0.45 ms of planning each time at 100,000 members).
    Values are written by the dialect's own literal renderers, as SQLAlchemy's
    ``literal_binds`` does."""

    def constant(element: Any) -> Any:
        if (
            not isinstance(element, sa.BindParameter)
            or element.required
            or element.callable is not None
            or type(element.value) not in _CONSTANT_TYPES
            or (type(element.value) is str and "%" in element.value)
        ):
            return None  # a "%" would be doubled twice for psycopg's placeholders: a parameter
        render = element.type.dialect_impl(dialect).literal_processor(dialect)
        if render is None:
            return None
        return sa.literal_column(render(element.value), type_=element.type)

    return sa.sql.visitors.replacement_traverse(statement, {}, constant)


class Rows:
    """The rows of one execution, with the part of SQLAlchemy's ``Result`` the
    platform's reads and writes use; ``rowcount``: the rows a write matched."""

    __slots__ = ("_rows", "rowcount")

    def __init__(self, rows: list[Any], rowcount: int = -1) -> None:
        self._rows = rows
        self.rowcount = rowcount

    def __iter__(self) -> Iterator[Any]:
        return iter(self._rows)

    def all(self) -> list[Any]:
        return self._rows

    def first(self) -> Any | None:
        return self._rows[0] if self._rows else None

    def one_or_none(self) -> Any | None:
        if len(self._rows) > 1:
            raise sa.exc.MultipleResultsFound(
                "Multiple rows were found when one or none was required"
            )
        return self.first()

    def one(self) -> Any:
        if len(self._rows) != 1:
            if not self._rows:
                raise sa.exc.NoResultFound("No row was found when one was required")
            raise sa.exc.MultipleResultsFound(
                "Multiple rows were found when exactly one was required"
            )
        return self._rows[0]

    def scalar(self) -> Any:
        return self._rows[0][0] if self._rows else None

    def scalar_one(self) -> Any:
        return self.one()[0]


def run(
    prepared: Prepared,
    engine: sa.Engine,
    dbapi_connection: Any,
    params: dict[str, Any] | None,
    connection: sa.Connection | None = None,
) -> Rows:
    """Execute on ``dbapi_connection`` (the driver's), announcing the statement to
    ``engine``'s ``before_cursor_execute`` hooks first."""
    parameters = prepared.parameters(params)
    dialect = engine.dialect
    cursor = dbapi_connection.cursor()
    try:
        engine.dispatch.before_cursor_execute(
            connection, cursor, prepared.sql, parameters, None, False
        )
        cursor.execute(prepared.sql, parameters, **prepared.driver_options)
        # a write without RETURNING (known from the statement: psycopg's
        # ``description`` builds an object per column every time it is read)
        if not prepared.types:
            return Rows([], cursor.rowcount)
        rows = _rows(prepared, cursor, dialect)
        rows.rowcount = cursor.rowcount  # after the fetch: SQLite counts as it reads
        return rows
    except dialect.loaded_dbapi.Error as error:
        raise _wrapped(
            error, prepared.sql, parameters, dbapi_connection, cursor, dialect
        ) from error
    finally:
        cursor.close()


def run_batch(
    statements: Sequence[tuple[Prepared, dict[str, Any] | None]],
    engine: sa.Engine,
    dbapi_connection: Any,
) -> list[Rows]:
    """Execute several statements in one round trip (PostgreSQL only, outside a
    transaction): one query of ``EXECUTE`` commands, each of a statement prepared on
    this connection by name (``PREPARE``, once per connection), its parameters written
    as literals by psycopg. Each is announced to the ``before_cursor_execute`` hooks,
    as :func:`run` does.

    psycopg's pipeline mode also sends several statements in one round trip, but does
    per statement what a one-statement query does (a cursor, the parameters' dumping,
    its prepared-statement bookkeeping, a flush of the socket): measured for the
    seven statements of ``/me``, 425–475 µs of the worker's CPU against 225–285 µs
    this way, for the same work on the server (both run prepared, generic plans)."""
    dialect = engine.dialect
    names = [prepared.named(dialect) for prepared, _ in statements]
    known = _named.setdefault(dbapi_connection, set())
    sql = ""
    cursor = dbapi_connection.cursor()

    def prepare_missing() -> None:
        nonlocal sql
        for name, (prepared, _) in zip(names, statements, strict=True):
            if name not in known:
                sql = f"PREPARE {name} AS {prepared.dollar_sql}"
                cursor.execute(sql.encode(), prepare=False)
                known.add(name)

    try:
        prepare_missing()
        commands = []
        for name, (prepared, params) in zip(names, statements, strict=True):
            parameters = prepared.parameters(params)
            engine.dispatch.before_cursor_execute(
                None, cursor, prepared.sql, parameters, None, False
            )
            values = [parameters[key] for key in prepared.defaults]
            arguments = f"({_literals(values, dbapi_connection)})" if values else ""
            commands.append(f"EXECUTE {name}{arguments}")
        sql = "; ".join(commands)
        batch = sql.encode()
        try:
            cursor.execute(batch, prepare=False)
        except dialect.loaded_dbapi.Error as error:
            if getattr(error, "sqlstate", None) != _NO_SUCH_STATEMENT:
                raise
            # The connection forgot them (psycopg deallocates all after a rollback) and
            # the query executed nothing: ask it which it has, prepare the others and
            # send the same query once more (its statements stay announced once).
            cursor.execute(b"SELECT name FROM pg_prepared_statements", prepare=False)
            known.clear()
            known.update(name for (name,) in cursor.fetchall())
            prepare_missing()
            sql = batch.decode()
            cursor.execute(batch, prepare=False)
        rows = []
        for prepared, _ in statements:
            rows.append(_rows(prepared, cursor, dialect))
            cursor.nextset()
        return rows
    except dialect.loaded_dbapi.Error as error:
        raise _wrapped(error, sql, None, dbapi_connection, cursor, dialect) from error
    finally:
        cursor.close()


#: SQLSTATE invalid_sql_statement_name: "prepared statement … does not exist"
_NO_SUCH_STATEMENT = "26000"
#: the statements :func:`run_batch` has prepared on each driver connection, by name
_named: weakref.WeakKeyDictionary[Any, set[str]] = weakref.WeakKeyDictionary()
_names = itertools.count(1)


def _literals(values: Iterable[Any], dbapi_connection: Any) -> str:
    """The values as SQL literals, quoted by psycopg (a whole number as itself)."""
    from psycopg import sql as psycopg_sql

    return ", ".join(
        str(value) if type(value) is int else psycopg_sql.Literal(value).as_string(dbapi_connection)
        for value in values
    )


def _rows(prepared: Prepared, cursor: Any, dialect: Any) -> Rows:
    processors = prepared.processors
    if processors is None:
        processors = prepared.processors = _result_processors(prepared, cursor, dialect)
    raw = cursor.fetchall()
    make = prepared.row._make
    if not processors:
        return Rows([make(values) for values in raw])
    rows = []
    for values in raw:
        values = list(values)
        for index, processor in processors:
            values[index] = processor(values[index])
        rows.append(make(values))
    return Rows(rows)


def _wrapped(
    error: Exception, sql: str, parameters: Any, dbapi_connection: Any, cursor: Any, dialect: Any
) -> sa.exc.DBAPIError:
    """The driver's error as SQLAlchemy raises it (callers catch ``sa.exc`` errors)."""
    return sa.exc.DBAPIError.instance(
        sql,
        parameters,
        error,
        dialect.loaded_dbapi.Error,
        connection_invalidated=dialect.is_disconnect(error, dbapi_connection, cursor),
        dialect=dialect,
    )


def _result_processors(prepared: Prepared, cursor: Any, dialect: Any) -> list[Any]:
    """(column index, converter) for each column that has one, as SQLAlchemy picks it:
    the column's type for this dialect, given the driver's type code of the column."""
    description = cursor.description or ()
    if len(description) != len(prepared.types):
        raise RuntimeError("a prepared statement returned other columns than it selects")
    found = (
        column_type.dialect_impl(dialect).result_processor(dialect, entry[1])
        for column_type, entry in zip(prepared.types, description, strict=True)
    )
    return [(index, processor) for index, processor in enumerate(found) if processor]
