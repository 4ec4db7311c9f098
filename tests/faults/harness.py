"""Real processes for the fault tests: gunicorn, HTTP members, throw-away databases, the CLI."""

from __future__ import annotations

import contextlib
import http.client
import http.cookiejar
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa

from memberplatform import PROJECT_DIR
from tests.conftest import PASSWORD, PG_ADMIN_URL

VENV_BIN = Path(sys.executable).parent
GUNICORN = str(VENV_BIN / "gunicorn")
FLASK = str(VENV_BIN / "flask")
TOKEN_RE = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def base_env(database_url: str, instance: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "COV_"))}
    env.update(
        DATABASE_URL=database_url,
        SECRET_KEY="fault-tests-secret",
        RATELIMIT_ENABLED="false",
        PASSWORD_HASH_METHOD="scrypt:1024:8:1",
        UPLOAD_FOLDER=str(instance / "uploads"),
        PYTHONDONTWRITEBYTECODE="1",
    )
    return env


def flask_cli(env: dict[str, str], *args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [FLASK, "--app", "memberplatform", *args],
        cwd=PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


# --- throw-away PostgreSQL databases ---------------------------------------------------------


def pg_admin() -> sa.Engine:
    return sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)


def create_pg_database(prefix: str = "mp_fault") -> str:
    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    admin = pg_admin()
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return sa.engine.make_url(PG_ADMIN_URL).set(database=name).render_as_string(False)


def drop_pg_database(url: str) -> None:
    name = sa.engine.make_url(url).database
    admin = pg_admin()
    for _ in range(30):  # the server may still be coming back from a restart
        try:
            with admin.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            break
        except sa.exc.OperationalError:
            time.sleep(1)
    admin.dispose()


def create_schema(url: str) -> None:
    import memberplatform.models  # noqa: F401
    from memberplatform.db import Base, create_engine

    engine = create_engine(url)
    Base.metadata.create_all(engine)
    engine.dispose()


def pg_is_ready(timeout: float = 60) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready = subprocess.run(
            ["pg_isready", "-h", "127.0.0.1", "-p", "5432", "-q"], check=False
        ).returncode
        if ready == 0:
            return True
        time.sleep(0.3)
    return False


def restart_postgresql() -> None:
    version = sorted(os.listdir("/etc/postgresql"))[0]
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart"],
        check=True,
        capture_output=True,
        timeout=120,
    )
    assert pg_is_ready(), "PostgreSQL did not come back"


# --- the data a rush needs ---------------------------------------------------------------------


@dataclass
class Cast:
    members: list[str] = field(default_factory=list)  # phones
    campaign_id: int = 0


def seed_rush(url: str, instance: Path, members: int, points_each: int = 10_000) -> Cast:
    """Members with points and one open campaign, made in-process through the services."""
    from memberplatform import create_app
    from memberplatform.auth.services import create_user
    from memberplatform.db import utcnow
    from memberplatform.donations import services as donations
    from memberplatform.extensions import db
    from memberplatform.points import services as points
    from tests.conftest import TEST_CONFIG

    app = create_app({**TEST_CONFIG, "DATABASE_URL": url, "UPLOAD_FOLDER": str(instance)})
    cast = Cast()
    with app.app_context():
        with db.transaction():
            staff = create_user("13700009999", "干事", password=PASSWORD, roles=("staff",))
            for i in range(members):
                phone = f"1380009{i:04d}"
                user = create_user(phone, f"会员{i}", password=PASSWORD, member_no=f"F{i:05d}")
                points.grant(
                    user, points_each, actor=staff, note="rush", idempotency_key=f"rush-{i}"
                )
                cast.members.append(phone)
            now = utcnow()
            campaign = donations.create_campaign(
                staff,
                title="口罩捐赠",
                story="",
                beneficiary_name="普仁医院",
                beneficiary_type="hospital",
                item_name="口罩",
                unit_label="只",
                points_per_unit=1,
                target_units=1_000_000,
                min_units=None,
                max_units=None,
                opens_at=now - timedelta(days=1),
                closes_at=now + timedelta(days=30),
            )
            donations.change_status(campaign.id, "open", staff)
            cast.campaign_id = campaign.id
        db.session.remove()
        db.engine.dispose()
    return cast


def counts(url: str, tables: tuple[str, ...]) -> dict[str, int]:
    from memberplatform.db import create_engine

    engine = create_engine(url)
    with engine.connect() as conn:
        result = {t: conn.execute(sa.text(f'SELECT count(*) FROM "{t}"')).scalar() for t in tables}
    engine.dispose()
    return result


# --- gunicorn --------------------------------------------------------------------------------


class Gunicorn:
    def __init__(self, env: dict[str, str], log: Path, workers: int = 2) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        self.env = {**env, "BIND": f"127.0.0.1:{self.port}", "WEB_CONCURRENCY": str(workers)}
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> Gunicorn:
        self.handle = self.log.open("ab")
        self.process = subprocess.Popen(
            [GUNICORN, "-c", "gunicorn.conf.py", "wsgi:app"],
            cwd=PROJECT_DIR,
            env=self.env,
            stdout=self.handle,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited: {self.log.read_text()[-3000:]}")
            with (
                contextlib.suppress(OSError),
                urllib.request.urlopen(self.url + "/healthz", timeout=2) as response,
            ):
                if response.status == 200 and len(self.workers()) >= 1:
                    return self
            time.sleep(0.2)
        raise RuntimeError("gunicorn did not start")

    def workers(self) -> list[int]:
        assert self.process is not None
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        try:
            return [int(pid) for pid in children.read_text().split()]
        except OSError:
            return []

    def kill_worker(self) -> int:
        pid = self.workers()[0]
        os.kill(pid, signal.SIGKILL)
        return pid

    def __exit__(self, *exc) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        self.handle.close()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


class Member:
    """One member's browser: cookies, CSRF token, plain form posts."""

    def __init__(self, base_url: str, phone: str) -> None:
        self.base = base_url
        self.phone = phone
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(self.jar), _NoRedirect()
        )
        self.token = ""

    def request(self, method: str, path: str, data: dict | None = None) -> tuple[int, str]:
        body = urllib.parse.urlencode(data).encode() if data is not None else None
        req = urllib.request.Request(self.base + path, data=body, method=method)
        try:
            with self.opener.open(req, timeout=30) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode(errors="replace")

    def login(self) -> None:
        status, page = self.request("GET", "/auth/login")
        assert status == 200, status
        self.token = TOKEN_RE.search(page).group(1)
        status, _ = self.request(
            "POST",
            "/auth/login",
            {"csrf_token": self.token, "phone": self.phone, "password": PASSWORD},
        )
        assert status == 303, status
        # login starts a fresh session (no fixation), so the form token changes too
        status, page = self.request("GET", "/auth/password")
        assert status == 200, status
        self.token = TOKEN_RE.search(page).group(1)

    def donate(self, campaign_id: int, key: str, units: int = 1) -> int:
        status, _ = self.request(
            "POST",
            f"/donations/{campaign_id}/donate",
            {
                "csrf_token": self.token,
                "units": str(units),
                "show_on_wall": "y",
                "idempotency_key": key,
            },
        )
        return status


@dataclass
class Outcome:
    ok: list[str] = field(default_factory=list)  # idempotency keys answered 303
    failed: list[tuple[str, str]] = field(default_factory=list)  # key, status or error


def rush(base_url: str, cast: Cast, *, seconds: float, during=None, threads: int = 8) -> Outcome:
    """Members donate 1 unit at a time for ``seconds``; ``during()`` runs in the middle."""
    outcome = Outcome()
    lock = threading.Lock()
    stop = threading.Event()
    members = [Member(base_url, phone) for phone in cast.members[:threads]]
    for member in members:
        member.login()

    def work(member: Member) -> None:
        while not stop.is_set():
            key = uuid.uuid4().hex
            try:
                status = member.donate(cast.campaign_id, key)
            except (OSError, http.client.HTTPException) as error:  # worker killed mid-answer
                with lock:
                    outcome.failed.append((key, type(error).__name__))
                time.sleep(0.05)
                continue
            with lock:
                if status == 303:
                    outcome.ok.append(key)
                else:
                    outcome.failed.append((key, str(status)))
            if status >= 500:
                time.sleep(0.05)

    workers = [threading.Thread(target=work, args=(m,), daemon=True) for m in members]
    for thread in workers:
        thread.start()
    time.sleep(seconds / 2)
    if during is not None:
        during()
    time.sleep(seconds / 2)
    stop.set()
    for thread in workers:
        thread.join(timeout=60)
    return outcome


def donation_keys(url: str) -> set[str]:
    from memberplatform.db import create_engine

    engine = create_engine(url)
    with engine.connect() as conn:
        keys = {
            row[0]
            for row in conn.execute(sa.text("SELECT idempotency_key FROM donations")).fetchall()
        }
    engine.dispose()
    return keys
