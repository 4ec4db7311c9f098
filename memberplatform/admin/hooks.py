"""What the console registers: exports, the public figures card, integrity checks,
demo data; and the labels it shows for roles, statuses and audit actions."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa
import sqlalchemy.orm as so

from memberplatform.admin import services
from memberplatform.admin.models import PasswordReset, StaffScope
from memberplatform.auth.models import UnionBranch, User, UserRole
from memberplatform.core.registry import demo_seeder, home_panel, integrity_check, register_export
from memberplatform.web.i18n import lazy_gettext as _l

ROLE_LABELS: dict[str, Any] = {
    "member": _l("Member"),
    "lawyer": _l("Lawyer"),
    "staff": _l("Union staff"),
    "admin": _l("Administrator"),
}
STATUS_LABELS: dict[str, Any] = {
    "pending": _l("Waiting for approval"),
    "active": _l("Active"),
    "disabled": _l("Disabled"),
}
STATUS_CLASSES = {"pending": "status-warn", "active": "status-ok", "disabled": "status-bad"}
TAG_LABELS: dict[str, Any] = {"returned-to-work": _l("Returned to work")}

#: audit action code -> label; unknown codes (other domains') are shown as they are
ACTION_LABELS: dict[str, Any] = {
    "user.roles": _l("Roles changed"),
    "user.tags": _l("Tags changed"),
    "user.disable": _l("Account disabled"),
    "user.enable": _l("Account enabled"),
    "user.approve": _l("Registration approved"),
    "user.scope": _l("Branch limit changed"),
    "user.password_reset": _l("Password reset link issued"),
    "user.password_reset_used": _l("Password set with a reset link"),
    "roster.import": _l("Roster imported"),
    "branch.create": _l("Union branch added"),
    "branch.rename": _l("Union branch renamed"),
    "enterprise.create": _l("Enterprise added"),
    "enterprise.rename": _l("Enterprise renamed"),
    "export.members": _l("Members exported"),
    "export.audit": _l("Audit trail exported"),
    "points.grant": _l("Points granted"),
    "points.adjust": _l("Points corrected"),
}

#: links from a member's page to other domains' staff pages about that member:
#: (label, endpoint, query parameter for the user id or None); shown only if the
#: endpoint exists, so the console never depends on another domain being there
MEMBER_LINKS: list[tuple[Any, str, str | None]] = [
    (_l("Grant points"), "points.grant", None),
    (_l("Points history"), "points.staff_member", "user_id"),
    (_l("Kit claims"), "kits.staff_claims", "member"),
    (_l("Points donations"), "donations.staff_donations", "member"),
    (_l("Courses and exams"), "courses.staff_enrolments", "member"),
    (_l("Legal requests"), "legal.staff_requests", "member"),
]


def register_member_link(label: Any, endpoint: str, param: str | None = "member") -> None:
    """Let a domain link its staff page about one member from the member's console page."""
    if not any(link[1] == endpoint for link in MEMBER_LINKS):
        MEMBER_LINKS.append((label, endpoint, param))


register_export(_l("Members and accounts (roster columns, re-importable)"), "admin.export_members")
register_export(_l("Audit trail"), "admin.export_audit")


@home_panel("admin.members_served", 90, "admin/_home_card.html")
def _members_served_card() -> dict[str, Any]:
    return {"members_served": services.members_served()}


@integrity_check("admin: branch limits belong to staff accounts that are not admins")
def _scopes_on_staff(session: so.Session) -> Iterator[str]:
    staff = sa.select(UserRole.user_id).where(UserRole.role == "staff")
    admins = sa.select(UserRole.user_id).where(UserRole.role == "admin")
    for (user_id,) in session.execute(
        sa.select(StaffScope.user_id).where(
            sa.or_(StaffScope.user_id.not_in(staff), StaffScope.user_id.in_(admins))
        )
    ):
        yield f"user {user_id} is limited to a branch but is not plain staff"


@integrity_check("admin: when admin accounts exist, at least one is active")
def _an_active_admin(session: so.Session) -> Iterator[str]:
    counts = session.execute(
        sa.select(sa.func.count(User.id), sa.func.count(User.id).filter(User.status == "active"))
        .join(UserRole, UserRole.user_id == User.id)
        .where(UserRole.role == "admin")
    ).one()
    if counts[0] and not counts[1]:
        yield f"{counts[0]} admin account(s), none active"


@integrity_check("admin: a password reset link is used at most once, before it expires")
def _resets_in_time(session: so.Session) -> Iterator[str]:
    for reset_id, user_id in session.execute(
        sa.select(PasswordReset.id, PasswordReset.user_id).where(
            PasswordReset.used_at.is_not(None),
            sa.or_(
                PasswordReset.used_at > PasswordReset.expires_at,
                PasswordReset.used_at < PasswordReset.created_at,
            ),
        )
    ):
        yield f"reset {reset_id} of user {user_id} was used outside its validity"


DEMO_SCOPED_BRANCH = "软件园联合工会"


@demo_seeder("admin", 60)
def _demo(session: so.Session, users: Any, *_: Any) -> None:
    """The demo staff user (13700000000) is limited to the 软件园联合工会 branch."""
    branch = session.scalar(sa.select(UnionBranch).where(UnionBranch.name == DEMO_SCOPED_BRANCH))
    if branch is None or session.get(StaffScope, users.staff.id) is not None:
        return
    if "admin" in users.staff.roles:
        return
    session.add(StaffScope(user_id=users.staff.id, branch_id=branch.id))
    session.flush()
