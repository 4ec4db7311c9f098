"""Who is signed in: one Core statement per request, the ORM record only on demand.

Every request checks its session against the database (a changed password ends
the session), and every page shows navigation by role. Loading a full ORM
``User`` with its roles for that costs more than the rest of a small htmx
fragment, so ``current_user`` is a :class:`SignedInUser`: the user's row, roles
and tags (eligibility rules) from one Core statement. Reading anything else (``enterprise``,
``password_hash``…) loads the ORM :class:`~memberplatform.auth.models.User`
through :attr:`SignedInUser.record`, once per request. It is read-only: code
that changes the user changes ``current_user.record``, and an assignment to
``current_user`` itself fails loudly instead of being lost.
"""

from __future__ import annotations

import contextlib
import hmac
from functools import cache
from typing import Any

import sqlalchemy as sa
import sqlalchemy.orm as so
from flask.globals import _cv_app, _cv_request
from flask.wrappers import Request
from flask_login import UserMixin

from memberplatform.auth.models import Enterprise, MemberTag, UnionBranch, User, UserRole
from memberplatform.core import nav
from memberplatform.db import SAFE_METHODS
from memberplatform.extensions import db

ROW_FIELDS = (
    "id",
    "phone",
    "name",
    "status",
    "member_no",
    "enterprise_id",
    "branch_id",
    "locale",
    "session_token",
)


class SignedInUser(UserMixin):
    __slots__ = (
        *ROW_FIELDS,
        "enterprise_name",
        "branch_name",
        "roles",
        "tags",
        "nav_counts",
        "_record",
    )

    id: int
    phone: str
    name: str
    status: str
    member_no: str | None
    enterprise_id: int | None
    branch_id: int | None
    locale: str | None
    session_token: str
    enterprise_name: str | None
    branch_name: str | None
    roles: frozenset[str]
    #: the member's tags (eligibility rules: 农民工, 困难职工 …)
    tags: frozenset[str]
    #: the header's counts (balance, unread) as read with the user (see core.nav)
    nav_counts: dict[str, int]

    def __init__(self, row: Any, roles: frozenset[str], tags: frozenset[str]) -> None:
        for name in (*ROW_FIELDS, "enterprise_name", "branch_name"):
            object.__setattr__(self, name, getattr(row, name))
        object.__setattr__(self, "roles", roles)
        object.__setattr__(self, "_record", None)
        object.__setattr__(self, "tags", tags)
        object.__setattr__(self, "nav_counts", nav.counts_of(row))

    # --- what Flask-Login and every page ask --------------------------------
    def get_id(self) -> str:
        return f"{self.id}:{self.session_token}"

    @property
    def is_active(self) -> bool:
        return self.status == "active"

    def has_role(self, *roles: str) -> bool:
        """True when the user holds any of ``roles`` (admin holds every role)."""
        mine = self.roles
        return "admin" in mine or any(role in mine for role in roles)

    # --- everything else: the ORM record ------------------------------------
    @property
    def record(self) -> User:
        """The ORM user (loaded on first use in this request)."""
        record = self._record
        if record is None:
            # Roles and tags load on access; enterprise and branch come joined.
            options = [so.lazyload(User.role_rows), so.lazyload(User.tag_rows)]
            record = db.session.get(User, self.id, options=options)
            object.__setattr__(self, "_record", record)
        return record

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):  # never pose as an ORM instance (_sa_instance_state…)
            raise AttributeError(name)
        return getattr(self.record, name)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"current_user is read-only: set current_user.record.{name}")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SignedInUser | User) and other.id == self.id

    def __hash__(self) -> int:
        return hash(("user", self.id))

    def __repr__(self) -> str:
        return f"<SignedInUser {self.id}>"


@cache
def _statement(counts: tuple[str, ...]) -> sa.Select:
    """The user's row (with its enterprise's and branch's names and the header's
    ``counts``) once per role and tag. Built once: building it costs more than running it."""
    users, roles, tags = User.__table__, UserRole.__table__, MemberTag.__table__
    enterprises, branches = Enterprise.__table__, UnionBranch.__table__
    user_id = sa.bindparam("user_id")
    labels = sa.union_all(
        sa.select(sa.literal("role").label("kind"), roles.c.role.label("value")).where(
            roles.c.user_id == user_id
        ),
        sa.select(sa.literal("tag").label("kind"), tags.c.tag.label("value")).where(
            tags.c.user_id == user_id
        ),
    ).subquery("labels")
    return (
        sa.select(
            *(users.c[name] for name in ROW_FIELDS),
            enterprises.c.name.label("enterprise_name"),
            branches.c.name.label("branch_name"),
            *nav.columns(user_id),
            labels.c.kind,
            labels.c.value,
        )
        .select_from(
            users.outerjoin(labels, sa.true())
            .outerjoin(enterprises, enterprises.c.id == users.c.enterprise_id)
            .outerjoin(branches, branches.c.id == users.c.branch_id)
        )
        .where(users.c.id == user_id)
    )


def load_signed_in(session_id: str) -> SignedInUser | None:
    """Flask-Login's user loader: ``"<id>:<session token>"`` → the user, or None."""
    raw_id, _, token = session_id.partition(":")
    if not raw_id.isdigit():
        return None
    rows = _read_identity(int(raw_id))
    if not rows or not hmac.compare_digest(rows[0].session_token, token):
        return None  # unknown, or the password changed (token rotated): the session has ended
    roles = frozenset(row.value for row in rows if row.kind == "role")
    tags = frozenset(row.value for row in rows if row.kind == "tag")
    return SignedInUser(rows[0], roles, tags)


def _read_identity(user_id: int) -> list[Any]:
    """The identity rows. A request that may write reads them with :meth:`db.reading`:
    on SQLite its ``BEGIN IMMEDIATE`` then starts at the view's first write instead of
    before the session check, so writers queue for less time in a rush. The reads the
    view declared (``reads_with_user``) go with them: the user id is the session's, and
    a session that turns out to have ended only wasted the reads (nothing is shown)."""
    request_context = _cv_request.get(None)  # not the proxies: every request runs this
    may_write = request_context is not None and request_context.request.method not in SAFE_METHODS
    identity = (_statement(nav.names()), {"user_id": user_id})
    with db.reading() if may_write else contextlib.nullcontext():
        ahead = _view_reads(request_context.request, user_id) if request_context else []
        if ahead:  # one round trip on PostgreSQL for the user and the view's first reads
            db.read_ahead([identity, *ahead])
        return db.read(*identity).all()


def _view_reads(request: Request, user_id: int) -> list[tuple[Any, dict[str, Any]]]:
    """What ``request``'s view declared with ``web.access.reads_with_user``."""
    view = _cv_app.get().app.view_functions.get(request.endpoint or "")
    reads = getattr(view, "reads_with_user", None)
    return reads(user_id, **(request.view_args or {})) if reads is not None else []
