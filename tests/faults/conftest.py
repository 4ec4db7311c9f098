"""Fault tests: real gunicorn processes, a real PostgreSQL restart, real backups.

Marked ``faults`` (deselect locally with ``-m "not faults"``); they run in ``make test``
and in CI (CI=true: PostgreSQL must be reachable, nothing is skipped).
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa

import memberplatform.models  # noqa: F401
from tests.conftest import unavailable
from tests.faults import harness


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "faults: real crash/restart/backup tests with gunicorn subprocesses"
    )


def pytest_collection_modifyitems(items):
    for item in items:
        if "/faults/" in str(item.fspath):
            item.add_marker(pytest.mark.faults)


def require_postgresql() -> None:
    try:
        engine = harness.pg_admin()
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        engine.dispose()
    except sa.exc.OperationalError as error:
        unavailable(f"PostgreSQL is not reachable: {error.__class__.__name__}")


@pytest.fixture
def database(request, tmp_path):
    """A fresh database of the parametrized engine, with every table (create_all)."""
    engine = request.param
    if engine == "postgresql":
        require_postgresql()
        url = harness.create_pg_database()
    else:
        url = f"sqlite:///{tmp_path / 'fault.sqlite3'}"
    harness.create_schema(url)
    yield url
    if engine == "postgresql":
        harness.drop_pg_database(url)
