"""Platform commands: ``flask --app memberplatform <command>``."""

from __future__ import annotations

import secrets
import sqlite3
import sys
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import click
import sqlalchemy as sa
from flask import current_app
from flask.cli import with_appcontext

from memberplatform.admin.services import apply_rows, one_roster_import_at_a_time
from memberplatform.auth.models import User
from memberplatform.auth.roster import parse_roster
from memberplatform.auth.services import create_user, hash_password, set_roles
from memberplatform.core.csvio import CsvDecodeError, decode_upload
from memberplatform.core.errors import DomainError
from memberplatform.core.registry import demo_seeders, integrity_checks
from memberplatform.extensions import db

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾"
GIVEN = [
    "伟",
    "芳",
    "娜",
    "敏",
    "静",
    "丽",
    "强",
    "磊",
    "军",
    "洋",
    "勇",
    "艳",
    "杰",
    "娟",
    "涛",
    "明",
    "超",
    "秀英",
    "霞",
    "平",
    "刚",
    "桂英",
    "建华",
    "文",
    "志强",
    "晓东",
    "海燕",
    "思远",
]
ENTERPRISES = [
    "中关村软件园云计算有限公司",
    "科学城智能制造科技有限公司",
    "海淀数字医疗技术有限公司",
]
BRANCHES = ["软件园联合工会", "科学城第一基层工会", "数字医疗基层工会"]


def demo_name(index: int) -> str:
    return SURNAMES[index % len(SURNAMES)] + GIVEN[(index * 7) % len(GIVEN)]


@dataclass
class DemoUsers:
    admin: User
    staff: User
    lawyers: list[User] = field(default_factory=list)
    members: list[User] = field(default_factory=list)


def _demo_user(phone: str, name: str, roles: tuple[str, ...], password_hash: str | None, **extra):
    user = db.session.scalar(sa.select(User).where(User.phone == phone))
    if user is None:
        user = create_user(phone, name, password_hash=password_hash, roles=roles, **extra)
    else:
        set_roles(user, set(user.roles) | set(roles))
        if password_hash is not None:
            user.password_hash = password_hash
    return user


@click.command("seed-demo")
@with_appcontext
@click.option("--password", help="Password for every demo account (otherwise one is generated).")
def seed_demo(password: str | None) -> None:
    """Load the demo data drawn from the source article (safe to run again)."""
    generated = password is None
    password = password or secrets.token_urlsafe(9)
    password_hash = hash_password(password)  # one hash shared by all demo accounts
    with db.transaction():
        users = DemoUsers(
            admin=_demo_user("13600000000", "管理员", ("admin", "staff"), password_hash),
            staff=_demo_user(
                "13700000000", "工会干事", ("staff",), password_hash, branch=BRANCHES[0]
            ),
        )
        for i in range(1, 4):
            users.lawyers.append(
                _demo_user(
                    f"1390000000{i}", demo_name(100 + i) + "律师", ("lawyer",), password_hash
                )
            )
        for i in range(1, 51):
            users.members.append(
                _demo_user(
                    f"138000000{i:02d}",
                    demo_name(i),
                    ("member",),
                    password_hash,
                    member_no=f"ZGC{i:05d}",
                    enterprise=ENTERPRISES[i % 3],
                    branch=BRANCHES[i % 3],
                    tags=("returned-to-work",) if i % 2 else (),
                )
            )
        # Roster members who have not activated yet (for trying /auth/activate).
        for i in range(51, 56):
            _demo_user(
                f"138000000{i:02d}",
                demo_name(i),
                ("member",),
                None,
                member_no=f"ZGC{i:05d}",
                enterprise=ENTERPRISES[i % 3],
                branch=BRANCHES[i % 3],
            )
        for seeder in demo_seeders:
            seeder.run(db.session, users)
    click.echo("Demo data ready. Log in with a mobile number and the password below:")
    click.echo("  admin    13600000000")
    click.echo("  staff    13700000000")
    click.echo("  lawyers  13900000001 – 13900000003")
    click.echo("  members  13800000001 – 13800000050")
    click.echo("  (not yet activated: member numbers ZGC00051 – ZGC00055, phones 13800000051 – 55)")
    click.echo(f"  password {password}" + ("  (generated)" if generated else ""))


@click.command("create-user")
@with_appcontext
@click.argument("phone")
@click.argument("name")
@click.option(
    "--role",
    "roles",
    multiple=True,
    default=["member"],
    show_default=True,
    type=click.Choice(["member", "lawyer", "staff", "admin"]),
)
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
@click.option("--member-no", default=None)
def create_user_command(
    phone: str, name: str, roles: tuple[str, ...], password: str, member_no: str | None
) -> None:
    """Create an account that can log in at once."""
    try:
        with db.transaction():
            user = create_user(phone, name, password=password, roles=roles, member_no=member_no)
    except DomainError as error:
        raise click.ClickException(str(error.message)) from error
    click.echo(f"Created user {user.id} ({user.phone}) with roles {', '.join(sorted(user.roles))}")


@click.command("import-roster")
@with_appcontext
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Check every row and write nothing.")
def import_roster(file: Path, dry_run: bool) -> None:
    """Import the member roster CSV (name, phone, member_no, enterprise, branch)."""
    try:
        text = decode_upload(file.read_bytes())
        with db.transaction():
            rows = parse_roster(text)
            bad = [row for row in rows if not row.ok]
            for row in bad:
                click.echo(f"line {row.line}: {'; '.join(row.errors)}", err=True)
            if dry_run:
                click.echo(f"{len(rows) - len(bad)} rows ok, {len(bad)} rows with errors")
                return
            one_roster_import_at_a_time()
            counts = apply_rows(rows)
    except CsvDecodeError as error:
        raise click.ClickException("The file is not UTF-8 or GBK text.") from error
    except DomainError as error:
        raise click.ClickException(str(error.message)) from error
    click.echo(
        f"created {counts['created']}, updated {counts['updated']}, skipped {counts['skipped']}"
    )


def run_integrity_checks() -> list[tuple[str, str]]:
    """Every registered invariant's violations, as (check name, violation)."""
    problems: list[tuple[str, str]] = []
    session = db.session()
    for check in integrity_checks:
        problems.extend((check.name, violation) for violation in check.run(session))
    session.rollback()
    return problems


@click.command("check-integrity")
@with_appcontext
def check_integrity() -> None:
    """Verify every invariant; exit 1 naming each violation."""
    problems = run_integrity_checks()
    for name, violation in problems:
        click.echo(f"VIOLATION [{name}] {violation}", err=True)
    if problems:
        click.echo(f"{len(problems)} violation(s) found.", err=True)
        sys.exit(1)
    click.echo(f"OK: {len(integrity_checks)} checks passed.")


@click.command("backup")
@with_appcontext
@click.option(
    "--dest",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder for the backup (default: instance/backups).",
)
def backup(dest: Path | None) -> None:
    """Copy the SQLite database with the online backup API (PostgreSQL: use pg_dump)."""
    url = sa.engine.make_url(current_app.config["DATABASE_URL"])
    if url.get_backend_name() != "sqlite":
        raise click.ClickException(
            "This database is PostgreSQL: back it up with pg_dump -Fc (see README, Backups)."
        )
    dest = dest or Path(current_app.instance_path) / "backups"
    dest.mkdir(parents=True, exist_ok=True)
    target = dest / f"memberplatform-{datetime.now():%Y%m%d-%H%M%S}.sqlite3"
    source = sqlite3.connect(url.database)
    try:
        with sqlite3.connect(target) as copy:
            source.backup(copy)  # one step: in WAL mode writers are not blocked
    finally:
        source.close()
    click.echo(str(target))


def _alembic_config():
    from alembic.config import Config

    from memberplatform import PROJECT_DIR

    config = Config(str(PROJECT_DIR / "alembic.ini"))
    config.set_main_option("script_location", str(PROJECT_DIR / "migrations"))
    return config


@click.command("db-upgrade")
@with_appcontext
@click.argument("revision", default="head")
def db_upgrade(revision: str) -> None:
    """Apply migrations (alembic upgrade)."""
    from alembic import command

    command.upgrade(_alembic_config(), revision)


@click.command("db-downgrade")
@with_appcontext
@click.argument("revision")
def db_downgrade(revision: str) -> None:
    """Revert migrations (alembic downgrade)."""
    from alembic import command

    command.downgrade(_alembic_config(), revision)


commands = [
    seed_demo,
    create_user_command,
    import_roster,
    check_integrity,
    backup,
    db_upgrade,
    db_downgrade,
]
