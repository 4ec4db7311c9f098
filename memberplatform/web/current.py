"""The request's objects read straight from Flask's context variables.

``flask.g``, ``request``, ``session`` and Flask-Login's ``current_user`` are proxies:
each use resolves its context variable through three Python calls, and
``current_user`` runs Flask-Login's ``_get_user`` with two more reads of ``g``. The
code every page runs (the session check, the header, the badges, the CSRF token)
made ~90 such reads a page; it reads the same objects here, once each.
"""

from __future__ import annotations

from typing import Any

from flask.ctx import _AppCtxGlobals
from flask.globals import _cv_app, _cv_request
from flask.wrappers import Request
from flask_login import current_user


def app_globals() -> _AppCtxGlobals:
    """``flask.g`` (an app context must be active)."""
    return _cv_app.get().g


def current_request() -> Request:
    """``flask.request`` (a request context must be active)."""
    return _cv_request.get().request


def signed_in_user() -> Any:
    """``current_user``'s object: the user Flask-Login loaded for this request (kept on
    ``g``), else whatever ``current_user`` gives (it loads the user, or is anonymous)."""
    app_ctx = _cv_app.get(None)
    if app_ctx is not None:
        user = app_ctx.g.__dict__.get("_login_user")
        if user is not None:
            return user
    return current_user._get_current_object()
