"""A page's cost per request in instructions: the same figure on every run.

    .venv/bin/python bench/instructions.py /me "points badge" --engine postgresql

This machine's speed drifts by a third within a minute, so two timings of one page
differ more than most changes do. valgrind's callgrind counts the instructions a
process runs instead, which is the same for the same code and data whatever else
the machine is doing. Seeds the small scale as ``profile_page.py`` does, then for
each page starts a process under callgrind with its instrumentation off, which
builds the app, signs the members' sessions and serves each of them once (the
per-worker caches as a running worker has them); it then switches
the instrumentation on (``callgrind_control``) and serves ``--requests`` more inside
``functools.reduce``, the one function whose calls callgrind counts
(``--toggle-collect``). The figure is the app's own work per request in process:
Flask, the extensions, the templates, psycopg's side of each statement (not the
database server's, not gunicorn's, not the kernel's). ``baseline`` is the bench's
bare Flask + Jinja page. Needs valgrind (Debian's package).
"""

from __future__ import annotations

import argparse
import functools
import gc
import itertools
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import run, seed  # noqa: E402

#: the members whose sessions a page's requests cycle through (as the bench's)
MEMBERS = 500
_COLLECTED = re.compile(r"^==\d+== Collected : (\d+)\s*$", re.MULTILINE)


def collected(valgrind_output: str) -> int:
    """The instructions callgrind counted, from its summary on standard error."""
    found = _COLLECTED.findall(valgrind_output)
    if not found:
        raise RuntimeError(f"no callgrind summary in: {valgrind_output[-2000:]}")
    return int(found[-1])


def valgrind_command(label: str, url: str, secret: str, requests: int, out: str) -> list[str]:
    """The command that serves ``requests`` of ``label`` under callgrind."""
    valgrind = shutil.which("valgrind") or "valgrind"
    return [
        valgrind,
        "--tool=callgrind",
        "--instr-atstart=no",  # building the app runs at near full speed, uncounted
        "--collect-atstart=no",
        "--toggle-collect=functools_reduce",  # only what runs inside reduce() counts
        f"--callgrind-out-file={out}",
        sys.executable,
        str(Path(__file__).resolve()),
        "--serve",
        label,
        "--url",
        url,
        "--secret",
        secret,
        "--requests",
        str(requests),
    ]


def serve(label: str, url: str, secret: str, requests: int) -> None:
    """In the process under callgrind: the app, its warm-up, then the counted requests."""
    from werkzeug.test import EnvironBuilder

    run.SECRET = secret
    if label == "baseline":
        from bench.baseline import app

        path, cookies, htmx = "/", [""], False
    else:
        from memberplatform import create_app, warm_up

        app = create_app({"DATABASE_URL": url, "SECRET_KEY": secret})
        warm_up(app)
        ids = run.demo_ids(app)
        page = {page.label: page for page in run.pages(ids)}[label]
        path, htmx = run.resolve(app, page), page.htmx
        if page.who == "member":
            first = int(os.environ["BENCH_FIRST_MEMBER"])  # set by main()
            users = [(uid, f"bench{uid:027d}") for uid in range(first, first + MEMBERS)]
        else:
            users = [(ids[page.who], ids[f"{page.who}_token"])]
        cookies = [run.cookie_for(app, *user)[0] for user in users]

    def environ(cookie: str) -> dict:
        headers = {"Cookie": cookie} if cookie else {}
        if htmx:
            headers["HX-Request"] = "true"
        env = EnvironBuilder(path=path, headers=headers).get_environ()
        env["REMOTE_ADDR"] = "127.0.0.1"
        env.pop("HTTP_USER_AGENT", None)  # as the load generator sends it
        return env

    def one(count: int, env: dict) -> int:
        def start_response(status, headers, exc_info=None):
            if not status.startswith("200"):
                raise RuntimeError(f"{label}: {status}")

        body = app.wsgi_app(env, start_response)
        b"".join(body)
        getattr(body, "close", lambda: None)()
        return count + 1

    warm = [environ(cookie) for cookie in cookies]
    counted = [environ(cookie) for cookie in itertools.islice(itertools.cycle(cookies), requests)]
    for env in warm:  # every session seen once: its cookie verified, its caches filled
        one(0, env)
    gc.collect()
    gc.freeze()  # as gunicorn.conf.py does before forking
    subprocess.run(
        [shutil.which("callgrind_control") or "callgrind_control", "--instr=on", str(os.getpid())],
        check=True,
        stdout=subprocess.DEVNULL,
        timeout=120,
    )
    functools.reduce(one, counted, 0)


def count(label: str, url: str, secret: str, requests: int) -> float:
    """Instructions per request of ``label`` (a process under callgrind)."""
    with tempfile.TemporaryDirectory(prefix="mp-instructions-") as workdir:
        command = valgrind_command(label, url, secret, requests, f"{workdir}/callgrind.out")
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=1800)
    if done.returncode != 0:
        raise RuntimeError(f"{label}: {done.stderr[-2000:]}")
    return collected(done.stderr) / requests


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("pages", nargs="*", help="page labels as in bench/run.py, or baseline")
    parser.add_argument("--engine", choices=("sqlite", "postgresql"), default="postgresql")
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--secret", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.url, args.secret, args.requests)
        return 0
    with run.database(args.engine, Path(tempfile.mkdtemp(prefix="mp-instructions-"))) as url:
        first = _seed(url)
        os.environ["BENCH_FIRST_MEMBER"] = str(first)
        for label in args.pages or ["baseline", "/me", "points badge"]:
            per_request = count(label, url, run.SECRET, args.requests)
            print(f"{label:22} {per_request:12,.0f} instructions/request", flush=True)
    return 0


def _seed(url: str) -> int:
    """Migrate, seed the demo and 1,000 bench members; the first member's id."""
    import sqlalchemy as sa

    from memberplatform import create_app
    from memberplatform.db import create_engine

    run.flask_cmd(url, "db-upgrade")
    run.flask_cmd(url, "seed-demo", "--password", "Bench-Demo-2020")
    app = create_app({"DATABASE_URL": url, "SECRET_KEY": run.SECRET})
    with app.app_context():
        from memberplatform.auth.models import User
        from memberplatform.extensions import db

        password_hash = db.session.scalar(
            sa.select(User.password_hash).where(User.phone == "13800000001")
        )
    engine = create_engine(url)
    try:
        return seed.seed_members(engine, 1_000, 10, password_hash)["first_user_id"]
    finally:
        engine.dispose()


if __name__ == "__main__":
    raise SystemExit(main())
