"""Hooks each domain registers into: integrity checks, demo data, dashboard panels.

Domains append to these on import (their package ``__init__`` imports the
module that registers), so the core never imports a domain.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import sqlalchemy.orm as so


@dataclass(frozen=True)
class IntegrityCheck:
    name: str
    # Returns a list of human-readable violations; empty when the invariant holds.
    run: Callable[[so.Session], Iterable[str]]


@dataclass(frozen=True)
class DemoSeeder:
    name: str
    order: int
    run: Callable[..., Any]


@dataclass(frozen=True)
class Panel:
    """A panel on /me or the home page: a template and a context builder."""

    name: str
    order: int
    template: str
    context: Callable[..., dict[str, Any]]
    #: ``fn(user_id) -> [(statement, params), …]``: the ``db.read`` calls ``context``
    #: makes, so that a page of panels makes them all at once (``db.read_ahead``)
    reads: Callable[..., list[tuple[Any, dict[str, Any]]]] | None = None


@dataclass(frozen=True)
class Export:
    """A CSV export listed on the staff console's exports page."""

    name: Any  # lazy translatable title
    endpoint: str
    roles: tuple[str, ...] = ("staff",)


integrity_checks: list[IntegrityCheck] = []
#: figures panels on the /admin home: fn() -> context, rendered with the template
admin_panels: list[Panel] = []
exports: list[Export] = []
demo_seeders: list[DemoSeeder] = []
me_panels: list[Panel] = []
home_panels: list[Panel] = []


def integrity_check(name: str):
    """Decorator: register ``fn(session) -> iterable of violations``."""

    def wrap(fn):
        if not any(check.name == name for check in integrity_checks):
            integrity_checks.append(IntegrityCheck(name, fn))
        return fn

    return wrap


def demo_seeder(name: str, order: int):
    """Decorator: register ``fn(session, users, password_hash)`` for ``seed-demo``."""

    def wrap(fn):
        if not any(seeder.name == name for seeder in demo_seeders):
            demo_seeders.append(DemoSeeder(name, order, fn))
            demo_seeders.sort(key=lambda s: s.order)
        return fn

    return wrap


def _panel(registry: list[Panel], name: str, order: int, template: str, reads=None):
    def wrap(fn):
        if not any(panel.name == name for panel in registry):
            registry.append(Panel(name, order, template, fn, reads))
            registry.sort(key=lambda p: p.order)
        return fn

    return wrap


def me_panel(
    name: str,
    order: int,
    template: str,
    reads: Callable[..., list[tuple[Any, dict[str, Any]]]] | None = None,
):
    """Decorator: ``fn(user) -> context`` renders ``template`` as a panel on /me.

    ``reads(user_id)`` lists the statements ``fn`` reads with ``db.read`` and their
    parameters: /me reads every panel's ahead with the session check, in one round
    trip on PostgreSQL."""
    return _panel(me_panels, name, order, template, reads)


def home_panel(name: str, order: int, template: str):
    """Decorator: ``fn() -> context`` renders ``template`` as a card on the home page."""
    return _panel(home_panels, name, order, template)


def admin_panel(name: str, order: int, template: str):
    """Decorator: ``fn() -> context`` renders ``template`` as a figures panel on /admin."""
    return _panel(admin_panels, name, order, template)


def register_export(name: Any, endpoint: str, roles: tuple[str, ...] = ("staff",)) -> None:
    """List a CSV export (by endpoint) on the console's exports page."""
    if not any(export.endpoint == endpoint for export in exports):
        exports.append(Export(name, endpoint, roles))
