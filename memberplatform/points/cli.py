"""``points-expire``: expire due points and warn about points expiring soon (run daily)."""

from __future__ import annotations

import click
from flask.cli import with_appcontext

from memberplatform.db import utcnow
from memberplatform.extensions import db
from memberplatform.points import services


@click.command("points-expire")
@with_appcontext
def points_expire() -> None:
    """Expire points past their date (one transaction per member; safe to re-run)."""
    now = utcnow()
    members = expired = 0
    with db.transaction():
        user_ids = services.users_with_due_lots(now)
    for user_id in user_ids:
        with db.transaction():
            amount = services.expire_account(user_id, now)
        if amount:
            members += 1
            expired += amount
    with db.transaction():
        warned = services.notify_expiring(now)
    click.echo(f"expired {expired} points of {members} members; warned {warned} about expiry")


commands = [points_expire]
