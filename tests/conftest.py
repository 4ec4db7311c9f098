"""Shared fixtures: an app per database engine, clients, users, htmx headers.

Every test that uses ``app`` runs on SQLite *and* PostgreSQL (set
``TEST_ENGINES=sqlite`` locally to run one). PostgreSQL tests use a
throw-away database created for the run and dropped after it. With ``CI``
set, an unreachable PostgreSQL or any skipped test fails the run.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

import memberplatform.models  # noqa: F401  (every table on the metadata before create_all)
from memberplatform import create_app
from memberplatform.db import Base
from memberplatform.extensions import db

IN_CI = bool(os.environ.get("CI"))
PG_ADMIN_URL = os.environ.get(
    "TEST_PG_ADMIN_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
ENGINES = [e for e in os.environ.get("TEST_ENGINES", "sqlite,postgresql").split(",") if e]
if IN_CI:
    ENGINES = ["sqlite", "postgresql"]

PASSWORD = "Correct-Horse-42"
TEST_CONFIG: dict[str, Any] = {
    "TESTING": True,
    "SECRET_KEY": "test-secret-key",
    "WTF_CSRF_ENABLED": False,
    "PASSWORD_HASH_METHOD": "scrypt:1024:8:1",  # fast in tests; production: N=2^17
    "RATELIMIT_ENABLED": False,
    "FIGURES_CACHE_SECONDS": 0,  # figures fresh after every change (one test turns it on)
    "PROGRESS_CACHE_SECONDS": 0,
}


def unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"{reason} (CI must run every test)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database with every table, dropped at the end of the run."""
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT", pool_pre_ping=True)
    try:
        with admin.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except sa.exc.OperationalError as error:
        admin.dispose()
        unavailable(f"PostgreSQL is not reachable: {error.__class__.__name__}")
    name = f"mp_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sa.engine.make_url(PG_ADMIN_URL).set(database=name).render_as_string(False)
    engine = sa.create_engine(url)
    Base.metadata.create_all(engine)
    engine.dispose()
    yield url
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "engine_name" in metafunc.fixturenames:
        metafunc.parametrize("engine_name", ENGINES, scope="function")


@pytest.fixture
def db_url(request: pytest.FixtureRequest, engine_name: str, tmp_path) -> str:
    if engine_name == "postgresql":
        return request.getfixturevalue("pg_url")
    return f"sqlite:///{tmp_path / 'test.sqlite3'}"


def _truncate_all() -> None:
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with db.engine.begin() as conn:
        conn.execute(sa.text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))


@pytest.fixture
def app_factory(db_url: str, engine_name: str, tmp_path):
    """Build apps on this test's database (extra config per call)."""
    made = []

    def make(**config: Any):
        app = create_app(
            {
                **TEST_CONFIG,
                "DATABASE_URL": db_url,
                "UPLOAD_FOLDER": str(tmp_path / "uploads"),
                **config,
            }
        )
        with app.app_context():
            if engine_name == "sqlite" and not made:
                Base.metadata.create_all(db.engine)
        made.append(app)
        return app

    yield make
    for app in made:
        with app.app_context():
            db.session.remove()
    if made:
        with made[0].app_context():
            if engine_name == "postgresql":
                _truncate_all()
    for app in made:
        with app.app_context():
            db.engine.dispose()


@pytest.fixture
def app(app_factory):
    return app_factory()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def ctx(app):
    """An application context with the session ready, for service tests."""
    with app.app_context():
        yield db.session


@pytest.fixture
def make_user(app):
    """Create users directly through the account service (committed)."""
    from memberplatform.auth.services import create_user

    counter = iter(range(1, 100_000))

    def make(roles=("member",), password: str | None = PASSWORD, **fields: Any):
        n = next(counter)
        fields.setdefault("phone", f"139{n:08d}")
        fields.setdefault("name", f"测试用户{n}")
        with app.app_context():
            user = create_user(roles=roles, password=password, **fields)
            db.session.commit()
            db.session.expunge(user)
            return user

    return make


class Auth:
    def __init__(self, client) -> None:
        self.client = client

    def login(self, user_or_phone, password: str = PASSWORD, **extra):
        phone = getattr(user_or_phone, "phone", user_or_phone)
        return self.client.post("/auth/login", data={"phone": phone, "password": password, **extra})

    def logout(self):
        return self.client.post("/auth/logout")


@pytest.fixture
def auth(client) -> Auth:
    return Auth(client)


HX = {"HX-Request": "true"}


@pytest.fixture
def hx() -> dict[str, str]:
    return dict(HX)


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """In CI a skipped test is a failure: nothing may silently not run."""
    if not IN_CI:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter else []
    if skipped and session.exitstatus == 0:
        reporter.write_line(f"CI: {len(skipped)} test(s) were skipped; failing the run.", red=True)
        session.exitstatus = 1
