"""Rate limits on the write endpoints a bot would hammer (claims, donations, requests).

Limits are counted per logged-in user (per IP for anonymous requests) in the limiter's
storage, so with ``RATELIMIT_STORAGE_URI=redis://…`` every worker on every host shares
them. ``WRITE_LIMIT`` (default ``30/minute;300/hour``) is read on each request. The
default storage, ``swept-memory://``, counts in the worker's memory
(:class:`SweptMemoryStorage`).

Two ways to use it:

- in a domain's ``views.py``, under the route decorator::

      @bp.post("/kits/<int:kit_id>/claim")
      @write_limit
      @roles_required("member")
      def claim(kit_id): ...

- or once in ``create_app`` after the blueprints are registered::

      from memberplatform.security.limits import apply_write_limits
      apply_write_limits(app)

  which wraps every endpoint listed in :data:`WRITE_ENDPOINTS` that exists.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial, wraps
from typing import Any

from flask import Flask, current_app, request
from flask_limiter.util import get_remote_address
from flask_login import current_user
from limits.storage import MemoryStorage

from memberplatform.db import SAFE_METHODS
from memberplatform.extensions import limiter

DEFAULT_WRITE_LIMIT = "30/minute;300/hour"

#: endpoints whose POSTs are limited by :func:`apply_write_limits`
WRITE_ENDPOINTS = (
    "points.check_in",
    "donations.confirm",
    "donations.donate",
    "kits.claim",
    "kits.cancel",
    "courses.enrol",
    "courses.cancel",
    "courses.confirm",
    "courses.lesson_done",
    "courses.exam_register",
    "courses.exam_cancel",
    "courses.exam_confirm",
    "legal.request_form",
    "legal.reply",
    "legal.follow_up",
    "legal.rate",
    "legal.close",
    "notifications.read_all",
)


#: how often a worker's in-memory counters are swept of expired ones
SWEEP_SECONDS = 10.0


class SweptMemoryStorage(MemoryStorage):
    """``swept-memory://``: limits' in-memory storage without a thread per sweep.

    ``memory://`` drops expired counters from a timer thread it starts 10 ms after
    each counted request whenever the last one has ended, and each run walks every
    counter. In a rush each member adds two (a minute's and an hour's), so a worker
    started a thread and walked thousands of counters every few milliseconds (measured:
    160 µs of CPU per counted request with one counter, 330 µs with 3,000; a sold-out
    kit claim costs ~2,000). Here a counter read after its expiry starts afresh (as
    ``MemoryStorage.get`` does on every read) and the sweep runs at most every
    ``SWEEP_SECONDS``, in the request that comes then. It replaces limits' private
    scheduling hook; ``tests/security/test_rate_limits.py`` checks that it still does.
    """

    STORAGE_SCHEME = ["swept-memory"]  # noqa: RUF012  # limits' registry reads the class attribute

    def __init__(self, uri: str | None = None, wrap_exceptions: bool = False, **options: str):
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **options)
        self._next_sweep = time.monotonic() + SWEEP_SECONDS

    def _MemoryStorage__schedule_expiry(self) -> None:  # limits' (name-mangled) hook
        now = time.monotonic()
        if now >= self._next_sweep:
            self._next_sweep = now + SWEEP_SECONDS
            self._MemoryStorage__expire_events()


def user_key() -> str:
    if current_user and current_user.is_authenticated:
        return f"user:{current_user.id}"
    return f"ip:{get_remote_address()}"


def _write_limit() -> str:
    return current_app.config.get("WRITE_LIMIT") or DEFAULT_WRITE_LIMIT


write_limit = limiter.limit(_write_limit, key_func=user_key, methods=["POST"])


@limiter.request_filter
def _reads_are_not_limited() -> bool:
    """Every limit is on a POST (``tests/security`` checks it): a GET, HEAD or OPTIONS
    skips the limiter's per-request work (resolving limits for the endpoint)."""
    return request.method in SAFE_METHODS


def skip_for_reads(app: Flask) -> None:
    """Reads skip the limiter's request hooks altogether: its ``before_request``
    check (which, with the filter above, finds no limit) and its ``after_request``
    header pass. Every limit is a decorator on a POST view, which checks it there; so
    while no default, application or blueprint limit exists, the ``before_request``
    check (which leaves decorated views to their decorator) is dropped for writes too."""

    def unless_read(hook: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(hook)
        def hooked(*args: Any) -> Any:
            if request.method in SAFE_METHODS:
                return args[0] if args else None  # after_request hands the response on
            return hook(*args)

        return hooked

    manager = limiter.limit_manager
    only_decorated = not (
        manager.default_limits or manager.application_limits or manager._blueprint_limits
    )
    checks = app.before_request_funcs.get(None, [])
    if only_decorated:
        checks[:] = [hook for hook in checks if not _is_limiters_check(hook)]
    for hooks, is_limiters in (
        (checks, _is_limiters_check),
        (app.after_request_funcs.get(None, []), _is_limiters_headers),
    ):
        for index, hook in enumerate(hooks):
            if is_limiters(hook):
                hooks[index] = unless_read(hook)


def _is_limiters_check(hook: Any) -> bool:
    return getattr(hook, "__self__", None) is limiter and hook.__name__ == "_check_request_limit"


def _is_limiters_headers(hook: Any) -> bool:
    return isinstance(hook, partial) and hook.args[:1] == (limiter,)


def apply_write_limits(app: Flask, endpoints: tuple[str, ...] = WRITE_ENDPOINTS) -> list[str]:
    """Wrap the listed (existing) endpoints with :data:`write_limit`; returns those wrapped."""
    wrapped = []
    for endpoint in endpoints:
        view = app.view_functions.get(endpoint)
        if view is not None and not getattr(view, "_write_limited", False):
            limited = write_limit(view)
            limited._write_limited = True  # type: ignore[attr-defined]
            app.view_functions[endpoint] = limited
            wrapped.append(endpoint)
    return wrapped
