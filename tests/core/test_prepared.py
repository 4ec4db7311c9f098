"""The page statements that run on the driver's cursor (``memberplatform.prepared``)
return what SQLAlchemy returns for them, are seen by the engine's statement hooks,
and a read-only request that needs nothing else makes no session at all."""

from __future__ import annotations

from datetime import date, datetime

import pytest
import sqlalchemy as sa

from memberplatform import prepared
from memberplatform.auth.models import User
from memberplatform.db import ReadOnlyRequestError, utcnow, wrote
from memberplatform.extensions import db
from memberplatform.notifications.models import Notification
from tests.conftest import PASSWORD as USER_PASSWORD
from tests.core.test_me_panels import PASSWORD, _seeded
from tests.querycount import count_queries


def _page_reads(app, monkeypatch, member, paths):
    """Every (statement, params) the pages read through db.read."""
    calls = []
    read = db.read

    def recording(statement, params=None):
        calls.append((statement, params))
        return read(statement, params)

    monkeypatch.setattr(db, "read", recording)
    client = app.test_client()
    client.post("/auth/login", data={"phone": member.phone, "password": PASSWORD})
    for path in paths:
        headers = {"HX-Request": "true"} if "badge" in path else {}
        assert client.get(path, headers=headers).status_code == 200
    monkeypatch.setattr(db, "read", read)
    return calls


def test_page_statements_return_what_sqlalchemy_returns(app, monkeypatch):
    member = _seeded(app)
    calls = _page_reads(app, monkeypatch, member, ["/me", "/points/badge", "/"])
    assert len({id(statement) for statement, _ in calls}) >= 7  # identity and six panels
    values = []
    with app.test_request_context("/"):
        engine = db.engine
        for statement, params in calls:
            plan = prepared.prepare(statement, engine.dialect)
            assert plan is not None, statement  # every page statement qualifies
            with engine.connect() as connection:
                expected = [tuple(row) for row in connection.execute(statement, params)]
                mine = prepared.run(
                    plan, engine, connection.connection.driver_connection, params, connection
                )
            assert [tuple(row) for row in mine] == expected
            for row in mine:
                values.extend(row)
                assert row._mapping == dict(zip(plan.row._fields, row, strict=True))
    # the converters ran: SQLite hands back strings for these, and UTC columns are aware
    moments = [value for value in values if isinstance(value, datetime)]
    assert moments and all(value.tzinfo is not None for value in moments)
    assert any(type(value) is date for value in values)


def test_a_statement_sqlalchemy_must_render_per_execution_runs_through_it(app, make_user):
    users = [make_user(), make_user()]
    ids = sa.bindparam("ids", expanding=True)
    statement = sa.select(User.id, User.name).where(User.id.in_(ids)).order_by(User.id)
    with app.test_request_context("/"):
        assert prepared.prepare(statement, db.engine.dialect) is None
        rows = db.read(statement, {"ids": [user.id for user in users]}).all()
    assert [row.id for row in rows] == [user.id for user in users]


def test_one_and_scalar_say_what_sqlalchemy_says(app, make_user):
    user, _other = make_user(), make_user()
    name = sa.select(User.name).where(User.id == sa.bindparam("user_id"))
    with app.test_request_context("/"):
        assert db.read(name, {"user_id": user.id}).scalar_one() == user.name
        assert db.read(name, {"user_id": -1}).scalar() is None
        with pytest.raises(sa.exc.NoResultFound):
            db.read(name, {"user_id": -1}).one()
        with pytest.raises(sa.exc.MultipleResultsFound):
            db.read(sa.select(User.id), {}).one_or_none()


def test_a_fragment_that_reads_only_the_user_opens_no_session(app, make_user):
    user = make_user()
    sessions = []

    @app.after_request
    def note(response):  # runs before the platform's commit
        sessions.append(db.session.registry.has())
        return response

    client = app.test_client()
    login = client.post("/auth/login", data={"phone": user.phone, "password": USER_PASSWORD})
    assert login.status_code in (302, 303)
    with app.app_context():
        engine = db.engine
    with count_queries(engine) as statements:
        response = client.get("/points/badge", headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert len(statements) == 1  # the statement hooks still see it
    assert sessions[-1] is False
    # the connection went back to the pool as the engine hands them out
    connection = engine.raw_connection()
    try:
        assert getattr(connection.driver_connection, "autocommit", False) is False
    finally:
        connection.close()


def test_reads_in_a_writing_request_see_its_own_changes(app, make_user):
    user = make_user()
    name = sa.select(User.name).where(User.id == sa.bindparam("user_id"))
    with app.test_request_context("/", method="POST"):
        db.session.get(User, user.id).name = "新名字"  # pending: read() flushes it first
        assert db.read(name, {"user_id": user.id}).scalar_one() == "新名字"
        db.session.rollback()
    with app.test_request_context("/"):
        assert db.read(name, {"user_id": user.id}).scalar_one() == user.name


def test_a_statements_constants_are_written_into_its_sql(app, make_user):
    """Only the caller's named parameters travel as parameters: PostgreSQL's generic
    plan for a prepared statement then knows the constants (a rare status) and is
    used, instead of planning the statement again on every execution."""
    user = make_user()
    statement = (
        sa.select(User.id, User.name)
        .where(User.status == "active", User.id == sa.bindparam("user_id"))
        .limit(3)
    )
    with app.test_request_context("/"):
        plan = prepared.prepare(statement, db.engine.dialect)
        assert plan is not None
        assert "'active'" in plan.sql and "LIMIT 3" in plan.sql
        assert "user_id" in plan.defaults
        assert "active" not in plan.defaults.values() and 3 not in plan.defaults.values()
        assert db.read(statement, {"user_id": user.id}).one().name == user.name
        # a constant psycopg would read as a placeholder stays a parameter, intact
        share = sa.select(sa.func.length(sa.literal("50%'s share")).label("n")).where(
            User.id == sa.bindparam("user_id")
        )
        assert db.read(share, {"user_id": user.id}).scalar_one() == len("50%'s share")


def _rename() -> sa.Update:
    table = User.__table__
    return (
        sa.update(table)
        .where(table.c.id == sa.bindparam("user_id"), table.c.status == "active")
        .values(name=sa.bindparam("new_name"))
        .returning(table.c.id, table.c.name)
    )


def test_a_write_runs_on_the_driver_in_the_sessions_transaction(app, make_user):
    """``db.write``: compiled once, counted as a write, in the request's transaction
    (a rollback undoes it), its RETURNING rows and its row count as SQLAlchemy's."""
    user, other = make_user(), make_user()
    statement = _rename()
    with app.test_request_context("/", method="POST"):
        engine = db.engine
        assert prepared.prepare(statement, engine.dialect) is not None
        db.session.get(User, other.id).name = "待写入"  # pending: flushed before the write
        with count_queries(engine) as statements:
            renamed = db.write(statement, {"user_id": user.id, "new_name": "新名字"})
        assert isinstance(renamed, prepared.Rows)
        assert [tuple(row) for row in renamed] == [(user.id, "新名字")]
        assert renamed.rowcount == 1 and wrote()
        assert len(statements) == 2 and "RETURNING" not in statements[0]  # the flush first
        assert statements[1].lstrip().upper().startswith("UPDATE") and "RETURNING" in statements[1]
        missed = db.write(statement, {"user_id": -1, "new_name": "无人"})
        assert missed.all() == [] and missed.rowcount == 0
        names = db.session.execute(
            sa.select(User.id, User.name).where(User.id.in_([user.id, other.id]))
        ).all()
        assert dict(names) == {user.id: "新名字", other.id: "待写入"}
        db.session.rollback()
    with app.app_context():
        assert db.session.get(User, user.id).name == user.name  # rolled back with it


def test_a_write_in_a_read_only_request_is_refused_on_the_driver_too(app, make_user):
    user = make_user()
    with app.test_request_context("/"), pytest.raises(ReadOnlyRequestError):
        db.write(_rename(), {"user_id": user.id, "new_name": "改名"})
    with app.app_context():
        assert db.session.get(User, user.id).name == user.name


def test_a_write_sqlalchemy_must_complete_runs_through_it(app, make_user):
    """A column default SQLAlchemy computes (created_at), the primary key it fetches
    itself (an INSERT without RETURNING on PostgreSQL), or an ORM statement keeps a
    write on SQLAlchemy's path: the row still gets its default."""
    user = make_user()
    table = Notification.__table__
    bare = sa.insert(table).values(user_id=sa.bindparam("user_id"), kind="test.bare")
    with app.test_request_context("/", method="POST"):
        dialect = db.engine.dialect
        assert prepared.prepare(bare, dialect) is None
        assert prepared.prepare(sa.update(User).values(name="x"), dialect) is None
        db.write(bare.returning(table.c.id), {"user_id": user.id})
        complete = bare.values(
            params=sa.bindparam("params", type_=table.c.params.type),
            created_at=sa.bindparam("at", type_=table.c.created_at.type),
        ).returning(table.c.id)
        assert prepared.prepare(complete, dialect) is not None
        written = db.write(complete, {"user_id": user.id, "params": {"n": 1}, "at": utcnow()})
        assert written.rowcount == 1 and isinstance(written.scalar_one(), int)
        db.session.commit()
    with app.app_context():
        made = db.session.scalars(
            sa.select(Notification).where(Notification.kind == "test.bare")
        ).all()
        assert len(made) == 2 and all(n.created_at is not None for n in made)
        assert sorted(n.params == {"n": 1} for n in made) == [False, True]


def test_a_statement_planned_per_execution_is_never_prepared_on_the_server(app, make_user):
    """``plan_per_execution``: psycopg prepares a statement on the server after a few
    runs, and PostgreSQL may then use one generic plan for every value; a statement over
    skewed data (the donor wall) is sent unprepared, so it is planned with its values."""
    user = make_user()
    planned = (
        sa.select(User.id.label("planned_id"))
        .where(User.id == sa.bindparam("user_id"))
        .execution_options(plan_per_execution=True)
    )
    generic = sa.select(User.name.label("generic_name")).where(User.id == sa.bindparam("user_id"))
    with app.test_request_context("/", method="POST"):
        dialect = db.engine.dialect
        for _ in range(8):
            assert db.read(planned, {"user_id": user.id}).scalar_one() == user.id
            assert db.read(generic, {"user_id": user.id}).scalar_one() == user.name
        if dialect.name == "postgresql":
            on_server = " ".join(
                db.session.execute(sa.text("SELECT statement FROM pg_prepared_statements"))
                .scalars()
                .all()
            )
            assert "generic_name" in on_server and "planned_id" not in on_server
        else:  # SQLite plans every statement with its values
            assert prepared.prepare(planned, dialect).driver_options == {}
        db.session.rollback()
