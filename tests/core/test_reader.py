"""A thread keeps its connection for reads outside a transaction from request to
request (db._reader): no pool checkout, no autocommit switched on and off per
request. A connection the database has dropped is replaced, as the pool would."""

from __future__ import annotations

import sqlalchemy as sa
from flask import g

from memberplatform import db as db_module
from memberplatform.auth.models import User
from memberplatform.extensions import db

NAME = sa.select(User.name).where(User.id == sa.bindparam("user_id"))


def _read_name(app, user) -> object:
    """Read the user's name in a request of its own; the connection it used."""
    with app.test_request_context("/"):
        assert db.read(NAME, {"user_id": user.id}).scalar_one() == user.name
        return g.db_reader


def test_a_thread_reads_on_the_same_connection_from_request_to_request(app, make_user):
    user = make_user()
    first = _read_name(app, user)
    assert _read_name(app, user) is first
    if first.__class__.__module__.startswith("psycopg"):
        assert first.autocommit  # kept in autocommit: no BEGIN/COMMIT, no switching back


def test_another_app_gets_its_own_reader(app_factory, make_user):
    one, two = app_factory(), app_factory()
    user = make_user()
    mine = _read_name(one, user)
    theirs = _read_name(two, user)
    assert theirs is not mine
    assert _read_name(two, user) is theirs


def test_a_reader_the_database_dropped_is_replaced(app, make_user, monkeypatch, engine_name):
    user = make_user()
    first = _read_name(app, user)
    if engine_name == "postgresql":  # SQLite's connections are files: nothing to drop
        with app.app_context(), db.engine.connect() as other:
            other.execute(
                sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": first.info.backend_pid}
            )
    monkeypatch.setattr(db_module, "PING_AFTER_IDLE_SECONDS", 0.0)  # ping before each use
    second = _read_name(app, user)
    if engine_name == "postgresql":
        assert second is not first and first.closed
    else:
        assert second is first
