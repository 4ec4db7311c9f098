"""`make bench`'s verdicts: each ratio is taken against the baseline measured next to it
(the block's own, or the one right before the rushes), not the run's first one."""

from __future__ import annotations

import time
from types import SimpleNamespace

from bench import loadgen, run


def _page(label: str, rps: float, p99: float = 10.0, sql: int = 1) -> dict:
    return {
        "page": label,
        "available": True,
        "rps": rps,
        "p50_ms": 1.0,
        "p99_ms": p99,
        "sql": sql,
        "errors": 0,
    }


def _block(engine: str, scale: str, **parts) -> dict:
    return {
        "engine": engine,
        "scale": scale,
        "seeded": {"members": 1000},
        "worker_peak_rss_mb": 80.0,
        "server_errors_logged": 0,
        "integrity": "OK",
        "export": None,
        **parts,
    }


def _results() -> dict:
    kits = {
        "rush": "1,000 kits / 3,000 members",
        "per_second": 240.0,
        "p99_ms": 100.0,
        "errors": 0,
        "outcome": {"claims": 1000, "stock_left": 0},
        "statuses": {204: 1000, 422: 2000},
    }
    return {
        "baseline": {"rps": 3000.0, "p50_ms": 1.0, "p99_ms": 5.0, "errors": 0},
        "runs": [
            _block(
                "sqlite",
                "small",
                pages=[_page("/me", 500.0), _page("points badge", 900.0)],
                baseline={"rps": 2000.0, "p50_ms": 1.0, "p99_ms": 5.0, "errors": 0},
                rush_baseline=None,
                rushes=[],
            ),
            _block(
                "sqlite",
                "large",
                pages=[_page("/me", 500.0, p99=11.0), _page("points badge", 900.0)],
                baseline=None,  # none measured: the run's first one
                rush_baseline={"rps": 1500.0, "p50_ms": 1.0, "p99_ms": 5.0, "errors": 0},
                rushes=[kits],
            ),
        ],
    }


def test_ratios_use_the_baseline_measured_next_to_them():
    verdicts = run.verdicts(_results())
    assert "PASS /me ÷ baseline 0.250 ≥ 0.25 (sqlite, small)" in verdicts  # 500 / 2000
    assert "MISS /me ÷ baseline 0.167 ≥ 0.25 (sqlite, large)" in verdicts  # 500 / 3000
    assert "MISS points badge ÷ baseline 0.450 ≥ 0.5 (sqlite, small)" in verdicts
    kit_line = next(line for line in verdicts if "1,000 kits" in line)
    assert kit_line.startswith("PASS") and "claims/s ÷ baseline 0.160" in kit_line  # 240 / 1500
    assert "PASS p99 large/small /me 1.100 ≤ 1.25 (sqlite)" in verdicts


def test_a_ratio_just_under_its_target_does_not_print_as_the_target():
    results = _results()
    results["runs"][1]["rushes"][0]["per_second"] = 224.0  # 0.1493 of 1,500
    kit_line = next(line for line in run.verdicts(results) if "1,000 kits" in line)
    assert kit_line.startswith("MISS") and "claims/s ÷ baseline 0.149 ≥ 0.15" in kit_line


def test_the_report_prints_each_blocks_baseline():
    results = _results()
    results["verdicts"] = run.verdicts(results)
    text = run.report(results)
    assert "(baseline next to it)" in text and "2000.0" in text
    assert "baseline around the kit rush    1500.0 req/s" in text
    me_small = next(line for line in text.splitlines() if "small  /me" in line)
    assert me_small.split()[4] == "0.25"  # the ratio column: against 2,000, not 3,000


def test_a_p99_growth_just_over_its_target_does_not_print_as_the_target():
    results = _results()
    large = next(block for block in results["runs"] if block["scale"] == "large")
    small = next(block for block in results["runs"] if block["scale"] == "small")
    me_small = next(row for row in small["pages"] if row["page"] == "/me")
    next(row for row in large["pages"] if row["page"] == "/me")["p99_ms"] = (
        me_small["p99_ms"] * 1.2534
    )
    line = next(v for v in run.verdicts(results) if "p99 large/small /me" in v)
    assert line == "MISS p99 large/small /me 1.253 ≤ 1.25 (sqlite)"


def test_runs_of_the_same_requests_merge_into_one_measurement():
    first = loadgen.Result(100, 1, 1.0, [1.0] * 99 + [50.0], {200: 99, 500: 1})
    second = loadgen.Result(300, 0, 1.0, [2.0] * 300, {200: 300})
    both = loadgen.merged([first, second])
    assert (both.requests, both.errors, both.seconds) == (400, 1, 2.0)
    assert both.rps == 200.0 and both.statuses == {200: 399, 500: 1}
    assert both.percentile(50) == 2.0 and both.percentile(99.9) == 50.0


def test_each_page_is_measured_in_rounds_alternating_with_the_baseline_and_scales(
    monkeypatch,
):
    """Baseline, small, large, baseline, small, large, … for every page (warm-ups
    first): drift over the run falls on the baseline and both scales alike, and each
    page's ratio is taken against the baseline measured with it."""
    calls: list[tuple[str, float]] = []
    rps = {"base": 40, "small": 10, "large": 4}

    def run_get(url, paths, cookies=None, headers=None, seconds=1.0, **kwargs):
        calls.append((url, seconds))
        count = int(rps[url] * seconds * 2)
        return loadgen.Result(count, 0, seconds, [1.0] * count, {200: count})

    monkeypatch.setattr(run.loadgen, "run_get", run_get)
    monkeypatch.setattr(run, "resolve", lambda app, page: f"/me/{page.values['id']}")
    monkeypatch.setattr(run, "sql_count", lambda *args: 1)

    def pages(ids):
        return [run.Page("/me", "home.me", values={"id": ids["campaign"]})]

    monkeypatch.setattr(run, "pages", pages)

    def block(scale: str, campaign: int) -> run.Block:
        server = SimpleNamespace(url=scale)
        cookies = {"member": ["c"]}
        ids = {"campaign": campaign}
        return run.Block(
            "sqlite", scale, "", None, {}, ids, 1, cookies, {"member": (1, "t")}, server
        )

    small, large = block("small", 7), block("large", 8)
    baseline = run.measure_pages([small, large], SimpleNamespace(url="base"), 3.0)
    assert (small.rows[0]["path"], large.rows[0]["path"]) == ("/me/7", "/me/8")  # its own ids
    measured = [url for url, seconds in calls if seconds != 0.5]
    assert (
        measured == ["base", "small", "large"] * run.PAGE_ROUNDS == ["base", "small", "large"] * 4
    )
    assert [seconds for url, seconds in calls if url == "small" and seconds != 0.5] == [0.75] * 4
    assert [url for url, seconds in calls if seconds == 0.5] == ["base", "small", "large"]
    assert (small.rows[0]["rps"], large.rows[0]["rps"], baseline["rps"]) == (20, 8, 80)
    results = {"baseline": {"rps": 1.0}, "runs": []}
    block_result = {"engine": "sqlite", "scale": "small", "baseline": baseline}
    assert run.ratio(results, block_result, small.rows[0]) == 0.25
    assert run.ratio(results, block_result, {"rps": 20}) == 0.25  # a row without its own


def test_req_per_second_is_taken_over_the_window_the_requests_were_sent_in(monkeypatch):
    """A load generator process's start-up (a fork of the bench) and the hand-over of
    its latencies are not time the server was offered requests: counted in, they
    lowered a short slice's req/s (the baseline's more than a page's)."""
    import threading
    from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

    class Quiet(WSGIRequestHandler):
        def log_message(self, *args):
            pass

    def app(environ, start_response):
        start_response("200 OK", [("Content-Length", "2")])
        return [b"ok"]

    server = make_server("127.0.0.1", 0, app, WSGIServer, handler_class=Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    slow_start = loadgen._process

    def process(*args):
        time.sleep(0.4)  # a slow fork, before the process sends anything
        slow_start(*args)

    monkeypatch.setattr(loadgen, "_process", process)
    try:
        result = loadgen.run_get(
            f"http://127.0.0.1:{server.server_port}", ["/"], seconds=0.3, processes=1
        )
    finally:
        server.shutdown()
        server.server_close()
    assert result.requests > 0 and result.statuses == {200: result.requests}
    assert 0.3 <= result.seconds < 0.55  # the window, not the 0.7 s the call took


def test_the_kit_rushs_baseline_is_measured_half_before_and_half_after_it(monkeypatch):
    events: list[str] = []

    def baseline_half(server, seconds):
        events.append("baseline")
        return loadgen.Result(100, 0, seconds, [1.0] * 100, {200: 100})

    def rushes_run(app, url, pool, cookie_for, ids, after_each=None):
        for label in ("1,000 kits / 3,000 members", "3,382 donors, 1 mask each"):
            events.append(label)
            after_each(label)
        return []

    monkeypatch.setattr(run, "baseline_half", baseline_half)
    monkeypatch.setattr(run.rushes, "run", rushes_run)
    monkeypatch.setattr(run.rushes, "prepare", lambda *args: {})
    monkeypatch.setattr(run, "flask_cmd", lambda *args: "OK: 29 checks passed.")
    monkeypatch.setattr(run, "measure_export", lambda *args: None)
    server = SimpleNamespace(url="rush", peak_rss_mb=lambda: 80.0, stop=lambda: 0)
    ids = {"admin": 1, "campaign": None}
    block = run.Block("sqlite", "rush", "", None, {}, ids, 1, {}, {}, server)
    result = run.close_block(block, SimpleNamespace(url="base"), 3.0, None)
    assert events == [
        "baseline",
        "1,000 kits / 3,000 members",
        "baseline",
        "3,382 donors, 1 mask each",
    ]
    assert result["rush_baseline"]["rps"] == round(200 / 3.0, 1)


def test_the_cpu_split_gives_each_group_its_share_of_a_request():
    from bench import cpu_split

    before = cpu_split.Sample(workers=10.0, database=4.0, loadgen=1.0, machine=20.0)
    after = cpu_split.Sample(workers=12.0, database=4.5, loadgen=1.25, machine=23.0)
    cost = cpu_split.per_request(before, after, 1000)
    assert cost == cpu_split.Sample(workers=2000.0, database=500.0, loadgen=250.0, machine=3000.0)
    assert cpu_split.machine_cpu() > 0 and cpu_split.process_cpu(-1) == 0.0


def test_the_instruction_count_is_callgrinds_summary_of_the_requests_inside_reduce():
    """``bench/instructions.py``: a page served under callgrind, counted only inside
    ``functools.reduce`` once the app is built and warm."""
    import pytest

    from bench import instructions

    summary = "==12== Events    : Ir\n==12== Collected : 166197454\n==12==\n==12== I   refs: 1\n"
    assert instructions.collected(summary) == 166_197_454
    with pytest.raises(RuntimeError):
        instructions.collected("valgrind: command not found")
    command = instructions.valgrind_command("/me", "sqlite:///x.db", "secret", 50, "/tmp/cg.out")
    assert {"--tool=callgrind", "--instr-atstart=no", "--toggle-collect=functools_reduce"} <= set(
        command
    )
    assert command[command.index("--serve") + 1] == "/me"
    assert command[command.index("--requests") + 1] == "50"
