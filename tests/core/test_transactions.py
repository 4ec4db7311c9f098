"""How a request's transactions are opened: reads without BEGIN on PostgreSQL, the
write lock on SQLite only where a request writes, and a write where none was declared
refused loudly (on PostgreSQL it would run outside any transaction)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from memberplatform.auth.models import User
from memberplatform.db import ReadOnlyRequestError, mark_write_intent, needs_transaction
from memberplatform.extensions import db


def test_a_get_reads_without_a_transaction_on_postgresql(app, make_user):
    user = make_user()
    with app.test_request_context("/"):
        connection = db.session.connection()
        autocommit = connection.get_execution_options().get("isolation_level")
        db.session.get(User, user.id)
        driver_autocommit = getattr(connection.connection.driver_connection, "autocommit", None)
        db.session.commit()
    with app.test_request_context("/", method="POST"):
        writing = db.session.connection().get_execution_options().get("isolation_level")
        db.session.rollback()
    if app.extensions["db_engine"].dialect.name == "postgresql":
        assert autocommit == "AUTOCOMMIT" and writing is None
        assert driver_autocommit is True  # psycopg sends no BEGIN
    else:
        assert autocommit is None and writing is None


def test_a_write_in_a_read_only_request_is_refused(app, make_user):
    user = make_user()
    with app.test_request_context("/"):
        db.session.get(User, user.id).name = "改名"
        with pytest.raises(ReadOnlyRequestError, match="mark_write_intent"):
            db.session.flush()
        db.session.rollback()
    with app.test_request_context("/"):
        db.session.get(User, user.id)  # the read-only part (the session check)
        mark_write_intent()  # ends it: the write gets a transaction of its own
        db.session.get(User, user.id).name = "改名"
        db.session.commit()
    with app.app_context():
        assert db.session.get(User, user.id).name == "改名"


def test_a_reading_block_in_a_post_refuses_writes_then_allows_them(app, make_user):
    user = make_user()
    with app.test_request_context("/", method="POST"):
        with pytest.raises(ReadOnlyRequestError), db.reading():
            db.session.execute(sa.update(User).where(User.id == user.id).values(name="甲"))
        with db.reading():
            assert db.session.get(User, user.id) is not None
        db.session.execute(sa.update(User).where(User.id == user.id).values(name="乙"))
        db.session.commit()
    with app.app_context():
        assert db.session.scalar(sa.select(User.name).where(User.id == user.id)) == "乙"


def test_a_streamed_export_reads_in_a_transaction(app, make_user):
    make_user()
    with app.test_request_context("/"):
        db.session.get(User, 1)
        needs_transaction()
        options = db.session.connection().get_execution_options()
        rows = db.session.execute(
            sa.select(User.id).execution_options(yield_per=10)
        ).all()  # a server-side cursor on PostgreSQL: only inside a transaction
        db.session.commit()
    assert rows and options.get("isolation_level") is None


def test_the_connection_pool_follows_the_configuration(app_factory):
    app = app_factory(DATABASE_POOL_SIZE=3, DATABASE_MAX_OVERFLOW=2)
    engine = app.extensions["db_engine"]
    if engine.dialect.name == "postgresql":
        assert (engine.pool.size(), engine.pool._max_overflow) == (3, 2)
    else:  # SQLite's file pool is not sized by these settings
        assert not isinstance(engine.pool, sa.pool.QueuePool) or engine.pool.size() != 3
