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

Only plain ``SELECT`` statements qualify; one SQLAlchemy would render at
execution time (an expanding ``IN``, escaped parameter names) or whose rows
would not make attribute names returns ``None`` from :func:`prepare` and runs
through SQLAlchemy as before.
"""

from __future__ import annotations

import keyword
import threading
from collections import namedtuple
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import sqlalchemy as sa

_lock = threading.Lock()
#: (statement, dialect name) -> Prepared, or None when the statement does not qualify
_cache: dict[tuple[int, str], tuple[sa.Executable, Prepared | None]] = {}
#: statements are built once (``functools.cache``); this bounds a careless caller
MAX_PREPARED = 256


class Prepared:
    """One ``SELECT`` compiled for one dialect."""

    __slots__ = ("binds", "defaults", "positional", "processors", "row", "sql", "types")

    def __init__(self, compiled: sa.engine.Compiled, columns: dict[str, Any], dialect: Any) -> None:
        self.sql: str = compiled.string
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

    def parameters(self, params: dict[str, Any] | None) -> Sequence[Any] | dict[str, Any]:
        values = {**self.defaults, **params} if params else dict(self.defaults)
        for name, processor in self.binds:
            values[name] = processor(values[name])
        if self.positional is not None:
            return tuple(values[name] for name in self.positional)
        return values


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
    if not isinstance(statement, sa.Select | sa.CompoundSelect):
        return None
    compiled = _with_constants_inline(statement, dialect).compile(dialect=dialect)
    if (
        compiled.post_compile_params
        or compiled.literal_execute_params
        or getattr(compiled, "escaped_bind_names", None)
        or any(bind.callable is not None for bind in compiled.binds.values())
    ):
        return None
    columns = dict(statement.selected_columns.items())
    if len(columns) != len(statement.selected_columns) or not all(
        key.isidentifier() and not key.startswith("_") and not keyword.iskeyword(key)
        for key in columns
    ):
        return None
    return Prepared(compiled, columns, dialect)


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
    platform's reads use."""

    __slots__ = ("_rows",)

    def __init__(self, rows: list[Any]) -> None:
        self._rows = rows

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
        cursor.execute(prepared.sql, parameters)
        return _rows(prepared, cursor, dialect)
    except dialect.loaded_dbapi.Error as error:
        raise _wrapped(
            error, prepared.sql, parameters, dbapi_connection, cursor, dialect
        ) from error
    finally:
        cursor.close()


def run_pipelined(
    statements: Sequence[tuple[Prepared, dict[str, Any] | None]],
    engine: sa.Engine,
    dbapi_connection: Any,
) -> list[Rows]:
    """Execute several statements in one round trip: psycopg's pipeline mode sends
    them all, then waits once for all their results (PostgreSQL only). Each is
    announced to the ``before_cursor_execute`` hooks, as :func:`run` does."""
    dialect = engine.dialect
    cursors: list[Any] = []
    sql, parameters = "", None
    try:
        with dbapi_connection.pipeline():
            for prepared, params in statements:
                sql, parameters = prepared.sql, prepared.parameters(params)
                cursor = dbapi_connection.cursor()
                cursors.append(cursor)
                engine.dispatch.before_cursor_execute(None, cursor, sql, parameters, None, False)
                cursor.execute(sql, parameters)
        # the block's end waited for every result
        return [
            _rows(prepared, cursor, dialect)
            for (prepared, _), cursor in zip(statements, cursors, strict=True)
        ]
    except dialect.loaded_dbapi.Error as error:
        raise _wrapped(error, sql, parameters, dbapi_connection, None, dialect) from error
    finally:
        for cursor in cursors:
            cursor.close()


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
