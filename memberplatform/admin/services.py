"""The staff console's operations: branch scope, accounts, roster import, union
structure, figures, the audit trail query and the CSV row streams.

Every function that changes something records an audit entry in the same
transaction and only flushes (the request commits once).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
import sqlalchemy.orm as so
from flask import current_app
from sqlalchemy.exc import IntegrityError

from memberplatform.admin.models import PasswordReset, StaffScope
from memberplatform.audit.models import AuditEntry
from memberplatform.audit.services import record
from memberplatform.auth import services as accounts
from memberplatform.auth.models import (
    ROLES,
    Enterprise,
    MemberTag,
    UnionBranch,
    User,
    UserRole,
    new_session_token,
)
from memberplatform.auth.roster import RosterRow, parse_roster
from memberplatform.auth.signals import user_activated
from memberplatform.core.csvio import CsvDecodeError, decode_upload
from memberplatform.core.errors import DomainError, Forbidden, NotFound
from memberplatform.db import utcnow
from memberplatform.extensions import db
from memberplatform.web.i18n import lazy_gettext as _l

STATUSES = ("pending", "active", "disabled")
CHUNK = 1000  # rows per keyset chunk (exports) and per bulk statement (roster)
RESET_HOURS = 72
ROSTER_LOCK = 8_151_001  # PostgreSQL advisory lock key: one roster import at a time
SHA_RE = re.compile(r"^[0-9a-f]{64}$")
TAG_RE = re.compile(r"^[^\s,，]{1,40}$")
MAX_TAGS = 20


# --- branch scope --------------------------------------------------------------------


def staff_branch_id(actor: User) -> int | None:
    """The one branch a staff user is limited to, or None (admins and unscoped staff)."""
    if "admin" in actor.roles:
        return None
    return db.session.scalar(sa.select(StaffScope.branch_id).where(StaffScope.user_id == actor.id))


def effective_branch(scope: int | None, requested: Any) -> int | None:
    """The branch filter to apply: a scoped user's own branch, else the requested one."""
    if scope is not None:
        return scope
    try:
        return int(requested) if requested not in (None, "") else None
    except (TypeError, ValueError):
        return None


def load_member(user_id: int, scope: int | None) -> User:
    """The account, or NotFound when unknown or outside the branch ``scope``."""
    user = db.session.get(User, user_id)
    if user is None or (scope is not None and user.branch_id != scope):
        raise NotFound(_l("There is no such member."))
    return user


def can_manage(actor: User, user: User) -> bool:
    """Admins manage every account; staff manage members only (no staff, lawyer, admin)."""
    if "admin" in actor.roles:
        return True
    return "staff" in actor.roles and not (user.roles & {"staff", "lawyer", "admin"})


def _require_manage(actor: User, user: User) -> None:
    if not can_manage(actor, user):
        raise Forbidden(_l("Only an admin may change this account."))


def _require_admin(actor: User) -> None:
    if "admin" not in actor.roles:
        raise Forbidden(_l("Only an admin may do this."))


def _locked_user(user_id: int) -> User:
    """The account, re-read and row-locked (FOR NO KEY UPDATE: inserts that merely
    reference the user, like audit entries, do not wait for it)."""
    user = db.session.scalar(
        sa.select(User)
        .where(User.id == user_id)
        .with_for_update(of=User, key_share=True)
        .execution_options(populate_existing=True)
    )
    if user is None:
        raise NotFound(_l("There is no such member."))
    return user


def _lock_admin_roles() -> None:
    """Lock every admin role row: changes that may remove an active admin queue here.

    Taken before any account row, so two such changes cannot deadlock.
    """
    db.session.execute(
        sa.select(UserRole.user_id)
        .where(UserRole.role == "admin")
        .order_by(UserRole.user_id)
        .with_for_update()
    ).all()


def _guard_last_admin(user_id: int) -> None:
    """Refuse a change that would leave no active admin besides ``user_id``.

    Call with the admin role rows locked (:func:`_lock_admin_roles`), so two admins
    demoting or disabling each other at the same moment queue and the second
    sees the first.
    """
    others = db.session.scalar(
        sa.select(sa.func.count(User.id))
        .join(UserRole, UserRole.user_id == User.id)
        .where(UserRole.role == "admin", User.status == "active", User.id != user_id)
    )
    if not others:
        raise DomainError(
            _l("This is the last active admin: make another admin first."), field="roles"
        )


# --- accounts ------------------------------------------------------------------------


def change_roles(actor: User, user: User, roles: Iterable[str]) -> bool:
    """Set the account's roles (admins only); refuses to remove the last admin."""
    _require_admin(actor)
    wanted = set(roles)
    if not wanted:
        raise DomainError(_l("Choose at least one role."), field="roles")
    if wanted - set(ROLES):
        raise DomainError(_l("Unknown role."), field="roles")
    _lock_admin_roles()
    user = _locked_user(user.id)
    before = sorted(user.roles)
    if set(before) == wanted:
        return False
    if "admin" in before and "admin" not in wanted:
        _guard_last_admin(user.id)
    accounts.set_roles(user, wanted)
    if not wanted & {"staff", "admin"} or "admin" in wanted:
        db.session.execute(sa.delete(StaffScope).where(StaffScope.user_id == user.id))
    record(actor, "user.roles", "user", user.id, {"roles": [before, sorted(wanted)]})
    db.session.flush()
    return True


def parse_tags(text: str) -> list[str]:
    """Tags from a comma-separated field (Chinese or English commas)."""
    tags = sorted({part.strip() for part in re.split(r"[,，\n]", text or "") if part.strip()})
    if len(tags) > MAX_TAGS:
        raise DomainError(_l("At most %(n)s tags.", n=MAX_TAGS), field="tags")
    for tag in tags:
        if not TAG_RE.match(tag):
            raise DomainError(
                _l("Tags are 1–40 characters without spaces: %(tag)s", tag=tag[:40]), field="tags"
            )
    return tags


def change_tags(actor: User, user: User, tags: Iterable[str]) -> bool:
    _require_manage(actor, user)
    user = _locked_user(user.id)
    before = sorted(user.tags)
    wanted = sorted(set(tags))
    if before == wanted:
        return False
    accounts.set_tags(user, wanted)
    record(actor, "user.tags", "user", user.id, {"tags": [before, wanted]})
    db.session.flush()
    return True


def disable_account(actor: User, user: User) -> None:
    """Disable an account and end its sessions (never your own, never the last admin)."""
    if user.id == actor.id:
        raise DomainError(_l("You cannot disable your own account."))
    _require_manage(actor, user)
    if "admin" in user.roles:
        _lock_admin_roles()
        _guard_last_admin(user.id)
    before = user.status
    changed = db.session.execute(
        sa.update(User)
        .where(User.id == user.id, User.status != "disabled")
        .values(status="disabled", session_token=new_session_token())
        .execution_options(synchronize_session=False)
    ).rowcount
    if changed != 1:
        raise DomainError(_l("This account is already disabled."))
    db.session.expire(user, ["status", "session_token"])
    record(actor, "user.disable", "user", user.id, {"status": [before, "disabled"]})


def enable_account(actor: User, user: User) -> None:
    _require_manage(actor, user)
    changed = db.session.execute(
        sa.update(User)
        .where(User.id == user.id, User.status == "disabled")
        .values(status="active")
        .execution_options(synchronize_session=False)
    ).rowcount
    if changed != 1:
        raise DomainError(_l("Only a disabled account can be enabled."))
    db.session.expire(user, ["status"])
    record(actor, "user.enable", "user", user.id, {"status": ["disabled", "active"]})


def approve_account(actor: User, user: User) -> None:
    """Approve a pending self-registration (once, even when two staff click at once)."""
    _require_manage(actor, user)
    accounts.approve(_locked_user(user.id), actor)
    db.session.flush()


def set_staff_scope(actor: User, user: User, branch: UnionBranch | None) -> None:
    """Limit a staff user to one branch (admins only; None lifts the limit)."""
    _require_admin(actor)
    if "staff" not in user.roles or "admin" in user.roles:
        raise DomainError(_l("Only staff accounts (not admins) can be limited to a branch."))
    old = db.session.get(StaffScope, user.id, with_for_update=True)
    before = old.branch_id if old else None
    after = branch.id if branch else None
    if before == after:
        return
    if old is not None and branch is None:
        db.session.delete(old)
    elif old is not None:
        old.branch_id = after
    else:
        db.session.add(StaffScope(user_id=user.id, branch_id=after))
    record(actor, "user.scope", "user", user.id, {"branch_id": [before, after]})
    db.session.flush()


# --- password reset links ------------------------------------------------------------


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class IssuedReset:
    token: str
    expires_at: datetime


def issue_password_reset(actor: User, user: User) -> IssuedReset:
    """A new one-time link for ``user``; earlier unused links stop working."""
    _require_manage(actor, user)
    if user.status == "disabled":
        raise DomainError(_l("Enable the account before resetting its password."))
    now = utcnow()
    db.session.execute(
        sa.update(PasswordReset)
        .where(
            PasswordReset.user_id == user.id,
            PasswordReset.used_at.is_(None),
            PasswordReset.revoked_at.is_(None),
        )
        .values(revoked_at=now)
    )
    hours = current_app.config.get("PASSWORD_RESET_HOURS", RESET_HOURS)
    token = secrets.token_urlsafe(32)
    expires_at = now + timedelta(hours=hours)
    db.session.add(
        PasswordReset(
            user_id=user.id,
            token_hash=_token_hash(token),
            created_by=actor.id,
            created_at=now,
            expires_at=expires_at,
        )
    )
    record(actor, "user.password_reset", "user", user.id, {"expires_at": expires_at.isoformat()})
    db.session.flush()
    return IssuedReset(token, expires_at)


INVALID_LINK = _l("This link is invalid, already used or expired. Ask union staff for a new one.")


def open_reset(token: str) -> tuple[PasswordReset, User]:
    """The usable reset behind ``token`` and its account, or NotFound."""
    if not token or len(token) > 100:
        raise NotFound(INVALID_LINK)
    reset = db.session.scalar(
        sa.select(PasswordReset).where(PasswordReset.token_hash == _token_hash(token))
    )
    if (
        reset is None
        or reset.used_at is not None
        or reset.revoked_at is not None
        or reset.expires_at <= utcnow()
    ):
        raise NotFound(INVALID_LINK)
    user = db.session.get(User, reset.user_id)
    if user is None or user.status == "disabled":
        raise NotFound(INVALID_LINK)
    return reset, user


def reset_password(token: str, password: str) -> User:
    """Set a new password with a one-time link; a second use of the link is refused."""
    reset, user = open_reset(token)
    accounts.validate_password(password, phone=user.phone)
    used = db.session.execute(
        sa.update(PasswordReset)
        .where(
            PasswordReset.id == reset.id,
            PasswordReset.used_at.is_(None),
            PasswordReset.revoked_at.is_(None),
            PasswordReset.expires_at > utcnow(),
        )
        .values(used_at=utcnow())
        .execution_options(synchronize_session=False)
    ).rowcount
    if used != 1:
        raise NotFound(INVALID_LINK)
    user = _locked_user(user.id)
    first_time = user.activated_at is None
    user.password_hash = accounts.hash_password(password)
    user.session_token = new_session_token()
    if first_time:
        user.activated_at = utcnow()
    record(user, "user.password_reset_used", "user", user.id)
    db.session.flush()
    if first_time:
        user_activated.send(current_app._get_current_object(), user=user)
    return user


# --- roster import ---------------------------------------------------------------------


def roster_dir() -> Path:
    folder = Path(current_app.config["UPLOAD_FOLDER"]) / "roster"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def roster_path(sha: str) -> Path:
    if not SHA_RE.match(sha or ""):
        raise NotFound(_l("This roster upload was not found. Please upload the file again."))
    return roster_dir() / f"{sha}.csv"


def decode_roster(data: bytes) -> str:
    if not data:
        raise DomainError(_l("The file is empty."), field="file")
    try:
        return decode_upload(data)
    except CsvDecodeError:
        raise DomainError(
            _l("The file is not a CSV in UTF-8 or GBK. Save it from Excel as CSV."), field="file"
        ) from None


def store_roster(data: bytes, owner_id: int | None = None) -> str:
    """Check that the upload is a roster and keep it until confirmed; returns its SHA-256.

    With ``owner_id`` the stored file belongs to its uploader: only they (and admins)
    may preview or confirm it (see :func:`may_read_roster`).
    """
    parse_roster(decode_roster(data))  # refuses files without the roster's columns
    sha = hashlib.sha256(data).hexdigest()
    path = roster_path(sha)
    if not path.exists():
        path.write_bytes(data)
    if owner_id is not None:
        path.with_suffix(".owner").write_text(str(owner_id))
    return sha


def may_read_roster(sha: str, user: User) -> bool:
    """The uploader of a stored roster, or an admin (a preview holds full phone numbers)."""
    owner = roster_path(sha).with_suffix(".owner")
    if not owner.is_file():
        return user.has_role("admin")
    return user.has_role("admin") or owner.read_text().strip() == str(user.id)


def read_roster(sha: str) -> bytes:
    path = roster_path(sha)
    if not path.is_file():
        raise NotFound(_l("This roster upload was not found. Please upload the file again."))
    return path.read_bytes()


def discard_roster(sha: str) -> None:
    roster_path(sha).unlink(missing_ok=True)
    roster_path(sha).with_suffix(".owner").unlink(missing_ok=True)


def check_roster(actor: User, text: str) -> list[RosterRow]:
    """Every row with its errors (the auth checks plus branch rules); nothing is written."""
    rows = parse_roster(text)
    branches = dict(db.session.execute(sa.select(UnionBranch.name, UnionBranch.id)).all())
    scope = staff_branch_id(actor)
    scope_name = next((name for name, bid in branches.items() if bid == scope), None)
    for row in rows:
        if scope_name is not None:
            row.branch = row.branch or scope_name
            if row.branch != scope_name:
                _refuse(row, _l("You may import members of your own branch only."))
                continue
        if row.branch and row.branch not in branches:
            _refuse(
                row,
                _l(
                    "Unknown union branch “%(name)s”: add it on the branches page first.",
                    name=row.branch,
                ),
            )
    if scope is not None:
        updates = [row.member_no for row in rows if row.ok and row.action == "update"]
        elsewhere: set[str] = set()
        for start in range(0, len(updates), 500):
            elsewhere.update(
                db.session.scalars(
                    sa.select(User.member_no).where(
                        User.member_no.in_(updates[start : start + 500]),
                        sa.or_(User.branch_id != scope, User.branch_id.is_(None)),
                    )
                )
            )
        for row in rows:
            if row.ok and row.member_no in elsewhere:
                _refuse(row, _l("You may import members of your own branch only."))
    return rows


def _refuse(row: RosterRow, message: Any) -> None:
    row.errors.append(str(message))
    row.action = ""


@dataclass(frozen=True)
class RosterSummary:
    total: int
    create: int
    update: int
    bad: int


def summarize(rows: list[RosterRow]) -> RosterSummary:
    create = sum(1 for row in rows if row.ok and row.action == "create")
    update = sum(1 for row in rows if row.ok and row.action == "update")
    return RosterSummary(len(rows), create, update, len(rows) - create - update)


def _insert_ignoring(table: sa.Table, values: list[dict[str, Any]], columns: list[str]) -> None:
    if db.session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    db.session.execute(insert(table).values(values).on_conflict_do_nothing(index_elements=columns))


def apply_rows(rows: list[RosterRow]) -> dict[str, int]:
    """Insert new members and update known ones in bulk (a few statements per 1,000 rows):
    the console's import and ``flask import-roster`` alike.

    Rows are matched by member number; new accounts are members without a password,
    who activate themselves. ``rows`` come checked (``auth.roster.parse_roster``: a
    phone another member has, or a number or phone twice in the file, is an error
    row, skipped here).
    """
    good = [row for row in rows if row.ok]
    counts = {"created": 0, "updated": 0, "skipped": len(rows) - len(good)}
    names = sorted({row.enterprise for row in good if row.enterprise})
    enterprises: dict[str, int] = {}
    for start in range(0, len(names), 500):
        chunk = names[start : start + 500]
        _insert_ignoring(
            Enterprise.__table__,
            [{"name": name, "created_at": utcnow()} for name in chunk],
            ["name"],
        )
        enterprises.update(
            db.session.execute(
                sa.select(Enterprise.name, Enterprise.id).where(Enterprise.name.in_(chunk))
            ).all()
        )
    branches = dict(db.session.execute(sa.select(UnionBranch.name, UnionBranch.id)).all())
    for name in {row.branch for row in good if row.branch} - branches.keys():
        branch = accounts.get_or_create_branch(name)  # only reached outside the console
        branches[name] = branch.id
    numbers = [row.member_no for row in good]
    existing: dict[str, int] = {}
    for start in range(0, len(numbers), 500):
        existing.update(
            db.session.execute(
                sa.select(User.member_no, User.id).where(
                    User.member_no.in_(numbers[start : start + 500])
                )
            ).all()
        )
    creates, updates = [], []
    for row in good:
        values = {
            "name": row.name,
            "phone": row.phone,
            "enterprise_id": enterprises.get(row.enterprise),
            "branch_id": branches.get(row.branch),
        }
        if row.member_no in existing:
            updates.append({"id": existing[row.member_no], **values})
        else:
            creates.append(
                {
                    **values,
                    "member_no": row.member_no,
                    "status": "active",
                    "session_token": new_session_token(),
                    "created_at": utcnow(),
                }
            )
    for start in range(0, len(creates), CHUNK):
        chunk = creates[start : start + CHUNK]
        ids = db.session.scalars(sa.insert(User).returning(User.id), chunk).all()
        db.session.execute(sa.insert(UserRole), [{"user_id": i, "role": "member"} for i in ids])
    for start in range(0, len(updates), CHUNK):
        db.session.execute(sa.update(User), updates[start : start + CHUNK])
    counts["created"], counts["updated"] = len(creates), len(updates)
    db.session.flush()
    db.session.expire_all()
    return counts


def one_roster_import_at_a_time() -> None:
    """Wait for any other roster import (the console's or ``flask import-roster``) to
    end: PostgreSQL's advisory lock, held until this transaction ends (on SQLite the
    import's writing transaction already excludes another)."""
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(sa.select(sa.func.pg_advisory_xact_lock(ROSTER_LOCK)))


def import_roster(actor: User, sha: str) -> dict[str, int]:
    """Apply a previewed roster upload (re-checked now); one import runs at a time."""
    one_roster_import_at_a_time()
    rows = check_roster(actor, decode_roster(read_roster(sha)))
    if not any(row.ok for row in rows):
        raise DomainError(_l("No row can be imported: correct the file and upload it again."))
    counts = apply_rows(rows)
    record(actor, "roster.import", "roster", sha[:16], {**counts, "rows": len(rows)})
    return counts


# --- union structure -----------------------------------------------------------------


def _clean_name(name: str | None) -> str:
    name = " ".join((name or "").split())
    if not name:
        raise DomainError(_l("Enter a name."), field="name")
    if len(name) > 120:
        raise DomainError(_l("Use at most 120 characters."), field="name")
    return name


def _save_name(actor: User, obj: Enterprise | UnionBranch, name: str, kind: str) -> None:
    name = _clean_name(name)
    before = obj.name
    if before == name:
        return
    model = type(obj)
    taken = sa.select(model.id).where(model.name == name)
    if obj.id is not None:
        taken = taken.where(model.id != obj.id)
    if db.session.scalar(taken) is not None:
        raise DomainError(_l("This name is already used."), field="name")
    try:  # the unique key decides a race between two identical requests
        with db.session.begin_nested():
            obj.name = name
            db.session.add(obj)
    except IntegrityError:
        raise DomainError(_l("This name is already used."), field="name") from None
    if before is None:
        record(actor, f"{kind}.create", kind, obj.id, {"name": name})
    else:
        record(actor, f"{kind}.rename", kind, obj.id, {"name": [before, name]})


def create_branch(actor: User, name: str) -> UnionBranch:
    _require_admin(actor)
    branch = UnionBranch()
    _save_name(actor, branch, name, "branch")
    return branch


def rename_branch(actor: User, branch: UnionBranch, name: str) -> None:
    _require_admin(actor)
    _save_name(actor, branch, name, "branch")


def create_enterprise(actor: User, name: str) -> Enterprise:
    _require_admin(actor)
    enterprise = Enterprise()
    _save_name(actor, enterprise, name, "enterprise")
    return enterprise


def rename_enterprise(actor: User, enterprise: Enterprise, name: str) -> None:
    _require_admin(actor)
    _save_name(actor, enterprise, name, "enterprise")


def branches_with_counts(scope: int | None) -> sa.Select:
    counts = (
        sa.select(User.branch_id, sa.func.count(User.id).label("members"))
        .group_by(User.branch_id)
        .subquery()
    )
    query = (
        sa.select(UnionBranch, sa.func.coalesce(counts.c.members, 0))
        .outerjoin(counts, counts.c.branch_id == UnionBranch.id)
        .order_by(UnionBranch.name)
    )
    if scope is not None:
        query = query.where(UnionBranch.id == scope)
    return query


def enterprises_with_counts(scope: int | None, q: str = "") -> sa.Select:
    members = sa.select(User.enterprise_id, sa.func.count(User.id).label("members"))
    if scope is not None:
        members = members.where(User.branch_id == scope)
    counts = members.group_by(User.enterprise_id).subquery()
    query = sa.select(Enterprise, sa.func.coalesce(counts.c.members, 0)).order_by(Enterprise.name)
    if scope is not None:
        query = query.join(counts, counts.c.enterprise_id == Enterprise.id)
    else:
        query = query.outerjoin(counts, counts.c.enterprise_id == Enterprise.id)
    if q:
        query = query.where(Enterprise.name.contains(q, autoescape=True))
    return query


def all_branches() -> list[UnionBranch]:
    return list(db.session.scalars(sa.select(UnionBranch).order_by(UnionBranch.name)))


# --- members list and figures ----------------------------------------------------------


def member_search(branch_id: int | None, q: str = "", status: str = "") -> sa.Select:
    """Accounts matching a name, phone or member number, newest first (roles shown)."""
    query = sa.select(User).options(so.selectinload(User.role_rows)).order_by(User.id.desc())
    if branch_id is not None:
        query = query.where(User.branch_id == branch_id)
    if status in STATUSES:
        query = query.where(User.status == status)
    q = (q or "").strip()[:50]
    if q:
        query = query.where(
            sa.or_(
                User.name.contains(q, autoescape=True),
                User.phone.contains(q, autoescape=True),
                sa.func.upper(User.member_no).contains(q.upper(), autoescape=True),
            )
        )
    return query


def _tz() -> ZoneInfo:
    return ZoneInfo(current_app.config.get("BABEL_DEFAULT_TIMEZONE", "Asia/Shanghai"))


def local_midnight(day: date) -> datetime:
    """The UTC instant at which ``day`` starts in the display time zone."""
    return datetime(day.year, day.month, day.day, tzinfo=_tz()).astimezone(UTC)


def _local_day(column: Any) -> Any:
    """SQL for the local calendar date of a UTC timestamp column, on either engine."""
    minutes = int((utcnow().astimezone(_tz()).utcoffset() or timedelta()).total_seconds() // 60)
    if db.session.get_bind().dialect.name == "postgresql":
        return sa.func.date(column + sa.literal(timedelta(minutes=minutes), sa.Interval))
    return sa.func.date(column, f"{minutes:+d} minutes")


def _is_member() -> Any:
    return sa.exists().where(UserRole.user_id == User.id, UserRole.role == "member")


def member_figures(branch_id: int | None) -> dict[str, int]:
    """Members (holders of the member role) by state, in one aggregate query."""
    query = sa.select(
        sa.func.count(User.id).label("members"),
        sa.func.count(User.id).filter(User.status == "active").label("active"),
        sa.func.count(User.id).filter(User.activated_at.is_not(None)).label("activated"),
        sa.func.count(User.id).filter(User.status == "pending").label("pending"),
        sa.func.count(User.id).filter(User.status == "disabled").label("disabled"),
    ).where(_is_member())
    if branch_id is not None:
        query = query.where(User.branch_id == branch_id)
    return dict(db.session.execute(query).one()._mapping)


def activation_trend(branch_id: int | None, days: int = 30) -> list[tuple[date, int]]:
    """Activations per local day over the last ``days`` days (zeros included)."""
    today = utcnow().astimezone(_tz()).date()
    first = today - timedelta(days=days - 1)
    day = _local_day(User.activated_at)
    query = (
        sa.select(day, sa.func.count(User.id))
        .where(User.activated_at >= local_midnight(first), _is_member())
        .group_by(day)
    )
    if branch_id is not None:
        query = query.where(User.branch_id == branch_id)
    found = {str(value)[:10]: count for value, count in db.session.execute(query)}
    return [
        (first + timedelta(days=i), found.get((first + timedelta(days=i)).isoformat(), 0))
        for i in range(days)
    ]


def pending_count(branch_id: int | None) -> int:
    query = sa.select(sa.func.count(User.id)).where(User.status == "pending")
    if branch_id is not None:
        query = query.where(User.branch_id == branch_id)
    return db.session.scalar(query) or 0


def members_served() -> int:
    """Activated members (the public impact figure; no names)."""
    return (
        db.session.scalar(
            sa.select(sa.func.count(User.id)).where(User.activated_at.is_not(None), _is_member())
        )
        or 0
    )


def structure_totals() -> dict[str, int]:
    row = db.session.execute(
        sa.select(
            sa.select(sa.func.count(Enterprise.id)).scalar_subquery().label("enterprises"),
            sa.select(sa.func.count(UnionBranch.id)).scalar_subquery().label("branches"),
        )
    ).one()
    return dict(row._mapping)


# --- audit trail -----------------------------------------------------------------------


@dataclass(frozen=True)
class AuditFilter:
    actor: str = ""
    object_type: str = ""
    object_id: str = ""
    since: date | None = None
    until: date | None = None


def parse_day(raw: str | None) -> date | None:
    try:
        return date.fromisoformat((raw or "").strip()) if raw else None
    except ValueError:
        return None


def _audit_where(scope: int | None, filters: AuditFilter) -> list[Any]:
    where: list[Any] = []
    if scope is not None:
        in_branch = sa.select(User.id).where(User.branch_id == scope)
        in_branch_text = sa.select(sa.cast(User.id, sa.String)).where(User.branch_id == scope)
        where.append(
            sa.or_(
                AuditEntry.actor_id.in_(in_branch),
                sa.and_(AuditEntry.object_type == "user", AuditEntry.object_id.in_(in_branch_text)),
            )
        )
    who = filters.actor.strip()[:50]
    if who:
        where.append(
            AuditEntry.actor_id.in_(
                sa.select(User.id).where(
                    sa.or_(
                        User.phone == who,
                        User.member_no == who,
                        User.name.contains(who, autoescape=True),
                    )
                )
            )
        )
    if filters.object_type:
        where.append(AuditEntry.object_type == filters.object_type[:40])
    if filters.object_id:
        where.append(AuditEntry.object_id == filters.object_id[:40])
    if filters.since:
        where.append(AuditEntry.created_at >= local_midnight(filters.since))
    if filters.until:
        where.append(AuditEntry.created_at < local_midnight(filters.until + timedelta(days=1)))
    return where


def audit_select(scope: int | None, filters: AuditFilter) -> sa.Select:
    """Audit entries with their actor's name and phone, newest first."""
    actor = so.aliased(User)
    return (
        sa.select(AuditEntry, actor.name, actor.phone)
        .outerjoin(actor, actor.id == AuditEntry.actor_id)
        .where(*_audit_where(scope, filters))
        .order_by(AuditEntry.id.desc())
    )


def audit_object_types() -> list[str]:
    return list(
        db.session.scalars(
            sa.select(AuditEntry.object_type).distinct().order_by(AuditEntry.object_type)
        )
    )


# --- streamed CSV rows -----------------------------------------------------------------


def _keyset(query: sa.Select, key: Any, *, descending: bool = False) -> Iterator[list[Any]]:
    """Chunks of ``query`` by ``key`` (ids), each a short read; memory stays flat."""
    last = None
    while True:
        chunk_query = query.order_by(key.desc() if descending else key).limit(CHUNK)
        if last is not None:
            chunk_query = chunk_query.where(key < last if descending else key > last)
        rows = db.session.execute(chunk_query).all()
        db.session.commit()  # end the read between chunks (nothing is pending)
        if not rows:
            return
        yield rows
        last = rows[-1][0]


def member_rows(branch_id: int | None, status: str = "") -> Iterator[tuple[Any, ...]]:
    """(id, name, phone, member_no, enterprise, branch, status, activated_at, roles, tags)."""
    query = (
        sa.select(
            User.id,
            User.name,
            User.phone,
            User.member_no,
            Enterprise.name,
            UnionBranch.name,
            User.status,
            User.activated_at,
        )
        .outerjoin(Enterprise, Enterprise.id == User.enterprise_id)
        .outerjoin(UnionBranch, UnionBranch.id == User.branch_id)
    )
    if branch_id is not None:
        query = query.where(User.branch_id == branch_id)
    if status in STATUSES:
        query = query.where(User.status == status)
    for chunk in _keyset(query, User.id):
        ids = [row[0] for row in chunk]
        roles: dict[int, list[str]] = {}
        for user_id, role in db.session.execute(
            sa.select(UserRole.user_id, UserRole.role)
            .where(UserRole.user_id.in_(ids))
            .order_by(UserRole.role)
        ):
            roles.setdefault(user_id, []).append(role)
        tags: dict[int, list[str]] = {}
        for user_id, tag in db.session.execute(
            sa.select(MemberTag.user_id, MemberTag.tag)
            .where(MemberTag.user_id.in_(ids))
            .order_by(MemberTag.tag)
        ):
            tags.setdefault(user_id, []).append(tag)
        for row in chunk:
            yield (*row, roles.get(row[0], []), tags.get(row[0], []))


def audit_rows(scope: int | None, filters: AuditFilter) -> Iterator[tuple[Any, ...]]:
    """(id, created_at, actor name, actor phone, action, object_type, object_id, changes, ip)."""
    actor = so.aliased(User)
    query = (
        sa.select(
            AuditEntry.id,
            AuditEntry.created_at,
            actor.name,
            actor.phone,
            AuditEntry.action,
            AuditEntry.object_type,
            AuditEntry.object_id,
            AuditEntry.changes,
            AuditEntry.ip,
        )
        .outerjoin(actor, actor.id == AuditEntry.actor_id)
        .where(*_audit_where(scope, filters))
    )
    for chunk in _keyset(query, AuditEntry.id, descending=True):
        yield from chunk
