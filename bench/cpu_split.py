"""Where a page's CPU goes over HTTP: gunicorn's workers, the database server, the
load generator.

    .venv/bin/python bench/cpu_split.py "/me" "points badge" --engine postgresql

Seeds the small scale, serves it and the baseline app with the project's gunicorn
settings (as ``make bench`` does), drives each page with the bench's load generator
and reads the CPU time each group of processes used (``/proc``) before and after:
µs per request for the workers, PostgreSQL's processes, the load generator and the
whole machine. The ratio ``make bench`` reports is the baseline's machine time per
request over the page's; this shows which part of the page's is the app's.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import loadgen, run  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")


class Sample(NamedTuple):
    workers: float  #: CPU seconds of the gunicorn master and its workers
    database: float  #: of every PostgreSQL process (0 on SQLite)
    loadgen: float  #: of this process's finished children (the load generator)
    machine: float  #: of the whole machine (every core, idle excluded)


def process_cpu(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime


def postgres_pids() -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().startswith("postgres"):
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


def machine_cpu() -> float:
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(values) - values[3] - values[4]) / TICKS  # without idle and iowait


def sample(server: run.Server) -> Sample:
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return Sample(
        workers=sum(process_cpu(pid) for pid in [server.process.pid, *server.worker_pids()]),
        database=sum(process_cpu(pid) for pid in postgres_pids()),
        loadgen=children.ru_utime + children.ru_stime,
        machine=machine_cpu(),
    )


def per_request(before: Sample, after: Sample, requests: int) -> Sample:
    """µs per request of each group between two samples."""
    return Sample(*((b - a) / max(requests, 1) * 1e6 for a, b in zip(before, after, strict=True)))


def measure(label: str, server: run.Server, paths: list[str], seconds: float, **kwargs) -> None:
    loadgen.run_get(server.url, paths, seconds=1, **kwargs)  # warm-up
    before = sample(server)
    result = loadgen.run_get(server.url, paths, seconds=seconds, **kwargs)
    cost = per_request(before, sample(server), result.requests)
    print(
        f"{label:22} {result.rps:8.1f} req/s   µs per request: workers {cost.workers:6.0f}"
        f"  database {cost.database:5.0f}  load generator {cost.loadgen:5.0f}"
        f"  machine {cost.machine:6.0f}",
        flush=True,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("pages", nargs="+", help="page labels as in bench/run.py")
    parser.add_argument("--engine", choices=("sqlite", "postgresql"), default="postgresql")
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    baseline = run.start_gunicorn("bench.baseline:app", {})
    try:
        with run.database(args.engine, Path(tempfile.mkdtemp(prefix="mp-split-"))) as url:
            block = run.open_block(args.engine, "small", url)
            try:
                pages = {page.label: page for page in run.pages(block.ids)}
                for _ in range(args.rounds):
                    measure("baseline", baseline, ["/"], args.seconds)
                    for label in args.pages:
                        page = pages[label]
                        measure(
                            label,
                            block.server,
                            [run.resolve(block.app, page)],
                            args.seconds,
                            cookies=block.cookies[page.who],
                            headers={"HX-Request": "true"} if page.htmx else {},
                        )
            finally:
                block.server.stop()
    finally:
        baseline.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
