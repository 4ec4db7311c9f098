"""Commands of the courses domain."""

from __future__ import annotations

import click
from flask.cli import with_appcontext

from memberplatform.extensions import db

from . import services


@click.command("courses-expire-offers")
@with_appcontext
def expire_offers() -> None:
    """Pass on places (courses and exams) whose confirmation window has lapsed (idempotent)."""
    with db.transaction():
        courses = services.expire_course_offers()
        exams = services.expire_exam_offers()
    click.echo(f"lapsed offers: {courses} course place(s), {exams} exam seat(s)")


commands = [expire_offers]
