"""The default rate-limit storage (``swept-memory://``, security.limits.SweptMemoryStorage):
it counts as limits' ``memory://`` does, but starts no thread per counted request and
sweeps expired counters at most every SWEEP_SECONDS. It replaces a private hook of
limits' MemoryStorage: these tests fail if a new version of limits stops calling it."""

from __future__ import annotations

import threading
import time

from limits import parse
from limits.storage import storage_from_string
from limits.strategies import FixedWindowRateLimiter

from memberplatform.extensions import limiter
from memberplatform.security import limits as limits_module
from memberplatform.security.limits import SweptMemoryStorage


def test_the_app_counts_in_the_swept_memory_storage(app_factory):
    app = app_factory(RATELIMIT_ENABLED=True)
    with app.app_context():
        assert app.config["RATELIMIT_STORAGE_URI"] == "swept-memory://"
        assert isinstance(limiter.storage, SweptMemoryStorage)


def test_counting_starts_no_thread_per_hit(monkeypatch):
    storage = storage_from_string("swept-memory://")
    assert isinstance(storage, SweptMemoryStorage)
    started: list[object] = []
    real_start = threading.Thread.start

    def start(thread):
        started.append(thread)
        return real_start(thread)

    monkeypatch.setattr(threading.Thread, "start", start)
    window = FixedWindowRateLimiter(storage)
    limit = parse("3/minute")
    hits = [window.hit(limit, "user:1") for _ in range(4)]
    for member in range(200):
        window.hit(limit, f"user:{member + 2}")
        time.sleep(0.0002)
    assert hits == [True, True, True, False]  # counted as memory:// counts
    assert started == []


def test_expired_counters_are_swept_at_most_every_sweep_seconds(monkeypatch):
    storage = SweptMemoryStorage()
    storage.timer.join()  # limits' one sweep when the storage is made (10 ms after)
    storage.incr("old", expiry=0.01)
    time.sleep(0.02)
    storage.incr("new", expiry=60)
    assert "old" in storage.expirations  # not yet: the next sweep is SWEEP_SECONDS away
    assert storage.get("old") == 0  # read after its expiry: it starts afresh
    storage.incr("gone", expiry=0.01)
    time.sleep(0.02)
    monkeypatch.setattr(limits_module, "SWEEP_SECONDS", 0.0)
    storage._next_sweep = 0.0  # the sweep is due
    storage.incr("new", expiry=60)
    assert "gone" not in storage.expirations and "gone" not in storage.storage
    assert storage.get("new") == 2
