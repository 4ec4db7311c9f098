"""One place decides page or fragment.

A normal request gets the whole page; an htmx request (not boosted, not a
history restore) gets one named block of the *same* template, so the page and
its fragment can never drift apart. Every such response varies on HX-Request.
"""

from __future__ import annotations

import json
from typing import Any

from flask import Response, current_app, make_response, redirect, render_template, request
from jinja2_fragments.flask import render_block


def is_fragment_request() -> bool:
    htmx = getattr(request, "htmx", None)
    return bool(htmx) and not htmx.boosted and not htmx.history_restore_request


def render(
    template: str, *, fragment: str | None = "content", status: int = 200, **context: Any
) -> Response:
    """Render ``template``; for an htmx request only its block ``fragment``."""
    if fragment and is_fragment_request():
        body = render_block(template, fragment, **context)
    else:
        body = render_template(template, **context)
    response = current_app.response_class(body, status)  # Flask's make_response, direct
    response.headers["Vary"] = "HX-Request"
    return response


def add_vary(response: Response, name: str) -> None:
    """Add ``name`` to the response's ``Vary`` header. (Werkzeug's ``response.vary``
    parses the header into a set and writes it back through two callbacks per change:
    ~5% of a cached fragment's cost.)"""
    headers = response.headers
    current = headers.get("Vary")
    if not current:
        headers["Vary"] = name
    elif name.lower() not in {part.strip().lower() for part in current.split(",")}:
        headers["Vary"] = f"{current}, {name}"


def with_trigger(response: Response, *events: str, **detailed: Any) -> Response:
    """Add HX-Trigger events (e.g. ``points-changed``) so other panels refresh themselves."""
    existing = response.headers.get("HX-Trigger")
    payload: dict[str, Any] = {}
    if existing:
        payload = json.loads(existing) if existing.startswith("{") else {existing: None}
    payload.update(dict.fromkeys(events))
    payload.update(detailed)
    response.headers["HX-Trigger"] = json.dumps(payload)
    return response


def hx_redirect(location: str) -> Response:
    """Redirect that works for both: a 303 for browsers, HX-Redirect for htmx."""
    if request.headers.get("HX-Request") == "true":
        response = make_response("", 204)
        response.headers["HX-Redirect"] = location
        return response
    return redirect(location, code=303)
