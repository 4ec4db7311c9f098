"""Security headers on every response."""

from __future__ import annotations

from flask import Flask, Response, request

CSP = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)


HEADERS = (
    ("Content-Security-Policy", CSP),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "strict-origin-when-cross-origin"),
    ("X-Frame-Options", "DENY"),
)
HSTS = ("Strict-Transport-Security", "max-age=31536000; includeSubDomains")


def register_security_headers(app: Flask) -> None:
    @app.after_request
    def _headers(response: Response) -> Response:
        # each header unless the view set its own (one pass over the few there are)
        headers = response.headers
        present = {name.lower() for name, _ in headers.items()}
        for name, value in HEADERS:
            if name.lower() not in present:
                headers.add(name, value)
        if request.is_secure and HSTS[0].lower() not in present:  # PROXY_COUNT: HTTPS
            headers.add(*HSTS)
        return response
