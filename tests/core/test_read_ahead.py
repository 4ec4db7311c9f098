"""``db.read_ahead``: a view's declared first reads go with the session check (one
round trip on PostgreSQL: one query of ``EXECUTE`` commands) and the view's own
``db.read`` calls are answered from those rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from flask import g

from memberplatform.auth.models import User
from memberplatform.core.registry import me_panels
from memberplatform.extensions import db
from tests.core.test_me_panels import PASSWORD, _seeded
from tests.querycount import count_queries, round_trips

NAME = sa.select(User.name).where(User.id == sa.bindparam("user_id"))
PHONE = sa.select(User.phone).where(User.id == sa.bindparam("user_id"))


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


def test_postgresql_sends_the_reads_in_one_round_trip(app, make_user):
    user, other = make_user(), make_user()
    with app.test_request_context("/"):
        engine = db.engine
        for someone in (user, other):  # the second: the statements prepared before
            with round_trips(engine) as sent:
                db.read_ahead([(NAME, {"user_id": someone.id}), (PHONE, {"user_id": someone.id})])
            assert db.read(NAME, {"user_id": someone.id}).scalar_one() == someone.name
            assert db.read(PHONE, {"user_id": someone.id}).scalar_one() == someone.phone
            if engine.dialect.name == "postgresql":
                assert len(sent) == 1 and len(sent[0]) == 2
            else:  # SQLite's reads are calls into the same process: nothing to batch
                assert [len(group) for group in sent] == [1, 1]


def test_a_batch_prepares_again_what_the_connection_forgot(app, make_user):
    """psycopg deallocates every prepared statement of a connection after a rollback
    (and a restarted server has none): the batch asks the connection which it has,
    prepares the others and runs."""
    user, other = make_user(), make_user()
    with app.test_request_context("/"):
        db.read_ahead([(NAME, {"user_id": user.id}), (PHONE, {"user_id": user.id})])
        if db.engine.dialect.name == "postgresql":  # SQLite's reads are not prepared by name
            reader = g.db_reader
            reader.execute("DEALLOCATE ALL")
        with count_queries(db.engine) as statements:
            db.read_ahead([(NAME, {"user_id": other.id}), (PHONE, {"user_id": other.id})])
        assert len(statements) == 2  # each announced once: the failed attempt ran nothing
        assert db.read(PHONE, {"user_id": other.id}).scalar_one() == other.phone
        assert db.read(NAME, {"user_id": other.id}).scalar_one() == other.name


def test_reads_ahead_keep_their_parameters_values(app, make_user):
    """On PostgreSQL the batch writes each parameter into its ``EXECUTE`` as a literal,
    quoted by psycopg: a quote, a percent sign, a backslash, a time and no parameter
    at all arrive as themselves."""
    tricky = make_user(name="O'Brien 50%% \\ %(user_id)s 张")
    later = datetime.now(UTC) + timedelta(days=1)
    by_name = sa.select(User.id).where(User.name == sa.bindparam("name"))
    before = sa.select(sa.func.count(User.id)).where(User.created_at < sa.bindparam("at"))
    everyone = sa.select(sa.func.count(User.id).label("n"))
    with app.test_request_context("/"):
        expected = db.session.scalar(sa.select(sa.func.count(User.id)))
        db.session.commit()
        reads = [(by_name, {"name": tricky.name}), (before, {"at": later}), (everyone, None)]
        with round_trips(db.engine) as sent:
            db.read_ahead(reads)
        assert db.read(by_name, {"name": tricky.name}).scalar_one() == tricky.id
        assert db.read(before, {"at": later}).scalar_one() == expected
        assert db.read(everyone).scalar_one() == expected
        assert sum(len(group) for group in sent) == 3
        if db.engine.dialect.name == "postgresql":
            assert len(sent) == 1  # the literals went in the batch


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


def _signed_in(app, path: str):
    """A seeded member's client, signed in, that has opened ``path`` once (its
    statements prepared); the member and the engine."""
    member = _seeded(app)
    client = app.test_client()
    client.post("/auth/login", data={"phone": member.phone, "password": PASSWORD})
    assert client.get(path).status_code == 200
    with app.app_context():
        return client, member, db.engine


def test_me_reads_its_panels_with_the_session_check_in_one_round_trip(app):
    client, member, engine = _signed_in(app, "/me")
    with app.app_context():
        panel_reads = sum(len(panel.reads(member.id)) for panel in me_panels)
    with round_trips(engine) as sent:
        assert client.get("/me").status_code == 200
    statements = [statement for group in sent for statement in group]
    assert len(statements) == 1 + panel_reads  # each statement once: the panels' answered
    if engine.dialect.name == "postgresql":
        assert len(sent) == 1


def db_dialect(app) -> str:
    with app.app_context():
        return db.engine.dialect.name


def test_points_reads_the_balance_and_expiring_points_with_the_session_check(app):
    """``/points`` declares its balance and this year's expiring points as first reads:
    on PostgreSQL they go with the signed-in user's statement, and only the history's
    page is a round trip of its own; its next rows (htmx) read neither."""
    client, _, engine = _signed_in(app, "/points")
    with round_trips(engine) as sent:
        page = client.get("/points")
    assert page.status_code == 200
    statements = [statement for group in sent for statement in group]
    assert len(statements) == 4  # the user, the balance, the expiring points, the history
    if engine.dialect.name == "postgresql":
        assert [len(group) for group in sent] == [3, 1]
    with count_queries(engine) as more:
        rows = client.get("/points?before=999999999", headers={"HX-Request": "true"})
    assert rows.status_code == 200 and len(more) == 2  # the user and the history's rows
