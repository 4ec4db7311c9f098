"""``flask --app memberplatform kits-release-expired``."""

from __future__ import annotations

import click
from flask.cli import with_appcontext

from memberplatform.db import utcnow
from memberplatform.extensions import db
from memberplatform.kits import services


def release_expired() -> tuple[int, int]:
    """Remind members whose reservation ends within a day, release overdue ones.

    Safe to run again at any time (from cron, say every 15 minutes): reminders
    are sent once per claim, and each claim is released in its own short
    transaction by a conditional update, so a claim picked up at the same
    moment is never released. Returns (reminded, released).
    """
    now = utcnow()
    with db.transaction():
        reminded = services.remind_expiring(now)
    released = 0
    for claim_id in services.due_for_expiry(now):
        with db.transaction():
            released += services.expire(claim_id, now=now)
    db.session.commit()
    return reminded, released


@click.command("kits-release-expired")
@with_appcontext
def kits_release_expired() -> None:
    """Release kit reservations not picked up in time (KIT_RESERVATION_DAYS) and notify."""
    reminded, released = release_expired()
    click.echo(f"released {released} expired reservation(s), reminded {reminded} member(s)")


commands = [kits_release_expired]
