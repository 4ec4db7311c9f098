"""`make bench`: pages and rushes over HTTP against gunicorn, SQLite and PostgreSQL.

Every figure is a ratio to the baseline app (bare Flask + Jinja, no database)
under the same gunicorn settings, measured side by side: the baseline server runs
through the whole bench. For each engine both scales are seeded and served at once,
and each page is measured in four slices, alternating between them (small, large,
small, large, …), each next to a slice of the baseline; the rushes' baseline is
measured half right before the kit rush and half right after it. So a shared
machine whose speed drifts over the minutes of a run gives comparable ratios, and
the large scale's p99 is compared with the small's taken in the same minutes.
Prints one table and writes bench/results/latest.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from flask import url_for
from itsdangerous import URLSafeTimedSerializer

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import loadgen, rushes, seed  # noqa: E402
from memberplatform import create_app  # noqa: E402
from memberplatform.db import create_engine  # noqa: E402
from memberplatform.extensions import db  # noqa: E402

PG_ADMIN_URL = os.environ.get(
    "BENCH_PG_ADMIN_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
SECRET = "bench-secret-" + uuid.uuid4().hex
WORKERS = int(os.environ.get("BENCH_WORKERS", "4"))
SCALES = {"small": (1_000, 10), "large": (100_000, 10)}
#: ``--scales rush``: only the three rushes, on enough members for them (for working on them)
RUSH_ONLY = (10_000, 10)
ONLY_PAGES: set[str] = set()  # --pages
#: slices each page is measured in, alternating with the baseline and the other scale
PAGE_ROUNDS = 4
TARGETS = {
    "me_ratio": 0.25,
    "fragment_ratio": 0.5,
    "sql_max": 8,
    "p99_growth": 1.25,
    "kit_claims_ratio": 0.15,
    "export_rss_growth": 1.5,
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    process: subprocess.Popen
    url: str
    log: Path

    def logged_errors(self) -> int:
        """Tracebacks and ERROR lines the server logged (a failing panel is caught and
        logged, not answered with a 500: the table would not show it otherwise)."""
        with contextlib.suppress(OSError):
            text = self.log.read_text(errors="replace")
            return sum(1 for line in text.splitlines() if "Traceback" in line or "ERROR" in line)
        return 0

    def worker_pids(self) -> list[int]:
        path = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        try:
            return [int(p) for p in path.read_text().split()]
        except OSError:
            return []

    def peak_rss_mb(self) -> float:
        peaks = []
        for pid in self.worker_pids():
            with contextlib.suppress(OSError):
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        peaks.append(int(line.split()[1]) / 1024)
        return max(peaks or [0.0])

    def rss_mb(self) -> float:
        values = []
        for pid in self.worker_pids():
            with contextlib.suppress(OSError):
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        values.append(int(line.split()[1]) / 1024)
        return max(values or [0.0])

    def stop(self) -> int:
        """Stop the server; the number of errors it logged (its log is kept if any)."""
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
        errors = self.logged_errors()
        if not errors:
            self.log.unlink(missing_ok=True)
        return errors


def start_gunicorn(
    target: str, env_extra: dict[str, str], workers: int = WORKERS, ready: str = "/"
) -> Server:
    port = free_port()
    env = {
        **os.environ,
        **env_extra,
        "BIND": f"127.0.0.1:{port}",
        "WEB_CONCURRENCY": str(workers),
        "ACCESS_LOG": "",
        "SECRET_KEY": SECRET,
    }
    # The server's output goes to a file: a pipe nobody reads fills up and blocks it.
    log = ROOT / "bench" / "results" / f"gunicorn-{port}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(ROOT / ".venv/bin/gunicorn"), "-c", str(ROOT / "gunicorn.conf.py"), target],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=out,
        )
    url = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            urllib.request.urlopen(url + ready, timeout=1).read()
            break
        except OSError:
            time.sleep(0.1)
    else:
        process.kill()
        tail = log.read_text(errors="replace")[-2000:]
        raise RuntimeError(f"gunicorn {target} did not start: {tail}")
    time.sleep(0.5)  # let every worker come up
    return Server(process, url, log)


# --- sessions --------------------------------------------------------------------


def identifier(app) -> str:
    """Flask-Login's session identifier for our load generator (127.0.0.1, no User-Agent)."""
    from flask_login.utils import _create_identifier

    with app.test_request_context(environ_base={"REMOTE_ADDR": "127.0.0.1"}):
        return _create_identifier()


def cookie_for(app, user_id: int, token: str) -> tuple[str, str]:
    """A signed session cookie for this user and a matching CSRF form token."""
    raw_csrf = secrets.token_hex(20)
    serializer = app.session_interface.get_signing_serializer(app)
    value = serializer.dumps(
        {
            "_user_id": f"{user_id}:{token}",
            "_fresh": True,
            "_id": identifier(app),
            "_permanent": True,
            "csrf_token": raw_csrf,
            "locale": "zh_CN",
            "_issued": int(time.time()),  # as the browser holds it after login
        }
    )
    csrf = URLSafeTimedSerializer(app.secret_key, salt="wtf-csrf-token").dumps(raw_csrf)
    return f"session={value}", csrf


# --- databases -------------------------------------------------------------------


def pg_available() -> bool:
    try:
        engine = sa.create_engine(PG_ADMIN_URL)
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        engine.dispose()
        return True
    except sa.exc.OperationalError:
        return False


@contextlib.contextmanager
def database(engine_name: str, workdir: Path):
    if engine_name == "sqlite":
        path = workdir / f"bench-{uuid.uuid4().hex[:6]}.sqlite3"
        yield f"sqlite:///{path}"
        for suffix in ("", "-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                Path(str(path) + suffix).unlink()
        return
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"mp_bench_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield sa.engine.make_url(PG_ADMIN_URL).set(database=name).render_as_string(False)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def flask_cmd(url: str, *args: str) -> str:
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "SECRET_KEY": SECRET,
        "PASSWORD_HASH_METHOD": "scrypt:16384:8:1",
    }
    result = subprocess.run(
        [str(ROOT / ".venv/bin/flask"), "--app", "memberplatform", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode not in (0, 1):
        raise RuntimeError(f"flask {' '.join(args)} failed: {result.stderr[-2000:]}")
    return (result.stdout + result.stderr).strip()


# --- what is measured ------------------------------------------------------------


@dataclass
class Page:
    label: str
    endpoint: str
    who: str = "member"
    htmx: bool = False
    values: dict[str, Any] = field(default_factory=dict)


def pages(ids: dict[str, int]) -> list[Page]:
    return [
        Page("/", "home.index"),
        Page("/me", "home.me"),
        Page("/points", "points.index"),
        Page("/donations/<id>", "donations.campaign", values={"campaign_id": ids.get("campaign")}),
        Page(
            "progress fragment",
            "donations.progress",
            htmx=True,
            values={"campaign_id": ids.get("campaign")},
        ),
        Page("points badge", "points.badge", htmx=True),
        Page("notifications badge", "notifications.badge", htmx=True),
        Page("/kits", "kits.index"),
        Page("/courses", "courses.index"),
        Page("/legal", "legal.index"),
        Page("/lawyer", "legal.lawyer_queue", who="lawyer"),
        Page("/admin", "admin.index", who="admin"),
    ]


def resolve(app, page: Page) -> str | None:
    if page.endpoint not in app.view_functions:
        return None
    if any(value is None for value in page.values.values()):
        return None
    with app.test_request_context():
        try:
            return url_for(page.endpoint, **page.values)
        except Exception:  # an endpoint whose arguments changed: reported as n/a
            return None


def sql_count(app, path: str, user_id: int, token: str, htmx: bool) -> int:
    """Statements one request of ``path`` sends (after a warm-up request)."""
    client = app.test_client()
    with client.session_transaction() as sess:
        sess["_user_id"] = f"{user_id}:{token}"
        sess["_fresh"] = True
    headers = {"HX-Request": "true"} if htmx else {}
    client.get(path, headers=headers)
    statements: list[str] = []

    def listener(conn, cursor, statement, *args):
        if not statement.lstrip().upper().startswith(("BEGIN", "COMMIT", "ROLLBACK", "PRAGMA")):
            statements.append(statement)

    with app.app_context():
        engine = db.engine
    sa.event.listen(engine, "before_cursor_execute", listener)
    try:
        client.get(path, headers=headers)
    finally:
        sa.event.remove(engine, "before_cursor_execute", listener)
    return len(statements)


def demo_ids(app) -> dict[str, int]:
    """Ids of the demo objects the pages show (the seeded mask campaign, a lawyer, admin)."""
    from memberplatform.auth.models import User

    ids: dict[str, int] = {}
    with app.app_context():
        session = db.session
        for phone, key in (("13600000000", "admin"), ("13900000001", "lawyer")):
            user = session.scalar(sa.select(User).where(User.phone == phone))
            ids[key] = user.id
            ids[key + "_token"] = user.session_token
        from memberplatform.db import Base

        tables = Base.metadata.tables
        if "donation_campaigns" in tables:
            campaigns = tables["donation_campaigns"]
            ids["campaign"] = session.scalar(sa.select(sa.func.min(campaigns.c.id)))
    return ids


@dataclass
class Block:
    """One database at one scale, seeded, with its gunicorn server up."""

    engine_name: str
    scale: str
    url: str
    app: Any
    seeded: dict
    ids: dict
    first: int
    cookies: dict[str, list[str]]
    tokens: dict[str, tuple[int, str]]
    server: Server
    rows: list[dict] = field(default_factory=list)


def open_block(engine_name: str, scale: str, url: str) -> Block:
    """Migrate, seed ``scale``'s data and start the platform's gunicorn on it."""
    members, entries = SCALES.get(scale, RUSH_ONLY)
    app = create_app({"DATABASE_URL": url, "SECRET_KEY": SECRET, "RATELIMIT_ENABLED": False})
    flask_cmd(url, "db-upgrade")
    flask_cmd(url, "seed-demo", "--password", "Bench-Demo-2020")
    engine = create_engine(url)
    with app.app_context():
        from memberplatform.auth.models import User

        password_hash = db.session.scalar(
            sa.select(User.password_hash).where(User.phone == "13800000001")
        )
    seeded = seed.seed_members(engine, members, entries, password_hash)
    engine.dispose()
    ids = demo_ids(app)
    first = seeded["first_user_id"]
    member_ids = list(range(first, first + min(members, 500)))
    return Block(
        engine_name=engine_name,
        scale=scale,
        url=url,
        app=app,
        seeded=seeded,
        ids=ids,
        first=first,
        cookies={
            "member": [cookie_for(app, uid, f"bench{uid:027d}")[0] for uid in member_ids],
            "lawyer": [cookie_for(app, ids["lawyer"], ids["lawyer_token"])[0]],
            "admin": [cookie_for(app, ids["admin"], ids["admin_token"])[0]],
        },
        tokens={
            "member": (first, f"bench{first:027d}"),
            "lawyer": (ids["lawyer"], ids["lawyer_token"]),
            "admin": (ids["admin"], ids["admin_token"]),
        },
        server=start_gunicorn("wsgi:app", {"DATABASE_URL": url}, ready="/healthz"),
    )


def measure_pages(blocks: list[Block], baseline: Server | None, seconds: float) -> dict | None:
    """Every page on every block, side by side: each page is measured in
    ``PAGE_ROUNDS`` rounds, each round a slice of the baseline then the page on each
    block in turn (baseline, small, large, baseline, small, large, …), so the
    machine's drift over seconds and minutes falls on the baseline and every scale
    alike, and a burst of noise on one slice weighs a quarter of a figure, not half.
    Each row keeps the baseline measured with it (``baseline_rps``: its ratio's
    denominator). Returns all the baseline's slices as one measurement; each block's
    rows are filled in."""
    slices: list[loadgen.Result] = []
    if baseline is not None:
        loadgen.run_get(baseline.url, ["/"], seconds=0.5)  # warm-up
    for page in pages(blocks[0].ids):
        if ONLY_PAGES and page.label not in ONLY_PAGES:
            continue
        headers = {"HX-Request": "true"} if page.htmx else {}
        # each block's own ids (its campaign) in the page's URL
        paths = {
            id(block): resolve(block.app, *[p for p in pages(block.ids) if p.label == page.label])
            for block in blocks
        }
        measured: dict[int, list[loadgen.Result]] = {id(block): [] for block in blocks}
        next_to_it: list[loadgen.Result] = []
        for round_ in range(PAGE_ROUNDS):
            if baseline is not None:
                next_to_it.append(
                    loadgen.run_get(baseline.url, ["/"], seconds=seconds / 2 / PAGE_ROUNDS)
                )
            for block in blocks:
                path = paths[id(block)]
                if path is None:
                    continue
                cookies = block.cookies[page.who]
                if round_ == 0:  # warm-up
                    loadgen.run_get(
                        block.server.url, [path], cookies=cookies, headers=headers, seconds=0.5
                    )
                measured[id(block)].append(
                    loadgen.run_get(
                        block.server.url,
                        [path],
                        cookies=cookies,
                        headers=headers,
                        seconds=seconds / PAGE_ROUNDS,
                    )
                )
        slices += next_to_it
        for block in blocks:
            path = paths[id(block)]
            if path is None:
                block.rows.append({"page": page.label, "available": False})
                continue
            result = loadgen.merged(measured[id(block)])
            uid, token = block.tokens[page.who]
            row = {
                "page": page.label,
                "path": path,
                "available": True,
                "rps": round(result.rps, 1),
                "p50_ms": round(result.percentile(50), 2),
                "p99_ms": round(result.percentile(99), 2),
                "errors": result.errors,
                "statuses": result.statuses,
                "sql": sql_count(block.app, path, uid, token, page.htmx),
            }
            if next_to_it:
                row["baseline_rps"] = round(loadgen.merged(next_to_it).rps, 1)
            block.rows.append(row)
    return summary(loadgen.merged(slices)) if slices else None


def close_block(block: Block, baseline: Server | None, seconds: float, page_baseline) -> dict:
    """The block's rushes (at the large and rush-only scales), integrity check and
    export, then its result; the server is stopped."""
    app, ids, first = block.app, block.ids, block.first
    try:
        peak = block.server.peak_rss_mb()
        rush_rows = []
        rush_baseline = None
        if block.scale != "small":
            rush_ids = rushes.prepare(app, ids["admin"], ids.get("campaign"))
            pool = [(uid, f"bench{uid:027d}") for uid in range(first + 1000, first + 8000)]
            # the baseline half right before the rushes and half right after the kit
            # rush (the one with a ratio target), as one measurement
            halves = [baseline_half(baseline, seconds / 2)] if baseline is not None else []

            def after_each(label: str) -> None:
                if halves and label.startswith("1,000 kits"):
                    halves.append(baseline_half(baseline, seconds / 2))

            rush_rows = rushes.run(
                app, block.server.url, pool, cookie_for, rush_ids, after_each=after_each
            )
            rush_baseline = summary(loadgen.merged(halves)) if halves else None
    finally:
        logged_errors = block.server.stop()
    integrity = flask_cmd(block.url, "check-integrity")
    export = measure_export(app, block.url, ids) if block.scale == "large" else None
    return {
        "engine": block.engine_name,
        "scale": block.scale,
        "seeded": block.seeded,
        "pages": block.rows,
        "baseline": page_baseline if block.scale in SCALES else None,
        "rush_baseline": rush_baseline,
        "worker_peak_rss_mb": round(peak, 1),
        "server_errors_logged": logged_errors,
        "rushes": rush_rows,
        "export": export,
        "integrity": integrity.splitlines()[-1],
    }


def measure_export(app, url: str, ids: dict) -> dict | None:
    """RSS of a single worker at rest and its peak while streaming the members CSV."""
    if "admin.export_members" not in app.view_functions:
        return None
    with app.test_request_context():
        path = url_for("admin.export_members")
    server = start_gunicorn("wsgi:app", {"DATABASE_URL": url}, workers=1, ready="/healthz")
    try:
        cookie = cookie_for(app, ids["admin"], ids["admin_token"])[0]
        loadgen.run_get(server.url, ["/healthz"], seconds=0.5, processes=1, connections=1)
        rest = server.rss_mb()
        request = urllib.request.Request(server.url + path, headers={"Cookie": cookie})
        size = 0
        with urllib.request.urlopen(request, timeout=300) as response:
            while chunk := response.read(65536):
                size += len(chunk)
        peak = server.peak_rss_mb()
    finally:
        server.stop()
    return {
        "bytes": size,
        "rss_rest_mb": round(rest, 1),
        "rss_peak_mb": round(peak, 1),
        "ratio": round(peak / rest, 2) if rest else None,
    }


def measure_baseline(server: Server, seconds: float) -> dict:
    """The baseline server's req/s now (it stays up, idle, between measurements)."""
    return summary(baseline_half(server, seconds))


def baseline_half(server: Server, seconds: float) -> loadgen.Result:
    loadgen.run_get(server.url, ["/"], seconds=0.5)
    return loadgen.run_get(server.url, ["/"], seconds=seconds)


def summary(result: loadgen.Result) -> dict:
    return {
        "rps": round(result.rps, 1),
        "p50_ms": round(result.percentile(50), 2),
        "p99_ms": round(result.percentile(99), 2),
        "errors": result.errors,
    }


def base_rps(results: dict, block: dict | None = None, *, rush: bool = False) -> float:
    """The baseline req/s a block's ratios are taken against: the one measured next to
    its pages (or its rushes); the run's first one for a block that has none."""
    found = block and block.get("rush_baseline" if rush else "baseline")
    return (found or results["baseline"])["rps"] or 1


def ratio(results: dict, block: dict, row: dict) -> float:
    """A page's req/s over the baseline measured with it (the block's for older runs)."""
    return row["rps"] / (row.get("baseline_rps") or base_rps(results, block))


def report(results: dict) -> str:
    lines = [
        f"baseline (bare Flask + Jinja, {WORKERS} workers): "
        f"{results['baseline']['rps']} req/s, p99 {results['baseline']['p99_ms']} ms "
        "at the start; each page's ratio is taken against the baseline measured in "
        "slices with it (the block's line: all those slices), the kit rush's against "
        "the baseline measured half right before it and half right after it"
    ]
    header = (
        f"{'engine':10} {'scale':6} {'page':22} {'req/s':>8} {'ratio':>6} {'p50 ms':>8} "
        f"{'p99 ms':>8} {'SQL':>4} {'err':>4}"
    )
    lines += ["", header, "-" * len(header)]
    for block in results["runs"]:
        base = base_rps(results, block)
        if block.get("baseline"):
            lines.append(
                f"{block['engine']:10} {block['scale']:6} {'(baseline next to it)':22} "
                f"{base:8.1f} {1:6.2f} {block['baseline']['p50_ms']:8.2f} "
                f"{block['baseline']['p99_ms']:8.2f}"
            )
        for row in block["pages"]:
            if not row["available"]:
                lines.append(f"{block['engine']:10} {block['scale']:6} {row['page']:22} n/a")
                continue
            lines.append(
                f"{block['engine']:10} {block['scale']:6} {row['page']:22} {row['rps']:8.1f} "
                f"{ratio(results, block, row):6.2f} {row['p50_ms']:8.2f} {row['p99_ms']:8.2f} "
                f"{row['sql']:4d} {row['errors']:4d}"
            )
        lines.append(
            f"{block['engine']:10} {block['scale']:6} seeded {block['seeded']}; "
            f"worker peak RSS {block['worker_peak_rss_mb']} MB; "
            f"errors logged by the server {block.get('server_errors_logged', 0)}; "
            f"{block['integrity']}"
        )
        if block.get("rush_baseline"):
            lines.append(
                f"{block['engine']:10} rush   baseline around the kit rush  "
                f"{block['rush_baseline']['rps']:8.1f} req/s"
            )
        for rush in block.get("rushes") or []:
            lines.append(
                f"{block['engine']:10} rush   {rush['rush']:26} {rush['per_second']:8.1f}/s "
                f"p99 {rush['p99_ms']:8.1f} ms  errors {rush['errors']}  {rush['outcome']}  "
                f"statuses {rush['statuses']}"
            )
        if block.get("export"):
            e = block["export"]
            lines.append(
                f"{block['engine']:10} export members CSV, {e['bytes']} bytes: worker RSS "
                f"{e['rss_rest_mb']} MB at rest, peak {e['rss_peak_mb']} MB (x{e['ratio']})"
            )
    lines += ["", "targets:"] + [f"  {line}" for line in results.get("verdicts", [])]
    return "\n".join(lines)


def verdicts(results: dict) -> list[str]:
    out = []
    blocks = {(b["engine"], b["scale"]): b for b in results["runs"]}
    by = {
        (b["engine"], b["scale"]): {r["page"]: r for r in b["pages"] if r["available"]}
        for b in results["runs"]
    }
    for (engine, scale), rows in by.items():
        block = blocks[(engine, scale)]
        me = rows.get("/me")
        if me:
            me_ratio = ratio(results, block, me)
            ok = me_ratio >= TARGETS["me_ratio"]
            out.append(
                f"{'PASS' if ok else 'MISS'} /me ÷ baseline {me_ratio:.3f} "
                f"≥ {TARGETS['me_ratio']} ({engine}, {scale})"
            )
        for frag in ("progress fragment", "points badge"):
            if frag in rows:
                frag_ratio = ratio(results, block, rows[frag])
                ok = frag_ratio >= TARGETS["fragment_ratio"]
                out.append(
                    f"{'PASS' if ok else 'MISS'} {frag} ÷ baseline {frag_ratio:.3f} "
                    f"≥ {TARGETS['fragment_ratio']} ({engine}, {scale})"
                )
        worst = max((r["sql"] for r in rows.values()), default=0)
        out.append(
            f"{'PASS' if worst <= TARGETS['sql_max'] else 'MISS'} max SQL per page "
            f"{worst} ≤ {TARGETS['sql_max']} ({engine}, {scale})"
        )
    for block in results["runs"]:
        for rush in block.get("rushes") or []:
            rush_ratio = rush["per_second"] / base_rps(results, block, rush=True)
            ok = rush["errors"] == 0
            line = f"rush {rush['rush']} ({block['engine']}): errors {rush['errors']}"
            if rush["rush"].startswith("1,000 kits"):
                oversold = rush["outcome"].get("claims", 0) > rushes.KITS
                ok = ok and not oversold and rush_ratio >= TARGETS["kit_claims_ratio"]
                line += (
                    f", oversold {int(oversold)}, claims/s ÷ baseline {rush_ratio:.3f} "
                    f"≥ {TARGETS['kit_claims_ratio']}"
                )
            else:
                line += f", throughput ÷ baseline {rush_ratio:.3f}"
            out.append(f"{'PASS' if ok else 'MISS'} {line}")
        export = block.get("export")
        if export and export.get("ratio"):
            ok = export["ratio"] <= TARGETS["export_rss_growth"]
            out.append(
                f"{'PASS' if ok else 'MISS'} export RSS ÷ rest {export['ratio']} "
                f"≤ {TARGETS['export_rss_growth']} ({block['engine']})"
            )
    for engine in {e for e, _ in by}:
        small, large = by.get((engine, "small"), {}), by.get((engine, "large"), {})
        for page, row in large.items():
            if page in small:
                if row["sql"] != small[page]["sql"]:
                    out.append(
                        f"MISS SQL count of {page} differs by scale on {engine}: "
                        f"{small[page]['sql']} vs {row['sql']}"
                    )
                growth = row["p99_ms"] / max(small[page]["p99_ms"], 0.01)
                ok = growth <= TARGETS["p99_growth"]
                out.append(
                    f"{'PASS' if ok else 'MISS'} p99 large/small {page} {growth:.3f} "
                    f"≤ {TARGETS['p99_growth']} ({engine})"
                )
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=3.0, help="seconds per page")
    parser.add_argument("--scales", default="small,large", help="small, large, or rush")
    parser.add_argument("--pages", default="", help="only these page labels (comma-separated)")
    parser.add_argument("--engines", default="sqlite,postgresql")
    args = parser.parse_args()
    ONLY_PAGES.update(label for label in args.pages.split(",") if label)
    workdir = ROOT / "bench" / "results"
    workdir.mkdir(parents=True, exist_ok=True)
    engines = [e for e in args.engines.split(",") if e != "postgresql" or pg_available()]
    started = time.perf_counter()
    baseline = start_gunicorn("bench.baseline:app", {})
    try:
        results: dict[str, Any] = {
            "workers": WORKERS,
            "baseline": measure_baseline(baseline, args.seconds),
            "runs": [],
        }
        for engine_name in engines:
            # every scale's database and server up at once, so the pages are measured
            # side by side; on an error the servers stop and the databases go
            with contextlib.ExitStack() as stack:
                blocks = []
                for scale in args.scales.split(","):
                    url = stack.enter_context(database(engine_name, workdir))
                    blocks.append(open_block(engine_name, scale, url))
                    stack.callback(blocks[-1].server.stop)
                measured = [b for b in blocks if b.scale in SCALES]
                page_baseline = (
                    measure_pages(measured, baseline, args.seconds) if measured else None
                )
                for block in blocks:  # each block's rushes in turn, then its server stops
                    results["runs"].append(
                        close_block(block, baseline, args.seconds, page_baseline)
                    )
    finally:
        baseline.stop()
    results["verdicts"] = verdicts(results)
    results["seconds"] = round(time.perf_counter() - started, 1)
    (workdir / "latest.json").write_text(json.dumps(results, indent=2, ensure_ascii=False))
    print(report(results))
    print(f"\n(total {results['seconds']} s; JSON in bench/results/latest.json)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
