"""Legal commands: ``flask --app memberplatform legal-notify-overdue``."""

from __future__ import annotations

import click
from flask.cli import with_appcontext

from memberplatform.extensions import db


@click.command("legal-notify-overdue")
@with_appcontext
def notify_overdue() -> None:
    """Tell lawyers and admins about overdue legal requests (once per request and deadline)."""
    from memberplatform.legal import services

    with db.transaction():
        sent = services.notify_overdue()
    click.echo(f"{sent} overdue notification(s) sent.")


commands = [notify_overdue]
