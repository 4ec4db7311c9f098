"""The header's badges (points balance, unread messages), each rendered once per count.

A badge is a small template around one number: its HTML depends on nothing but the
number, the language and where the app is mounted (its links). Every page's header
shows two, and htmx fetches one again after each change of its number, so a worker
keeps the HTML it has rendered for each (badge, number, language, mount point) — at
most ``MAX_BADGES``, a few hundred bytes each — instead of rendering the template on
every page and poll. Nothing of the member is in it but the number in the key.
With templates reloaded on change (debug), a badge is rendered every time.
"""

from __future__ import annotations

from flask import Response, current_app, render_template
from flask.globals import _cv_app
from markupsafe import Markup

from memberplatform.web.current import current_request
from memberplatform.web.i18n import current_locale

#: rendered badges a worker keeps (per badge: its counts seen × languages)
MAX_BADGES = 4096


def badge(template: str, count: int) -> Markup:
    """``template`` rendered with ``count``, from the worker's store when it has it."""
    app = _cv_app.get().app
    if app.jinja_env.auto_reload:
        return _render(template, count)
    store: dict = app.extensions.setdefault("badges", {})
    key = (template, count, current_locale(), current_request().script_root)
    html = store.get(key)
    if html is None:
        html = _render(template, count)
        if len(store) >= MAX_BADGES:
            store.clear()
        store[key] = html
    return html


def fragment(html: Markup) -> Response:
    """A badge as the response to its htmx refresh (the same HTML as in the header)."""
    # the response built directly: Flask's make_response works out what it was given
    response = current_app.response_class(html)
    response.headers["Vary"] = "HX-Request"
    return response


def _render(template: str, count: int) -> Markup:
    # the template's output, escaped by Jinja as every page is
    return Markup(render_template(template, count=count))  # noqa: S704  # nosec B704
