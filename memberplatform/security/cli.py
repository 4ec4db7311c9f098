"""``flask --app memberplatform rotate-field-keys`` (see crypto.py, Rotation)."""

from __future__ import annotations

import click
from flask.cli import with_appcontext

from memberplatform.extensions import db
from memberplatform.security.crypto import rotate


@click.command("rotate-field-keys")
@with_appcontext
def rotate_field_keys() -> None:
    """Re-encrypt every encrypted field with the first key of FIELD_ENCRYPTION_KEYS."""
    for column, count in rotate(db.session()).items():
        click.echo(f"{column}: {count} rows re-encrypted")


commands = [rotate_field_keys]
