"""Localized error pages; a 500 never shows a traceback."""

from __future__ import annotations

from flask import Flask, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException, InternalServerError

from memberplatform.extensions import db
from memberplatform.web.i18n import lazy_gettext as _l
from memberplatform.web.rendering import render

MESSAGES = {
    400: (_l("Bad request"), _l("The request could not be understood. Please try again.")),
    401: (_l("Please log in"), _l("You need to log in to see this page.")),
    403: (_l("Not allowed"), _l("Your account is not allowed to open this page.")),
    404: (_l("Page not found"), _l("There is nothing here. The link may be wrong or expired.")),
    405: (_l("Not allowed"), _l("This action is not available here.")),
    413: (_l("File too large"), _l("The upload is larger than the allowed size.")),
    429: (
        _l("Too many attempts"),
        _l("You have tried too many times. Please wait a moment and try again."),
    ),
    500: (
        _l("Something went wrong"),
        _l("An unexpected error happened. Nothing was changed; please try again."),
    ),
}


def _page(code: int):
    title, message = MESSAGES.get(code, MESSAGES[500])
    return render(
        "errors/error.html", fragment="error", status=code, code=code, title=title, message=message
    )


def register_errorhandlers(app: Flask) -> None:
    @app.errorhandler(CSRFError)
    def _csrf(error: CSRFError):
        db.session.rollback()
        if request.headers.get("HX-Request") == "true":
            # An expired token cannot be fixed by a fragment: reload the whole page.
            response = _page(400)
            response.headers["HX-Refresh"] = "true"
            return response
        title, _ = MESSAGES[400]
        return render(
            "errors/error.html",
            fragment="error",
            status=400,
            code=400,
            title=title,
            message=_l("The form expired or was sent twice. Please reload the page and try again."),
        )

    @app.errorhandler(HTTPException)
    def _http(error: HTTPException):
        db.session.rollback()
        if error.code is None or error.code < 400:
            return error
        response = _page(error.code)
        if error.code == 405 and hasattr(error, "valid_methods") and error.valid_methods:
            response.headers["Allow"] = ", ".join(error.valid_methods)
        return response

    @app.errorhandler(Exception)
    def _unexpected(error: Exception):
        db.session.rollback()
        if isinstance(error, HTTPException):
            return _http(error)
        app.logger.exception("unhandled error on %s %s", request.method, request.path)
        return _page(InternalServerError.code)
