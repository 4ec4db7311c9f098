"""``db.read_ahead``: a view's declared first reads go with the session check (one
round trip on PostgreSQL, psycopg's pipeline mode) and the view's own ``db.read``
calls are answered from those rows."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from memberplatform.auth.models import User
from memberplatform.core.registry import me_panels
from memberplatform.extensions import db
from tests.core.test_me_panels import PASSWORD, _seeded
from tests.querycount import count_queries

NAME = sa.select(User.name).where(User.id == sa.bindparam("user_id"))
PHONE = sa.select(User.phone).where(User.id == sa.bindparam("user_id"))


@pytest.fixture
def pipelined(app):
    """(statement, whether it was sent in a pipeline) for every statement sent."""
    with app.app_context():
        engine = db.engine
    sent: list[tuple[str, bool]] = []

    def listener(conn, cursor, statement, parameters, context, executemany):
        status = getattr(getattr(cursor.connection, "info", None), "pipeline_status", 0)
        sent.append((statement, bool(status)))

    sa.event.listen(engine, "before_cursor_execute", listener)
    yield sent
    sa.event.remove(engine, "before_cursor_execute", listener)


def test_reads_made_ahead_are_answered_without_a_statement(app, make_user):
    user, other = make_user(), make_user()
    ahead = [(NAME, {"user_id": user.id}), (PHONE, {"user_id": user.id})]
    with app.test_request_context("/"):
        engine = db.engine
        with count_queries(engine) as before:
            db.read_ahead(ahead)
        assert len(before) == 2
        with count_queries(engine) as answered:
            assert db.read(PHONE, {"user_id": user.id}).scalar_one() == user.phone
            assert db.read(NAME, {"user_id": user.id}).scalar_one() == user.name
        assert answered == []  # both from what was read ahead
        with count_queries(engine) as again:
            # another member's, and the same read a second time: read as usual
            assert db.read(NAME, {"user_id": other.id}).scalar_one() == other.name
            assert db.read(NAME, {"user_id": user.id}).scalar_one() == user.name
        assert len(again) == 2
    with app.test_request_context("/"), count_queries(engine) as next_request:
        assert db.read(PHONE, {"user_id": user.id}).scalar_one() == user.phone
    assert len(next_request) == 1  # the rows went with their request


def test_postgresql_sends_the_reads_in_one_pipeline(app, make_user, pipelined):
    user = make_user()
    pipelined.clear()
    with app.test_request_context("/"):
        db.read_ahead([(NAME, {"user_id": user.id}), (PHONE, {"user_id": user.id})])
        assert db.read(NAME, {"user_id": user.id}).scalar_one() == user.name
    if db_dialect(app) == "postgresql":
        assert [in_pipeline for _, in_pipeline in pipelined] == [True, True]
    else:  # SQLite's reads are calls into the same process: nothing to batch
        assert [in_pipeline for _, in_pipeline in pipelined] == [False, False]


def test_a_write_makes_the_reads_ahead_stale(app, make_user):
    user = make_user()
    with app.test_request_context("/", method="POST"):
        db.read_ahead([(NAME, {"user_id": user.id})])
        db.session.get(User, user.id).name = "改过的名字"  # read() flushes it
        assert db.read(NAME, {"user_id": user.id}).scalar_one() == "改过的名字"
        db.session.rollback()


def test_a_failing_read_ahead_raises_as_sqlalchemy_does_and_the_connection_works(app, make_user):
    user = make_user()
    broken = sa.select((sa.literal(1) / sa.bindparam("zero", type_=sa.Integer)).label("x"))
    with app.test_request_context("/"):
        if db_dialect(app) == "postgresql":  # SQLite divides by zero into NULL
            with pytest.raises(sa.exc.DBAPIError):
                db.read_ahead([(NAME, {"user_id": user.id}), (broken, {"zero": 0})])
        assert db.read(NAME, {"user_id": user.id}).scalar_one() == user.name


def test_every_me_panel_declares_the_reads_it_makes(app):
    member = _seeded(app)
    with app.test_request_context("/"):
        engine = db.engine
        user = db.session.get(User, member.id)
        assert user.roles is not None  # loaded now, as a signed-in user has them
        db.session.commit()
        for panel in me_panels:
            assert panel.reads is not None, panel.name
            db.read_ahead(panel.reads(user.id))
            with count_queries(engine) as statements:
                panel.context(user)
            assert statements == [], panel.name


def test_me_reads_its_panels_with_the_session_check_in_one_round_trip(app, pipelined):
    member = _seeded(app)
    client = app.test_client()
    client.post("/auth/login", data={"phone": member.phone, "password": PASSWORD})
    pipelined.clear()
    assert client.get("/me").status_code == 200
    with app.app_context():
        panel_reads = sum(len(panel.reads(member.id)) for panel in me_panels)
    sent = [in_pipeline for _, in_pipeline in pipelined]
    assert len(sent) == 1 + panel_reads  # each statement once: the panels' answered
    if db_dialect(app) == "postgresql":
        assert all(sent)


def db_dialect(app) -> str:
    with app.app_context():
        return db.engine.dialect.name
