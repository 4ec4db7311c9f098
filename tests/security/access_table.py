"""The declared access matrix: every (method, rule) of the URL map → expected status per actor.

Columns (see ``tests/security/world.py``): anonymous, member (the owner of the row's
object), other_member, lawyer (the one serving the object), other_lawyer, staff (the
owner's branch), other_staff (another branch), admin.

Cells: ``OK`` = 200, ``LOGIN`` = 302 to /auth/login, or an exact status code.
POST rows send the row's ``data`` (default: an empty form, CSRF off): the matrix is
about *who gets in*; what a form does with its input is the fuzz tests' business.

A route added to the app without a row here fails ``test_every_route_is_in_the_table``.
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
