"""Crashes and restarts, for real: nothing half-written, and check-integrity passes after.

Each test starts its own gunicorn (``gunicorn -c gunicorn.conf.py wsgi:app``, two sync
workers) on a throw-away database and drives it over HTTP with members who log in
(CSRF on) and donate points, one unit per request, each with its own idempotency key.
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import time
import uuid

import pytest
import sqlalchemy as sa

from tests.faults import harness
from tests.faults.conftest import require_postgresql

LEDGER_TABLES = ("donations", "ledger_entries", "points_accounts", "points_lots")


def assert_integrity(env) -> None:
    result = harness.flask_cli(env, "check-integrity")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("OK:")


def assert_recovered(server, cast) -> list[str]:
    """A member who starts now is served normally: no restart of the app was needed."""
    member = harness.Member(server.url, cast.members[-1])
    member.login()
    keys = [uuid.uuid4().hex for _ in range(5)]
    statuses = [member.donate(cast.campaign_id, key) for key in keys]
    assert statuses == [303] * 5
    return keys


@pytest.mark.parametrize("database", ["sqlite", "postgresql"], indirect=True)
def test_worker_killed_mid_request_leaves_no_partial_transaction(database, tmp_path):
    cast = harness.seed_rush(database, tmp_path, members=9)
    env = harness.base_env(database, tmp_path)
    killed = []

    def kill_two_workers():
        for _ in range(2):
            killed.append(server.kill_worker())
            time.sleep(0.7)

    with harness.Gunicorn(env, tmp_path / "gunicorn.log") as server:
        outcome = harness.rush(server.url, cast, seconds=5, during=kill_two_workers, threads=8)
        outcome.ok += assert_recovered(server, cast)
    assert len(killed) == 2 and outcome.ok
    stored = harness.donation_keys(database)
    assert set(outcome.ok) <= stored  # every donation confirmed to a member is kept
    # a donation stored without a 303 is one whose answer died with its killed worker
    lost_answers = {key for key, why in outcome.failed if not why.isdigit()}
    assert stored - set(outcome.ok) <= lost_answers
    assert_integrity(env)


def test_postgresql_restart_during_a_donation_rush(tmp_path):
    require_postgresql()
    url = harness.create_pg_database()
    try:
        harness.create_schema(url)
        cast = harness.seed_rush(url, tmp_path, members=9)
        env = harness.base_env(url, tmp_path)
        with harness.Gunicorn(env, tmp_path / "gunicorn.log") as server:
            outcome = harness.rush(
                server.url, cast, seconds=6, during=harness.restart_postgresql, threads=8
            )
            outcome.ok += assert_recovered(server, cast)  # the pool renews itself: no app restart
            status, body = harness.Member(server.url, "").request("GET", "/healthz")
            assert status == 200 and '"database":"ok"' in body.replace(" ", "")
        errors = [why for _, why in outcome.failed]
        assert outcome.ok and all(not why.isdigit() or int(why) >= 500 for why in errors), errors
        assert set(outcome.ok) <= harness.donation_keys(url)
        assert_integrity(env)
    finally:
        harness.drop_pg_database(url)


def test_sqlite_backup_while_members_donate(tmp_path):
    url = f"sqlite:///{tmp_path / 'live.sqlite3'}"
    harness.create_schema(url)
    cast = harness.seed_rush(url, tmp_path, members=9)
    env = harness.base_env(url, tmp_path)
    dest = tmp_path / "backups"
    backups = []

    def take_backup():
        result = harness.flask_cli(env, "backup", "--dest", str(dest))
        assert result.returncode == 0, result.stderr
        backups.append(result.stdout.strip())

    with harness.Gunicorn(env, tmp_path / "gunicorn.log") as server:
        outcome = harness.rush(server.url, cast, seconds=4, during=take_backup, threads=8)
    assert outcome.ok and len(backups) == 1
    with sqlite3.connect(backups[0]) as copy:
        assert copy.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        in_backup = copy.execute("SELECT count(*) FROM donations").fetchone()[0]
    assert 0 < in_backup <= len(harness.donation_keys(url))

    restored = tmp_path / "restored" / "memberplatform.sqlite3"
    restored.parent.mkdir()
    shutil.copy(backups[0], restored)
    restored_env = harness.base_env(f"sqlite:///{restored}", tmp_path / "restored")
    assert_integrity(restored_env)
    with harness.Gunicorn(restored_env, tmp_path / "restored.log") as server:
        assert_recovered(server, cast)
    assert_integrity(restored_env)


def _libpq(url: str) -> str:
    return sa.engine.make_url(url).set(drivername="postgresql").render_as_string(False)


def test_pg_dump_and_restore_round_trip(tmp_path):
    require_postgresql()
    source, target = harness.create_pg_database(), harness.create_pg_database()
    try:
        harness.create_schema(source)
        env = harness.base_env(source, tmp_path)
        seeded = harness.flask_cli(env, "seed-demo", "--password", "union-demo-2020")
        assert seeded.returncode == 0, seeded.stderr[-3000:]
        assert_integrity(env)
        dump = tmp_path / "memberplatform.dump"
        subprocess.run(
            ["pg_dump", "--format=custom", "--no-owner", f"--file={dump}", _libpq(source)],
            check=True,
            capture_output=True,
        )
        subprocess.run(
            ["pg_restore", "--no-owner", "--exit-on-error", f"--dbname={_libpq(target)}", dump],
            check=True,
            capture_output=True,
        )
        target_env = harness.base_env(target, tmp_path)
        assert_integrity(target_env)
        import memberplatform.models  # noqa: F401
        from memberplatform.db import Base

        tables = tuple(t.name for t in Base.metadata.sorted_tables)
        before, after = harness.counts(source, tables), harness.counts(target, tables)
        assert before == after
        assert before["users"] > 50 and before["ledger_entries"] > 0
    finally:
        harness.drop_pg_database(source)
        harness.drop_pg_database(target)
