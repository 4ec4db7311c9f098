"""Profile one page in-process: CPU time per request against the baseline app.

    .venv/bin/python bench/profile_page.py /me "points badge" --profile

Seeds a small SQLite database (demo data + 1,000 bench members), then calls the
WSGI application directly (no gunicorn, no sockets) so the figure is the app's
own cost per request. ``--profile`` prints a pyinstrument tree when pyinstrument
is installed (``pip install pyinstrument``), else cProfile's top functions.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import itertools
import os
import pstats
import runpy
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

from werkzeug.test import EnvironBuilder

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import run, seed  # noqa: E402
from bench.baseline import app as baseline_app  # noqa: E402
from memberplatform import create_app  # noqa: E402
from memberplatform.db import create_engine  # noqa: E402


class Timing(NamedTuple):
    wall_us: float  #: µs per request, wall clock, in the best round
    cpu_us: float  #: this process's CPU µs per request in that round (no database work)
    requests: int  #: requests over all rounds (the warm-up's not counted)


def per_request_us(wsgi, environ_factory, seconds: float) -> Timing:
    """The app's cost per request, the best of short rounds."""

    def start_response(status, headers, exc_info=None):
        return None

    for _ in range(20):  # warm-up (template compilation, statement caches)
        b"".join(wsgi(environ_factory(), start_response))
    best = Timing(float("inf"), 0.0, 0)
    requests = 0
    rounds = max(5, round(seconds / 0.2))
    for _ in range(rounds):  # the best round: a shared machine only ever adds time
        count = 0
        started, cpu = time.perf_counter(), time.process_time()
        deadline = started + seconds / rounds
        while time.perf_counter() < deadline:
            body = wsgi(environ_factory(), start_response)
            b"".join(body)
            with contextlib.suppress(AttributeError):
                body.close()
            count += 1
        requests += count
        wall = (time.perf_counter() - started) / count * 1e6
        if wall < best.wall_us:
            best = Timing(wall, (time.process_time() - cpu) / count * 1e6, 0)
    return best._replace(requests=requests)


def server_cpu(url: str) -> float:
    """CPU seconds PostgreSQL's backends for ``url``'s database have used (0 on SQLite):
    what a request costs the database server, which shares the machine's cores."""
    if not url.startswith("postgresql"):
        return 0.0
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            pids = conn.scalars(
                sa.text(
                    "SELECT pid FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            ).all()
    finally:
        engine.dispose()
    ticks = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("pages", nargs="*", help="page labels as in bench/run.py (default: all)")
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument(
        "--members",
        type=int,
        default=500,
        help="members' sessions the member pages cycle through (the bench uses 500)",
    )
    parser.add_argument("--profile", action="store_true")
    parser.add_argument(
        "--claims", action="store_true", help="the kit rush's two requests: a winner, a sold-out"
    )
    parser.add_argument("--winner", action="store_true", help="with --profile: the winner's")
    parser.add_argument(
        "--donations", action="store_true", help="the donation rush's request: one unit each"
    )
    parser.add_argument("--engine", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument(
        "--gunicorn-gc",
        action="store_true",
        help="freeze the garbage collector as gunicorn.conf.py does before forking",
    )
    args = parser.parse_args()
    with run.database(args.engine, Path(tempfile.mkdtemp(prefix="mp-profile-"))) as url:
        return measure(args, url)


def measure(args: argparse.Namespace, url: str) -> int:
    run.flask_cmd(url, "db-upgrade")
    run.flask_cmd(url, "seed-demo", "--password", "Bench-Demo-2020")
    app = create_app({"DATABASE_URL": url, "SECRET_KEY": run.SECRET})
    engine = create_engine(url)
    with app.app_context():
        import sqlalchemy as sa

        from memberplatform.auth.models import User
        from memberplatform.extensions import db

        password_hash = db.session.scalar(
            sa.select(User.password_hash).where(User.phone == "13800000001")
        )
    seeded = seed.seed_members(engine, 1_000, 10, password_hash)
    engine.dispose()
    ids = run.demo_ids(app)
    first = seeded["first_user_id"]
    if args.gunicorn_gc:
        from memberplatform import warm_up

        warm_up(app)
        conf = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
        conf["pre_fork"](None, None)
    who = {
        "member": (first, f"bench{first:027d}"),
        "lawyer": (ids["lawyer"], ids["lawyer_token"]),
        "admin": (ids["admin"], ids["admin_token"]),
    }

    def baseline_environ():
        return EnvironBuilder(path="/").get_environ()

    base = per_request_us(baseline_app.wsgi_app, baseline_environ, args.seconds).wall_us
    print(f"{'baseline':22} {base:8.0f} µs/request")
    if args.claims:
        return claims(app, ids, seeded, base, args.profile, args.winner)
    if args.donations:
        return donations(app, ids, seeded, base, args.profile)
    for page in run.pages(ids):
        if args.pages and page.label not in args.pages:
            continue
        path = run.resolve(app, page)
        if path is None:
            continue
        if page.who == "member":
            members = range(first, first + max(1, args.members))
            cookies = [run.cookie_for(app, uid, f"bench{uid:027d}")[0] for uid in members]
        else:
            cookies = [run.cookie_for(app, *who[page.who])[0]]
        cycle = itertools.cycle(cookies)
        extra = {"HX-Request": "true"} if page.htmx else {}

        def environ(path=path, extra=extra, cycle=cycle):
            headers = {"Cookie": next(cycle), **extra}
            env = EnvironBuilder(path=path, headers=headers).get_environ()
            env["REMOTE_ADDR"] = "127.0.0.1"
            env.pop("HTTP_USER_AGENT", None)  # as the load generator sends it
            return env

        server_before = server_cpu(url)
        timing = per_request_us(app.wsgi_app, environ, args.seconds)
        cost = timing.wall_us
        server_us = (server_cpu(url) - server_before) / timing.requests * 1e6
        sql = run.sql_count(app, path, *who[page.who], page.htmx)
        ratio = cost / base
        print(
            f"{page.label:22} {cost:8.0f} µs/request  ×{ratio:5.2f} of the baseline, {sql} SQL"
            f"  ({timing.cpu_us:.0f} µs of this process's CPU"
            + (f", {server_us:.0f} µs of PostgreSQL's)" if url.startswith("postgresql") else ")")
        )
        if args.profile:
            profile(app.wsgi_app, environ)
    return 0


def claims(app, ids: dict, seeded: dict, base: float, with_profile: bool, winner_too=False) -> int:
    """A winner's and a sold-out member's kit claim (POST over htmx, as in the rush).

    Each winner is a new member (one claim each); the kit has stock for all of
    them, then runs out, and the same members post again as losers."""
    from urllib.parse import urlencode

    from bench import rushes

    rush = rushes.prepare(app, ids["admin"], ids.get("campaign"))
    first = seeded["first_user_id"]
    members = iter(range(first, first + 850))
    posts: list[tuple[str, str]] = []

    def environ_for(user_id: int):
        cookie, csrf = run.cookie_for(app, user_id, f"bench{user_id:027d}")
        body = urlencode(
            {"point": str(rush["point"]), "mode": "pickup", "request_key": "", "csrf_token": csrf}
        )
        posts.append((cookie, body))
        return post_environ(cookie, body)

    def post_environ(cookie: str, body: str):
        return _post_environ(rush["kit_path"], cookie, body)

    def start_response(status, headers, exc_info=None):
        return None

    def timed(make_environ, count: int) -> tuple[float, float]:
        """µs per request: wall clock, and this process's CPU (without the database's
        waits: the steadier figure on a shared machine)."""
        environs = [make_environ() for _ in range(count)]
        started, cpu = time.perf_counter(), time.process_time()
        for environ in environs:
            b"".join(app.wsgi_app(environ, start_response))
        return (
            (time.perf_counter() - started) / count * 1e6,
            (time.process_time() - cpu) / count * 1e6,
        )

    if with_profile and winner_too:
        profile(app.wsgi_app, lambda: environ_for(next(members)), 250)
    winner, cpu = timed(lambda: environ_for(next(members)), 300)
    print(
        f"{'kit claim (winner)':22} {winner:8.0f} µs/request  ×{winner / base:5.2f}, "
        f"CPU {cpu:.0f} µs"
    )
    with app.app_context():
        import sqlalchemy as sa

        from memberplatform.extensions import db
        from memberplatform.kits.models import KitStock

        db.session.execute(  # the rest of the shelf goes: sold out
            sa.update(KitStock).values(received=KitStock.received - KitStock.available, available=0)
        )
        db.session.commit()
    del posts[:]  # the next 300 members never claimed: they meet an empty shelf
    loser, cpu = timed(lambda: environ_for(next(members)), 300)
    print(
        f"{'kit claim (sold out)':22} {loser:8.0f} µs/request  ×{loser / base:5.2f}, "
        f"CPU {cpu:.0f} µs"
    )
    if with_profile and not winner_too:
        losers = iter(posts)
        profile(app.wsgi_app, lambda: post_environ(*next(losers)), 250)
    return 0


def _post_environ(path: str, cookie: str, body: str) -> dict:
    env = EnvironBuilder(
        path=path,
        method="POST",
        data=body,
        content_type="application/x-www-form-urlencoded",
        headers={"Cookie": cookie, "HX-Request": "true"},
    ).get_environ()
    env["REMOTE_ADDR"] = "127.0.0.1"
    env.pop("HTTP_USER_AGENT", None)
    return env


def donations(app, ids: dict, seeded: dict, base: float, with_profile: bool) -> int:
    """A donation of the 3,382-donor rush (one unit, each by another member, over htmx)."""
    from urllib.parse import urlencode

    from bench import rushes

    path = rushes.prepare(app, ids["admin"], ids.get("campaign"))["donate_path"]
    members = iter(range(seeded["first_user_id"], seeded["first_user_id"] + 900))

    def environ():
        user_id = next(members)
        cookie, csrf = run.cookie_for(app, user_id, f"bench{user_id:027d}")
        fields = {"units": "1", "show_on_wall": "y", "idempotency_key": f"profile-{user_id}"}
        return _post_environ(path, cookie, urlencode({**fields, "csrf_token": csrf}))

    def start_response(status, headers, exc_info=None):
        assert status.startswith("200"), status

    environs = [environ() for _ in range(300)]
    started, cpu = time.perf_counter(), time.process_time()
    for env in environs:
        b"".join(app.wsgi_app(env, start_response))
    wall = (time.perf_counter() - started) / len(environs) * 1e6
    cpu = (time.process_time() - cpu) / len(environs) * 1e6
    print(f"{'donation':22} {wall:8.0f} µs/request  ×{wall / base:5.2f}, CPU {cpu:.0f} µs")
    if with_profile:
        profile(app.wsgi_app, environ, 250)
    return 0


def profile(wsgi, environ_factory, count: int = 300) -> None:
    def start_response(status, headers, exc_info=None):
        return None

    try:
        from pyinstrument import Profiler
    except ImportError:
        Profiler = None
    if Profiler is not None:
        profiler = Profiler(interval=0.0001)
        profiler.start()
        for _ in range(count):
            b"".join(wsgi(environ_factory(), start_response))
        profiler.stop()
        print(profiler.output_text(unicode=True, color=False, show_all=False))
        return
    # PROFILE_TIMER=cpu: CPU time only (what a worker spends, not its waits on the database)
    cpu = os.environ.get("PROFILE_TIMER") == "cpu"
    profiler = cProfile.Profile(time.process_time) if cpu else cProfile.Profile()
    profiler.enable()
    for _ in range(count):
        b"".join(wsgi(environ_factory(), start_response))
    profiler.disable()
    if os.environ.get("PROFILE_DUMP"):
        profiler.dump_stats(os.environ["PROFILE_DUMP"])
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats(
        os.environ.get("PROFILE_SORT", "cumulative")
    ).print_stats(40)
    print(out.getvalue())


if __name__ == "__main__":
    raise SystemExit(main())
