"""A small load generator: processes × keep-alive connections, fixed duration.

Each connection cycles through the given session cookies (logged-in members)
and records every request's latency. Returns req/s, p50, p99 and error counts.
"""

from __future__ import annotations

import http.client
import itertools
import multiprocessing
import statistics
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit


@dataclass
class Result:
    requests: int
    errors: int
    seconds: float
    latencies_ms: list[float]
    statuses: dict[int, int]

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def percentile(self, p: float) -> float:
        if not self.latencies_ms:
            return 0.0
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))]


def merged(results: list[Result]) -> Result:
    """Several runs of the same requests as one (their requests over their seconds)."""
    statuses: dict[int, int] = {}
    for result in results:
        for status, count in result.statuses.items():
            statuses[status] = statuses.get(status, 0) + count
    return Result(
        requests=sum(r.requests for r in results),
        errors=sum(r.errors for r in results),
        seconds=sum(r.seconds for r in results),
        latencies_ms=[ms for r in results for ms in r.latencies_ms],
        statuses=statuses,
    )


def _connection_loop(base: str, paths, cookies, headers, deadline, sink, lock):
    parts = urlsplit(base)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    latencies, statuses, errors = [], {}, 0
    cookie_cycle = itertools.cycle(cookies or [None])
    path_cycle = itertools.cycle(paths)
    while time.perf_counter() < deadline:
        cookie = next(cookie_cycle)
        request_headers = dict(headers)
        if cookie:
            request_headers["Cookie"] = cookie
        start = time.perf_counter()
        try:
            conn.request("GET", next(path_cycle), headers=request_headers)
            response = conn.getresponse()
            response.read()
            status = response.status
        except (OSError, http.client.HTTPException):
            errors += 1
            conn.close()
            conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
            continue
        latencies.append((time.perf_counter() - start) * 1000)
        statuses[status] = statuses.get(status, 0) + 1
        if status >= 400:
            errors += 1
    conn.close()
    with lock:
        sink.append((latencies, statuses, errors))


def _process(base, paths, cookies, headers, seconds, connections, queue):
    started = time.perf_counter()
    deadline = started + seconds
    sink: list = []
    lock = threading.Lock()
    threads = [
        threading.Thread(
            target=_connection_loop,
            args=(base, paths, cookies[i::connections] or cookies, headers, deadline, sink, lock),
        )
        for i in range(connections)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # the window this process sent requests in: from its first to its last response,
    # not its start-up (a fork) nor the hand-over of its latencies
    queue.put((sink, time.perf_counter() - started))


def run_get(
    base: str,
    paths: list[str],
    *,
    cookies: list[str] | None = None,
    headers: dict[str, str] | None = None,
    seconds: float = 3.0,
    processes: int = 2,
    connections: int = 4,
) -> Result:
    """GET ``paths`` round-robin for ``seconds`` from ``processes`` × ``connections``."""
    queue: multiprocessing.Queue = multiprocessing.Queue()
    cookies = cookies or []
    workers = [
        multiprocessing.Process(
            target=_process,
            args=(
                base,
                paths,
                cookies[p::processes] or cookies,
                headers or {},
                seconds,
                connections,
                queue,
            ),
        )
        for p in range(processes)
    ]
    for worker in workers:
        worker.start()
    chunks = [queue.get() for _ in workers]
    for worker in workers:
        worker.join()
    # req/s over the longest window a process was sending in (they run side by side);
    # timing the processes' start-up too would count a short slice's fork as idle time
    elapsed = max(window for _, window in chunks)
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    errors = 0
    for sink, _ in chunks:
        for lat, stat, err in sink:
            latencies.extend(lat)
            errors += err
            for code, count in stat.items():
                statuses[code] = statuses.get(code, 0) + count
    return Result(len(latencies), errors, min(elapsed, seconds + 1) or seconds, latencies, statuses)


def post_all(
    base: str,
    jobs: list[tuple[str, str, str]],
    *,
    concurrency: int = 32,
) -> Result:
    """POST each (path, cookie, urlencoded body) once, ``concurrency`` at a time (a rush)."""
    parts = urlsplit(base)
    lock = threading.Lock()
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    errors = [0]
    index = itertools.count()
    barrier = threading.Barrier(concurrency)

    def worker():
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
        barrier.wait()
        while True:
            i = next(index)
            if i >= len(jobs):
                break
            path, cookie, body = jobs[i]
            start = time.perf_counter()
            try:
                conn.request(
                    "POST",
                    path,
                    body=body,
                    headers={
                        "Cookie": cookie,
                        "Content-Type": "application/x-www-form-urlencoded",
                        "HX-Request": "true",
                    },
                )
                response = conn.getresponse()
                response.read()
                status = response.status
            except (OSError, http.client.HTTPException):
                with lock:
                    errors[0] += 1
                conn.close()
                conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
                continue
            elapsed = (time.perf_counter() - start) * 1000
            with lock:
                latencies.append(elapsed)
                statuses[status] = statuses.get(status, 0) + 1
                if status >= 500:
                    errors[0] += 1
        conn.close()

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return Result(len(latencies), errors[0], time.perf_counter() - started, latencies, statuses)


def median(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0
