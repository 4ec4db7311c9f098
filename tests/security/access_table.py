"""The declared access matrix: every (method, rule) of the URL map → expected status per actor.

Columns (see ``tests/security/world.py``): anonymous, member (the owner of the row's
object), other_member, lawyer (the one serving the object), other_lawyer, staff (the
owner's branch), other_staff (another branch), admin.

Cells: ``OK`` = 200, ``LOGIN`` = 302 to /auth/login, or an exact status code.
POST rows send the row's ``data`` (default: an empty form, CSRF off): the matrix is
about *who gets in*; what a form does with its input is the fuzz tests' business.

A route added to the app without a row here fails ``test_every_route_is_in_the_table``.

A cell always holds the *intended* answer. When the app answers otherwise because of a
known security bug, the row names that actor in ``bugs`` (with the reason): the row is then
reported as xfail until the bug is fixed, and fails once it is (remove the entry then).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tests.security import objects
from tests.security.world import ACTORS

OK, LOGIN = "ok", "login"


def row(*cells: Any) -> dict[str, Any]:
    assert len(cells) == len(ACTORS), cells
    return dict(zip(ACTORS, cells, strict=True))


def same(cell: Any) -> dict[str, Any]:
    return row(*[cell] * len(ACTORS))


PUBLIC = same(OK)
LOGGED_IN = row(LOGIN, OK, OK, OK, OK, OK, OK, OK)
STAFF = row(LOGIN, 403, 403, 403, 403, OK, OK, OK)
MEMBERS = row(LOGIN, OK, OK, 403, 403, 403, 403, OK)


def logged_in(cell: Any) -> dict[str, Any]:
    return row(LOGIN, *[cell] * (len(ACTORS) - 1))


def staff(cell: Any) -> dict[str, Any]:
    return row(LOGIN, 403, 403, 403, 403, cell, cell, cell)


def members(cell: Any) -> dict[str, Any]:
    return row(LOGIN, cell, cell, 403, 403, 403, 403, cell)


@dataclass(frozen=True)
class Case:
    expect: dict[str, Any]
    #: the URL to request (a callable builds a fresh object for every cell); default: the rule
    path: str | Callable[[Any], str] | None = None
    data: dict[str, Any] | Callable[[Any], dict[str, Any]] = field(default_factory=dict)
    note: str = ""
    #: known bugs: actor → why the app's answer differs from ``expect`` (see the docstring)
    bugs: dict[str, str] = field(default_factory=dict)


# --- object builders used by rows (each call makes a fresh object owned by "member") ----------


def _notification(w) -> int:
    return objects.notification(w, "member")


def _campaign_path(suffix: str = "", status: str = "open") -> Callable[[Any], str]:
    return lambda w: f"/donations/{objects.campaign(w, status)}{suffix}"


def _manage_path(suffix: str = "", status: str = "open") -> Callable[[Any], str]:
    return lambda w: f"/donations/manage/{objects.campaign(w, status)}{suffix}"


TABLE: dict[tuple[str, str], Case] = {
    # --- home -----------------------------------------------------------------------------
    ("GET", "/"): Case(PUBLIC),
    ("GET", "/healthz"): Case(PUBLIC),
    ("GET", "/me"): Case(LOGGED_IN),
    ("POST", "/lang"): Case(same(303), data={"locale": "en"}),
    ("GET", "/static/<path:filename>"): Case(PUBLIC, path="/static/css/app.css"),
    # --- auth -----------------------------------------------------------------------------
    ("GET", "/auth/login"): Case(PUBLIC),
    ("POST", "/auth/login"): Case(same(422), note="empty form: refused, for everyone"),
    ("POST", "/auth/logout"): Case(same(303)),
    ("GET", "/auth/activate"): Case(PUBLIC),
    ("POST", "/auth/activate"): Case(same(422)),
    ("GET", "/auth/register"): Case(same(404), note="SELF_REGISTRATION off (default)"),
    ("POST", "/auth/register"): Case(same(404)),
    ("GET", "/auth/password"): Case(LOGGED_IN),
    ("POST", "/auth/password"): Case(logged_in(422)),
    # --- points ---------------------------------------------------------------------------
    ("GET", "/points"): Case(LOGGED_IN, note="always the viewer's own points"),
    ("GET", "/points/badge"): Case(LOGGED_IN),
    ("POST", "/points/check-in"): Case(logged_in(303)),
    ("GET", "/points/grant"): Case(STAFF),
    ("POST", "/points/grant"): Case(staff(422)),
    ("GET", "/points/grants/bulk"): Case(STAFF),
    ("POST", "/points/grants/bulk"): Case(staff(422)),
    ("POST", "/points/grants/bulk/confirm"): Case(staff(303), note="expired/absent upload"),
    # --- notifications ----------------------------------------------------------------------
    ("GET", "/notifications"): Case(LOGGED_IN, note="always the viewer's own"),
    ("GET", "/notifications/badge"): Case(LOGGED_IN),
    ("POST", "/notifications/<int:notification_id>/read"): Case(
        row(LOGIN, 303, 404, 404, 404, 404, 404, 404),
        path=lambda w: f"/notifications/{_notification(w)}/read",
        note="the owner only; even admin gets 404 (private to the owner)",
    ),
    ("POST", "/notifications/read-all"): Case(logged_in(303)),
}


def _donation(w) -> dict:
    return objects.donation(w, "member")


def _fulfilment_file(w) -> str:
    return f"/donations/fulfilments/{objects.fulfilment(w)['fulfilment_id']}/file"


OWNER_ONLY = row(LOGIN, OK, 404, 404, 404, 404, 404, OK)  # admin sees everything

TABLE.update(
    {
        # --- donations (public pages) ---------------------------------------------------------
        ("GET", "/donations"): Case(PUBLIC),
        ("GET", "/donations/<int:campaign_id>"): Case(PUBLIC, path=_campaign_path()),
        ("GET", "/donations/<int:campaign_id>/progress"): Case(
            PUBLIC, path=_campaign_path("/progress")
        ),
        ("GET", "/donations/<int:campaign_id>/totals"): Case(
            PUBLIC, path=_campaign_path("/totals")
        ),
        ("GET", "/donations/verify/<number>"): Case(
            PUBLIC,
            path=lambda w: f"/donations/verify/{_donation(w)['number']}",
            note="public proof, the donor's name masked",
        ),
        # --- donations (members) --------------------------------------------------------------
        ("GET", "/donations/<int:campaign_id>/quote"): Case(
            logged_in(302),
            path=_campaign_path("/quote?units=2"),
            note="an htmx fragment; a plain GET is sent to the campaign page",
        ),
        ("POST", "/donations/<int:campaign_id>/confirm"): Case(
            members(422), path=_campaign_path("/confirm")
        ),
        ("POST", "/donations/<int:campaign_id>/donate"): Case(
            members(422), path=_campaign_path("/donate")
        ),
        ("GET", "/donations/my/<int:donation_id>"): Case(
            row(LOGIN, 302, 404, 404, 404, 404, 404, 302),
            path=lambda w: f"/donations/my/{_donation(w)['donation_id']}",
            note="redirects the donor to the certificate",
        ),
        ("GET", "/donations/certificates/<number>"): Case(
            OWNER_ONLY, path=lambda w: f"/donations/certificates/{_donation(w)['number']}"
        ),
        ("GET", "/donations/fulfilments/<int:fulfilment_id>/file"): Case(
            LOGGED_IN, path=_fulfilment_file, note="proof of delivery, for any logged-in user"
        ),
        # --- donations (staff) ----------------------------------------------------------------
        ("GET", "/donations/manage"): Case(STAFF),
        ("GET", "/donations/manage/new"): Case(STAFF),
        ("POST", "/donations/manage/new"): Case(staff(422)),
        ("GET", "/donations/manage/<int:campaign_id>"): Case(STAFF, path=_manage_path()),
        ("GET", "/donations/manage/<int:campaign_id>/edit"): Case(
            STAFF, path=_manage_path("/edit")
        ),
        ("POST", "/donations/manage/<int:campaign_id>/edit"): Case(
            staff(422), path=_manage_path("/edit")
        ),
        ("GET", "/donations/manage/<int:campaign_id>/<action>"): Case(
            STAFF, path=_manage_path("/cancel")
        ),
        ("POST", "/donations/manage/<int:campaign_id>/<action>"): Case(
            staff(422), path=_manage_path("/cancel"), note="cancel without a reason"
        ),
        ("POST", "/donations/manage/<int:campaign_id>/fulfilments"): Case(
            staff(422), path=_manage_path("/fulfilments")
        ),
        ("GET", "/donations/manage/<int:campaign_id>/export.csv"): Case(
            STAFF, path=_manage_path("/export.csv")
        ),
        ("GET", "/donations/manage/export.csv"): Case(STAFF),
    }
)


# --- staff console (admin domain) ------------------------------------------------------------
#
# ``staff`` and ``other_staff`` are limited to their branch (StaffScope): objects of the
# owner's branch (A) are 404 for the staff of branch B; roles, branch limits and the union
# structure are changed by admins only.

SCOPED = row(LOGIN, 403, 403, 403, 403, OK, 404, OK)  # an object of branch A in the console
ADMIN = row(LOGIN, 403, 403, 403, 403, 403, 403, OK)


def scoped(cell: Any) -> dict[str, Any]:
    return row(LOGIN, 403, 403, 403, 403, cell, 404, cell)


def admin(cell: Any) -> dict[str, Any]:
    return row(LOGIN, 403, 403, 403, 403, 403, 403, cell)


def _account_path(suffix: str = "") -> Callable[[Any], str]:
    """A fresh member of branch A for every cell (a disable or a reset changes it)."""
    return lambda w: f"/admin/members/{objects.account(w)}{suffix}"


def _branch_a(w) -> str:
    from tests.security.world import BRANCH_A

    return f"/admin/branches/{objects.branch_id(w, BRANCH_A)}"


TABLE.update(
    {
        ("GET", "/admin"): Case(STAFF, note="figures of the viewer's branch"),
        ("GET", "/admin/members"): Case(STAFF, note="the viewer's branch only"),
        ("GET", "/admin/members/<int:user_id>"): Case(SCOPED, path=_account_path()),
        ("POST", "/admin/members/<int:user_id>/disable"): Case(
            scoped(303), path=_account_path("/disable")
        ),
        ("POST", "/admin/members/<int:user_id>/enable"): Case(
            scoped(422), path=_account_path("/enable"), note="already enabled"
        ),
        ("POST", "/admin/members/<int:user_id>/approve"): Case(
            scoped(422), path=_account_path("/approve"), note="not waiting for approval"
        ),
        ("POST", "/admin/members/<int:user_id>/reset"): Case(
            scoped(OK), path=_account_path("/reset"), note="shows the one-time link"
        ),
        ("POST", "/admin/members/<int:user_id>/roles"): Case(
            admin(422), path=_account_path("/roles"), note="no role chosen"
        ),
        ("POST", "/admin/members/<int:user_id>/tags"): Case(
            scoped(303), path=_account_path("/tags")
        ),
        ("POST", "/admin/members/<int:user_id>/scope"): Case(
            admin(422), path=_account_path("/scope"), note="members cannot be limited"
        ),
        ("GET", "/admin/roster"): Case(STAFF),
        ("POST", "/admin/roster"): Case(staff(422), note="no file"),
        ("GET", "/admin/roster/<sha>"): Case(
            row(LOGIN, 403, 403, 403, 403, OK, 404, OK),
            path=lambda w: f"/admin/roster/{objects.roster(w)}",
            note="a roster uploaded by branch A's staff: only the uploader and admins see it",
        ),
        ("POST", "/admin/roster/confirm"): Case(staff(400), note="no sha"),
        ("GET", "/admin/branches"): Case(STAFF),
        ("POST", "/admin/branches"): Case(admin(422)),
        ("GET", "/admin/branches/<int:branch_id>"): Case(SCOPED, path=_branch_a),
        ("POST", "/admin/branches/<int:branch_id>"): Case(
            row(LOGIN, 403, 403, 403, 403, 403, 404, 422), path=_branch_a
        ),
        ("GET", "/admin/enterprises"): Case(STAFF),
        ("POST", "/admin/enterprises"): Case(admin(422)),
        ("GET", "/admin/enterprises/<int:enterprise_id>"): Case(
            SCOPED,
            path=lambda w: f"/admin/enterprises/{objects.enterprise_id(w)}",
            note="an enterprise with members in branch A only",
        ),
        ("POST", "/admin/enterprises/<int:enterprise_id>"): Case(
            row(LOGIN, 403, 403, 403, 403, 403, 404, 422),
            path=lambda w: f"/admin/enterprises/{objects.enterprise_id(w)}",
        ),
        ("GET", "/admin/audit"): Case(STAFF),
        ("GET", "/admin/audit.csv"): Case(STAFF),
        ("GET", "/admin/exports"): Case(STAFF),
        ("GET", "/admin/exports/members.csv"): Case(STAFF),
        ("GET", "/impact"): Case(PUBLIC, note="anonymised totals"),
        ("GET", "/account/reset/<token>"): Case(
            PUBLIC,
            path=lambda w: f"/account/reset/{objects.reset_token(w)}",
            note="the valid one-time link is the credential",
        ),
        ("POST", "/account/reset/<token>"): Case(
            same(422), path=lambda w: f"/account/reset/{objects.reset_token(w)}"
        ),
        # --- own data -------------------------------------------------------------------------
        ("GET", "/me/export"): Case(LOGGED_IN, note="always the viewer's own data"),
    }
)


# --- courses and exams -----------------------------------------------------------------------
#
# Drafts exist for staff only (404 for everyone else); enrolments, offers, certificates and
# exam registrations are the member's own (others: 404 or a refusal message).

DRAFT = row(404, 404, 404, 404, 404, OK, OK, OK)  # unpublished: staff only, 404 for others
OWN = row(LOGIN, OK, 404, 404, 404, 404, 404, 404)  # the member's own, even admin gets 404


def own(cell: Any) -> dict[str, Any]:
    return row(LOGIN, cell, 404, 404, 404, 404, 404, 404)


def _course(suffix: str = "", **options: Any) -> Callable[[Any], str]:
    return lambda w: f"/courses/{objects.course(w, **options)['course_id']}{suffix}"


def _lesson(suffix: str = "") -> Callable[[Any], str]:
    def path(w) -> str:
        made = objects.course(w)
        return f"/courses/{made['course_id']}/lessons/{made['lesson_id']}{suffix}"

    return path


def _enrolled(suffix: str, *, lesson: bool = False, **options: Any) -> Callable[[Any], str]:
    """A course the owner is enrolled in."""

    def path(w) -> str:
        made = objects.enrolment(w, **options)
        lesson_part = f"/lessons/{made['lesson_id']}" if lesson else ""
        return f"/courses/{made['course_id']}{lesson_part}{suffix}"

    return path


def _exam(suffix: str = "", status: str = "published") -> Callable[[Any], str]:
    return lambda w: f"/exams/{objects.exam_session(w, status)}{suffix}"


def _registered(suffix: str) -> Callable[[Any], str]:
    return lambda w: f"/exams/{objects.exam_registration(w)['session_id']}{suffix}"


def _result(w) -> str:
    made = objects.exam_registration(w)
    return f"/exams/{made['session_id']}/roster/{made['registration_id']}"


TABLE.update(
    {
        # --- courses (members) ----------------------------------------------------------------
        ("GET", "/courses"): Case(PUBLIC),
        ("GET", "/courses/<int:course_id>"): Case(
            DRAFT, path=_course(status="draft"), note="a draft; published courses are public"
        ),
        ("GET", "/courses/<int:course_id>/cover"): Case(PUBLIC, path=_course("/cover", cover=True)),
        ("POST", "/courses/<int:course_id>/enrol"): Case(
            logged_in(303), path=_course("/enrol"), note="enrolled (or refused with a message)"
        ),
        ("GET", "/courses/<int:course_id>/cancel"): Case(OWN, path=_enrolled("/cancel")),
        ("POST", "/courses/<int:course_id>/cancel"): Case(own(303), path=_enrolled("/cancel")),
        ("POST", "/courses/<int:course_id>/confirm"): Case(
            logged_in(303), path=_enrolled("/confirm"), note="no offer: refused with a message"
        ),
        ("POST", "/courses/<int:course_id>/lessons/<int:lesson_id>/done"): Case(
            logged_in(303),
            path=_enrolled("/done", lesson=True),
            note="the owner's progress; others are refused with a message",
        ),
        ("GET", "/courses/<int:course_id>/lessons/<int:lesson_id>/file"): Case(
            row(LOGIN, OK, 403, 403, 403, OK, OK, OK),
            path=_enrolled("/file", lesson=True, lesson_file=True),
            note="enrolled members and staff",
        ),
        ("GET", "/courses/<int:course_id>/certificate"): Case(
            OWN, path=_enrolled("/certificate", completed=True)
        ),
        ("GET", "/courses/certificates/<code>"): Case(
            PUBLIC,
            path=lambda w: f"/courses/certificates/{objects.enrolment(w, completed=True)['code']}",
            note="the public verification page",
        ),
        # --- courses (staff) ------------------------------------------------------------------
        ("GET", "/courses/staff"): Case(STAFF),
        ("GET", "/courses/new"): Case(STAFF),
        ("POST", "/courses/new"): Case(staff(422)),
        ("GET", "/courses/<int:course_id>/edit"): Case(STAFF, path=_course("/edit")),
        ("POST", "/courses/<int:course_id>/edit"): Case(staff(422), path=_course("/edit")),
        ("GET", "/courses/<int:course_id>/lessons/new"): Case(STAFF, path=_course("/lessons/new")),
        ("POST", "/courses/<int:course_id>/lessons/new"): Case(
            staff(422), path=_course("/lessons/new")
        ),
        ("GET", "/courses/<int:course_id>/lessons/<int:lesson_id>/edit"): Case(
            STAFF, path=_lesson("/edit")
        ),
        ("POST", "/courses/<int:course_id>/lessons/<int:lesson_id>/edit"): Case(
            staff(422), path=_lesson("/edit")
        ),
        ("GET", "/courses/<int:course_id>/lessons/<int:lesson_id>/delete"): Case(
            STAFF, path=_lesson("/delete"), note="the confirmation"
        ),
        ("POST", "/courses/<int:course_id>/lessons/<int:lesson_id>/delete"): Case(
            staff(303), path=_lesson("/delete")
        ),
        ("GET", "/courses/<int:course_id>/roster"): Case(STAFF, path=_enrolled("/roster")),
        ("GET", "/courses/<int:course_id>/roster.csv"): Case(STAFF, path=_enrolled("/roster.csv")),
        ("GET", "/courses/enrolments.csv"): Case(STAFF),
        # --- exams (members) ------------------------------------------------------------------
        ("GET", "/exams"): Case(PUBLIC),
        ("GET", "/exams/<int:session_id>"): Case(
            DRAFT, path=_exam(status="draft"), note="a draft; published sessions are public"
        ),
        ("POST", "/exams/<int:session_id>/register"): Case(
            logged_in(422), path=_exam("/register"), note="empty form"
        ),
        ("GET", "/exams/<int:session_id>/cancel"): Case(OWN, path=_registered("/cancel")),
        ("POST", "/exams/<int:session_id>/cancel"): Case(own(303), path=_registered("/cancel")),
        ("POST", "/exams/<int:session_id>/confirm"): Case(
            logged_in(303), path=_registered("/confirm"), note="no offer: refused with a message"
        ),
        # --- exams (staff) --------------------------------------------------------------------
        ("GET", "/exams/staff"): Case(STAFF),
        ("GET", "/exams/new"): Case(STAFF),
        ("POST", "/exams/new"): Case(staff(422)),
        ("GET", "/exams/<int:session_id>/edit"): Case(STAFF, path=_exam("/edit")),
        ("POST", "/exams/<int:session_id>/edit"): Case(staff(422), path=_exam("/edit")),
        ("GET", "/exams/<int:session_id>/roster"): Case(STAFF, path=_registered("/roster")),
        ("GET", "/exams/<int:session_id>/roster.csv"): Case(
            STAFF, path=_registered("/roster.csv"), note="full ID numbers: staff only"
        ),
        ("POST", "/exams/<int:session_id>/roster/<int:registration_id>"): Case(
            staff(303), path=_result, note="an empty result is saved"
        ),
        ("GET", "/exams/candidates.csv"): Case(STAFF),
    }
)


# --- kits ------------------------------------------------------------------------------------


def _kit(suffix: str = "", **options: Any) -> Callable[[Any], str]:
    return lambda w: f"/kits/{objects.kit(w, **options)['kit_id']}{suffix}"


def _claim(suffix: str = "") -> Callable[[Any], str]:
    return lambda w: f"/kits/claims/{objects.kit_claim(w)['claim_id']}{suffix}"


def _pickup(suffix: str = "") -> Callable[[Any], str]:
    return lambda w: f"/staff/pickup/{objects.kit_claim(w)['code']}{suffix}"


def _staff_kit(suffix: str) -> Callable[[Any], str]:
    return lambda w: f"/staff/kits/{objects.kit(w)['kit_id']}{suffix}"


def _point_edit(w) -> str:
    return f"/staff/kits/points/{objects.kit(w, stock=0)['point_id']}/edit"


TABLE.update(
    {
        # --- kits (members) -------------------------------------------------------------------
        ("GET", "/kits"): Case(PUBLIC),
        ("GET", "/kits/<int:kit_id>"): Case(
            DRAFT, path=_kit(active=False), note="not offered: staff only; offered kits are public"
        ),
        ("GET", "/kits/<int:kit_id>/stock"): Case(PUBLIC, path=_kit("/stock")),
        ("GET", "/kits/<int:kit_id>/picture"): Case(PUBLIC, path=_kit("/picture", picture=True)),
        ("POST", "/kits/<int:kit_id>/claim"): Case(
            members(422), path=_kit("/claim"), note="no pickup point chosen"
        ),
        ("GET", "/kits/claims/<int:claim_id>"): Case(OWN, path=_claim()),
        ("GET", "/kits/claims/<int:claim_id>/cancel"): Case(OWN, path=_claim("/cancel")),
        ("POST", "/kits/claims/<int:claim_id>/cancel"): Case(own(303), path=_claim("/cancel")),
        # --- kits (staff) ---------------------------------------------------------------------
        ("GET", "/staff/pickup"): Case(STAFF),
        ("GET", "/staff/pickup/<code>"): Case(STAFF, path=_pickup(), note="the QR code's URL"),
        ("POST", "/staff/pickup/<code>/picked-up"): Case(staff(303), path=_pickup("/picked-up")),
        ("POST", "/staff/pickup/<code>/shipped"): Case(
            staff(422), path=_pickup("/shipped"), note="a pickup claim cannot be shipped"
        ),
        ("GET", "/staff/kits"): Case(STAFF),
        ("GET", "/staff/kits/new"): Case(STAFF),
        ("POST", "/staff/kits/new"): Case(staff(422)),
        ("GET", "/staff/kits/<int:kit_id>/edit"): Case(STAFF, path=_staff_kit("/edit")),
        ("POST", "/staff/kits/<int:kit_id>/edit"): Case(staff(422), path=_staff_kit("/edit")),
        ("GET", "/staff/kits/<int:kit_id>/stock"): Case(STAFF, path=_staff_kit("/stock")),
        ("POST", "/staff/kits/<int:kit_id>/stock"): Case(staff(422), path=_staff_kit("/stock")),
        ("GET", "/staff/kits/points"): Case(STAFF),
        ("GET", "/staff/kits/points/new"): Case(STAFF),
        ("POST", "/staff/kits/points/new"): Case(staff(422)),
        ("GET", "/staff/kits/points/<int:point_id>/edit"): Case(STAFF, path=_point_edit),
        ("POST", "/staff/kits/points/<int:point_id>/edit"): Case(staff(422), path=_point_edit),
        ("GET", "/staff/kits/claims"): Case(STAFF),
        ("GET", "/staff/kits/claims.csv"): Case(STAFF),
    }
)


# --- legal -----------------------------------------------------------------------------------
#
# A request is private to its requester (``member``), the lawyer who took it (``lawyer``) and
# admins: 404 for everyone else, staff included. Lawyers' actions are the assigned lawyer's.

PRIVATE = row(LOGIN, OK, 404, OK, 404, 404, 404, OK)


def _request(suffix: str = "", *, claimed: bool = True) -> Callable[[Any], str]:
    return lambda w: (
        f"/legal/requests/{objects.legal_request(w, claimed=claimed)['request_id']}{suffix}"
    )


def _attachment(w) -> str:
    made = objects.legal_request(w)
    return f"/legal/requests/{made['request_id']}/files/{made['attachment_id']}"


def _item(suffix: str = "") -> Callable[[Any], str]:
    return lambda w: f"/legal/{objects.legal_item(w)['item_id']}{suffix}"


def _manage_item(suffix: str = "") -> Callable[[Any], str]:
    return lambda w: f"/legal/manage/items/{objects.legal_item(w)['item_id']}{suffix}"


def _manage_category(w) -> str:
    return f"/legal/manage/categories/{objects.legal_item(w)['category_id']}"


def _manage_hotline(w) -> str:
    return f"/legal/manage/hotlines/{objects.hotline(w)}"


def _manage_session(w) -> str:
    return f"/legal/manage/sessions/{objects.consultation(w)}"


TABLE.update(
    {
        # --- legal (members) ------------------------------------------------------------------
        ("GET", "/legal"): Case(PUBLIC),
        ("GET", "/legal/<int:item_id>/request"): Case(MEMBERS, path=_item("/request")),
        ("POST", "/legal/<int:item_id>/request"): Case(
            members(422), path=_item("/request"), note="no question"
        ),
        ("GET", "/legal/requests"): Case(LOGGED_IN, note="always the viewer's own"),
        ("GET", "/legal/requests/<int:request_id>"): Case(PRIVATE, path=_request()),
        ("GET", "/legal/requests/<int:request_id>/files/<int:attachment_id>"): Case(
            PRIVATE, path=_attachment
        ),
        ("POST", "/legal/requests/<int:request_id>/follow-up"): Case(
            row(LOGIN, 422, 404, 403, 404, 404, 404, 403),
            path=_request("/follow-up"),
            note="the requester only",
        ),
        ("POST", "/legal/requests/<int:request_id>/rate"): Case(
            row(LOGIN, 422, 404, 403, 404, 404, 404, 403),
            path=_request("/rate"),
            note="the requester only",
        ),
        ("POST", "/legal/requests/<int:request_id>/close"): Case(
            row(LOGIN, 303, 404, 403, 404, 404, 404, 303),
            path=_request("/close"),
            note="the requester and admins",
        ),
        # --- legal (lawyers) ------------------------------------------------------------------
        ("GET", "/lawyer"): Case(
            row(LOGIN, 403, 403, OK, OK, OK, OK, OK), note="staff: the queue summary only"
        ),
        ("POST", "/lawyer/requests/<int:request_id>/claim"): Case(
            row(LOGIN, 403, 403, 303, 303, 403, 403, 303),
            path=lambda w: (
                f"/lawyer/requests/{objects.legal_request(w, claimed=False)['request_id']}/claim"
            ),
            note="a waiting request: any lawyer may take it (admins too: they hold every role)",
        ),
        ("POST", "/legal/requests/<int:request_id>/reply"): Case(
            row(LOGIN, 403, 403, 422, 404, 403, 403, 403),
            path=_request("/reply"),
            note="the assigned lawyer only",
        ),
        ("POST", "/legal/requests/<int:request_id>/hand-back"): Case(
            row(LOGIN, 403, 403, 303, 404, 403, 403, 403),
            path=_request("/hand-back"),
            note="the assigned lawyer only",
        ),
        ("POST", "/legal/requests/<int:request_id>/notes"): Case(
            row(LOGIN, 403, 403, 422, 404, 403, 403, 422),
            path=_request("/notes"),
            note="internal notes: the assigned lawyer and admins",
        ),
        # --- legal (admins) -------------------------------------------------------------------
        ("POST", "/legal/requests/<int:request_id>/reassign"): Case(
            admin(422), path=_request("/reassign")
        ),
        ("GET", "/legal/admin"): Case(ADMIN),
        ("GET", "/legal/admin/export.csv"): Case(ADMIN),
        ("GET", "/legal/admin/clients"): Case(ADMIN),
        ("POST", "/legal/admin/clients"): Case(admin(422)),
        ("POST", "/legal/admin/clients/remove"): Case(admin(404), note="no such client"),
        # --- legal (staff: the menu, hotlines, live sessions) ---------------------------------
        ("GET", "/legal/manage"): Case(STAFF),
        ("GET", "/legal/manage/categories/new"): Case(STAFF),
        ("POST", "/legal/manage/categories/new"): Case(staff(422)),
        ("GET", "/legal/manage/categories/<int:category_id>"): Case(STAFF, path=_manage_category),
        ("POST", "/legal/manage/categories/<int:category_id>"): Case(
            staff(303), path=_manage_category, note="missing fields keep the stored values"
        ),
        ("GET", "/legal/manage/items/new"): Case(STAFF),
        ("POST", "/legal/manage/items/new"): Case(staff(422)),
        ("GET", "/legal/manage/items/<int:item_id>"): Case(STAFF, path=_manage_item()),
        ("POST", "/legal/manage/items/<int:item_id>"): Case(staff(422), path=_manage_item()),
        ("POST", "/legal/manage/items/<int:item_id>/<any(retire, restore, delete):action>"): Case(
            staff(303), path=_manage_item("/retire")
        ),
        ("GET", "/legal/manage/hotlines/new"): Case(STAFF),
        ("POST", "/legal/manage/hotlines/new"): Case(staff(422)),
        ("GET", "/legal/manage/hotlines/<int:hotline_id>"): Case(STAFF, path=_manage_hotline),
        ("POST", "/legal/manage/hotlines/<int:hotline_id>"): Case(
            staff(303), path=_manage_hotline, note="missing fields keep the stored values"
        ),
        ("GET", "/legal/manage/sessions/new"): Case(STAFF),
        ("POST", "/legal/manage/sessions/new"): Case(staff(422)),
        ("GET", "/legal/manage/sessions/<int:session_id>"): Case(STAFF, path=_manage_session),
        ("POST", "/legal/manage/sessions/<int:session_id>"): Case(staff(422), path=_manage_session),
    }
)
