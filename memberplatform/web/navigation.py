"""The main navigation: which links a visitor sees, built once per language and roles.

Every full page shows it, and spelling it out in the template cost a page ~30 calls
(a translation, an endpoint check and a ``url_for`` per link). The links depend only on
the language, whether someone is signed in and with which roles, and where the app is
mounted, so each combination is built once per process and kept.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, current_app, url_for
from flask.globals import _cv_app

from memberplatform.web.current import current_request, signed_in_user
from memberplatform.web.i18n import current_locale
from memberplatform.web.i18n import lazy_gettext as _l

#: (endpoint, label, who sees it): None anyone, "user" anyone signed in, else a role
MAIN_NAV = (
    ("home.index", _l("Home"), None),
    ("home.me", _l("My page"), "user"),
    ("points.index", _l("Points"), "user"),
    ("donations.index", _l("Points donations"), None),
    ("kits.index", _l("Health kits"), None),
    ("courses.index", _l("Courses"), None),
    ("courses.exams", _l("Exams"), None),
    ("legal.index", _l("Legal services"), None),
    ("legal.lawyer_queue", _l("Lawyer desk"), "lawyer"),
    ("kits.staff_pickup", _l("Pickup check"), "staff"),
    ("admin.index", _l("Admin"), "staff"),
)


def _sees(need: str | None, user: Any) -> bool:
    if need is None:
        return True
    if not user.is_authenticated:
        return False
    return need == "user" or user.has_role(need)


def main_nav() -> list[tuple[str, str]]:
    """(href, label) of every main-navigation link the current visitor sees."""
    user = signed_in_user()
    roles = frozenset(user.roles) if user.is_authenticated else None
    built = _cv_app.get().app.extensions["main_nav"]  # languages × role sets
    key = (current_locale(), roles, current_request().script_root)
    links = built.get(key)
    if links is None:
        links = built[key] = [
            (url_for(endpoint), str(label))
            for endpoint, label, need in MAIN_NAV
            if endpoint in current_app.view_functions and _sees(need, user)
        ]
    return links


def register(app: Flask) -> None:
    app.extensions["main_nav"] = {}
    app.jinja_env.globals["main_nav"] = main_nav
