"""Donations commands: ``flask --app memberplatform donations-refund CAMPAIGN_ID``."""

from __future__ import annotations

import click
from flask.cli import with_appcontext

from memberplatform.core.errors import DomainError
from memberplatform.donations import services
from memberplatform.extensions import db


@click.command("donations-refund")
@with_appcontext
@click.argument("campaign_id", type=int)
@click.option(
    "--batch", default=services.REFUND_BATCH, show_default=True, help="Refunds per transaction."
)
def donations_refund(campaign_id: int, batch: int) -> None:
    """Finish refunding a cancelled campaign (safe to run again; each donor is refunded once)."""
    total = 0
    try:
        while True:
            with db.transaction():
                done = services.refund_pending(campaign_id, limit=max(1, batch))
            total += done
            if done == 0:
                break
            click.echo(f"refunded {total} donation(s) so far")
    except DomainError as error:
        raise click.ClickException(str(error.message)) from error
    click.echo(f"Campaign {campaign_id}: {total} donation(s) refunded now; none left to refund.")


commands = [donations_refund]
