"""Alembic: upgrade on an empty database, downgrade, upgrade again, no drift from the models."""

from __future__ import annotations

import os
import uuid

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext

from memberplatform import PROJECT_DIR
from memberplatform.db import Base
from tests.conftest import PG_ADMIN_URL, unavailable


@pytest.fixture
def empty_db_url(engine_name, tmp_path):
    if engine_name == "sqlite":
        yield f"sqlite:///{tmp_path / 'migrate.sqlite3'}"
        return
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"mp_mig_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except sa.exc.OperationalError:
        unavailable("PostgreSQL is not reachable")
    yield sa.engine.make_url(PG_ADMIN_URL).set(database=name).render_as_string(False)
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def alembic_config(url: str) -> Config:
    config = Config(str(PROJECT_DIR / "alembic.ini"))
    config.set_main_option("script_location", str(PROJECT_DIR / "migrations"))
    config.set_main_option("sqlalchemy.url", url)
    config.attributes["skip_logging"] = True
    return config


def schema_diff(url: str) -> list:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            return compare_metadata(context, Base.metadata)
    finally:
        engine.dispose()


def table_names(url: str) -> set[str]:
    engine = sa.create_engine(url)
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_upgrade_downgrade_upgrade_matches_models(empty_db_url):
    config = alembic_config(empty_db_url)
    command.upgrade(config, "head")
    assert set(Base.metadata.tables) <= table_names(empty_db_url)
    assert schema_diff(empty_db_url) == []

    command.downgrade(config, "base")
    assert table_names(empty_db_url) <= {"alembic_version"}

    command.upgrade(config, "head")
    assert schema_diff(empty_db_url) == []


def test_app_never_creates_tables_itself():
    import pathlib

    package = pathlib.Path(PROJECT_DIR / "memberplatform")
    offenders = [p for p in package.rglob("*.py") if "create_all" in p.read_text()]
    assert offenders == []
