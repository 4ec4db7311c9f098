"""A short-lived, per-process cache for aggregate figures and public fragments.

Figures over 100,000 members and a million ledger entries cost tens of milliseconds;
the home page and the console show them to everyone, so each worker keeps them for
``FIGURES_CACHE_SECONDS`` (default 30; 0 turns it off, as the tests do). Nothing here
is ever a source of truth: a stale figure is at most that many seconds old, and every
business rule reads the database. Several workers or hosts each keep their own copy,
which is harmless for figures.

The live progress of a donation campaign (polled every 5 s by everyone watching it,
the same for every viewer) is kept for ``PROGRESS_CACHE_SECONDS`` (default 2) as
rendered HTML per campaign and language; a member's own donation response renders
it fresh. So is the "all claimed" answer of a kit rush, keyed by everything it shows
(the stock as each claim has just read it, the language): it can never be stale. The
campaign page shows the same progress card. Busy pages keep what every visitor sees
alike the same way (:func:`cached_briefly`): the published kits' catalogue on
``/kits`` (the stock and the member's claims beside it are read on every request, and
a claim decides on the database's rows), the categories and live sessions beside the
course search, the legal menu with its hotlines and sessions (rendered, per language).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

from flask import current_app

T = TypeVar("T")
_lock = threading.Lock()
_store: dict[Hashable, tuple[float, Any]] = {}
MAX_ENTRIES = 1_000


def cached_figures(key: Hashable, compute: Callable[[], T]) -> T:
    """``compute()``, or its value from less than FIGURES_CACHE_SECONDS ago."""
    return cached(key, compute, setting="FIGURES_CACHE_SECONDS", default=30)


def cached_briefly(key: Hashable, compute: Callable[[], T]) -> T:
    """``compute()``, or its value from less than PROGRESS_CACHE_SECONDS ago: what
    every viewer of a busy page sees alike, for a moment."""
    return cached(key, compute, setting="PROGRESS_CACHE_SECONDS", default=2)


def cached(key: Hashable, compute: Callable[[], T], *, setting: str, default: int) -> T:
    """``compute()``, or its value from less than ``config[setting]`` seconds ago."""
    ttl = current_app.config.get(setting, default)
    if not ttl:
        return compute()
    now = time.monotonic()
    full_key = (id(current_app._get_current_object()), setting, key)
    with _lock:
        hit = _store.get(full_key)
    if hit is not None and hit[0] > now:
        return hit[1]
    value = compute()
    with _lock:
        if len(_store) >= MAX_ENTRIES:
            _store.clear()
        _store[full_key] = (now + ttl, value)
    return value
