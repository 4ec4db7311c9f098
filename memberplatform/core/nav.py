"""The counts in every page's header (points balance, unread notifications).

Each domain registers a scalar subquery on the signed-in user's id
(:func:`nav_counter`); the core never imports a domain. The statement that reads
the signed-in user every request reads them too (:func:`columns`), so a page or a
badge costs no statement of its own for them. Badges render after the view's
service calls: when the request has written anything (``db.wrote``), the first
badge reads every count again in one statement, so a response to a donation
shows the balance after it.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

import sqlalchemy as sa

from memberplatform.db import wrote
from memberplatform.extensions import db
from memberplatform.web.current import app_globals, signed_in_user

#: name -> fn(user id bind parameter) -> scalar subquery
_counters: dict[str, Callable[[sa.BindParameter], sa.ScalarSelect]] = {}


def nav_counter(name: str):
    """Register ``fn(user_id) -> scalar subquery`` as the header count ``name``."""

    def register(fn: Callable[[sa.BindParameter], sa.ScalarSelect]):
        _counters[name] = fn
        _statement.cache_clear()
        return fn

    return register


def names() -> tuple[str, ...]:
    return tuple(_counters)


def columns(user_id: sa.BindParameter) -> list[sa.Label]:
    """Every count as a column ``nav_<name>``, for the statement that reads the user."""
    return [
        sa.func.coalesce(build(user_id), 0).label(f"nav_{name}")
        for name, build in _counters.items()
    ]


def counts_of(row: sa.Row) -> dict[str, int]:
    """name -> count, from a row holding :func:`columns`."""
    return {name: int(getattr(row, f"nav_{name}")) for name in _counters}


@cache
def _statement() -> sa.Select:
    return sa.select(*columns(sa.bindparam("user_id")))


def nav_count(name: str) -> int:
    """The signed-in user's count ``name`` (0 when nobody is signed in)."""
    user = signed_in_user()
    if not user.is_authenticated:
        return 0
    g = app_globals()
    counts = g.__dict__.get("nav_counts")
    if counts is None or counts[0] != user.id:
        read_with_user = getattr(user, "nav_counts", None)
        if read_with_user is not None and not wrote():
            counts = (user.id, read_with_user)
        else:
            row = db.read(_statement(), {"user_id": user.id}).one()
            counts = (user.id, counts_of(row))
        g.nav_counts = counts
    return int(counts[1][name])
