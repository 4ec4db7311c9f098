"""The site header every full page shows, rendered once per kind of visitor.

The header (brand, badges, language switch, main navigation, log in or out) is the
same HTML for every visitor with the same language, the same roles and the same
current section, but for values of their own: the CSRF token of its two forms, the
numbers on its badges and the page to come back to after switching language. A
worker renders ``_site_header.html`` once per (language, roles, signed in or not,
current link, mount point) with markers where those values go, keeps the HTML
between the markers, and puts each page's values in, escaped as Jinja would escape
them: the header's ~40 expressions are no longer evaluated on every page. At most
``MAX_HEADERS`` are kept (languages × role sets × sections × mount points). With
templates reloaded on change (debug), it is rendered every time.
"""

from __future__ import annotations

import re
from typing import Any

from flask import Flask, render_template
from flask.globals import _cv_app
from markupsafe import Markup, escape

from memberplatform.web.current import current_request, signed_in_user
from memberplatform.web.i18n import current_locale
from memberplatform.web.navigation import main_nav
from memberplatform.web.templating import csrf_token_value

MAX_HEADERS = 512
#: the visitor's own values, each standing in the kept HTML as \x00name\x00
SLOTS = ("csrf_token", "next_path", "points_badge", "notifications_badge")
_MARKER = re.compile("\x00(" + "|".join(SLOTS) + ")\x00")


def site_header() -> Markup:
    """The header for this request's visitor."""
    app = _cv_app.get().app
    user = signed_in_user()
    signed_in = bool(user.is_authenticated)
    links = main_nav()
    req = current_request()
    path = req.path
    current = next((href for href, _label in links if href == path), None)
    context = {"signed_in": signed_in, "current_href": current}
    if app.jinja_env.auto_reload:
        return _render({**context, **{name: _value(name) for name in SLOTS}})
    key = (
        current_locale(),
        frozenset(user.roles) if signed_in else None,
        current,
        req.script_root,
    )
    kept: dict[Any, list[str]] = app.extensions["site_headers"]
    pieces = kept.get(key)
    if pieces is None:
        markers = {name: Markup(f"\x00{name}\x00") for name in SLOTS}  # noqa: S704  # nosec B704
        pieces = _MARKER.split(_render({**context, **markers}))
        if len(kept) >= MAX_HEADERS:
            kept.clear()
        kept[key] = pieces
    # pieces alternate: HTML, a slot's name, HTML, …
    return Markup(  # noqa: S704  # nosec B704 — our template's output and escaped values
        "".join(_value(piece) if index % 2 else piece for index, piece in enumerate(pieces))
    )


def _value(name: str) -> Markup:
    if name == "csrf_token":
        return escape(csrf_token_value())
    if name == "next_path":
        req = current_request()
        return escape(req.full_path if req.method == "GET" else "/")
    render = _cv_app.get().app.jinja_env.globals[name]  # the badges' own helpers (cached per count)
    return render()


def _render(context: dict[str, Any]) -> Markup:
    return Markup(render_template("_site_header.html", **context))  # noqa: S704  # nosec B704


def register(app: Flask) -> None:
    app.extensions["site_headers"] = {}
    app.jinja_env.globals["site_header"] = site_header
