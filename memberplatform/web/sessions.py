"""The signed-cookie session, re-issued at most every few minutes instead of on every request.

Flask re-signs and re-sends a permanent session's cookie on every response
(``SESSION_REFRESH_EACH_REQUEST``) to slide its expiry. That costs a JSON dump, a
zlib pass and an HMAC per request, and a ``Set-Cookie`` on every htmx poll. Here
an unchanged session is re-issued only once ``SESSION_REFRESH_SECONDS`` (default
300) have passed since it was last issued, so the sliding 12-hour lifetime is
kept to within those few minutes. A changed session is always saved.

Reading the cookie costs its HMAC check, a base64 and a JSON pass on every
request, though a signed-in member sends the same cookie for those minutes. A
worker remembers the cookies it has verified (at most ``VERIFIED_COOKIES``) with
the time they were signed: the same cookie string again is the same data, and
its age is checked against the session lifetime as on the first read. Only
sessions of plain values are remembered (a flash message's list is mutable and
rare); each request still gets its own copy.
"""

from __future__ import annotations

import time
from typing import Any

from flask import Flask
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface, SessionMixin
from flask.wrappers import Request, Response
from itsdangerous import BadSignature

from memberplatform.web.rendering import add_vary

ISSUED_KEY = "_issued"
#: verified cookies a worker remembers (a few hundred bytes each)
VERIFIED_COOKIES = 10_000
_PLAIN = (str, int, float, bool, type(None))


class ThrottledRefreshSessionInterface(SecureCookieSessionInterface):
    def __init__(self) -> None:
        #: cookie string -> (its data, when it was signed), for cookies already verified
        self._verified: dict[str, tuple[dict[str, Any], float]] = {}

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        value = request.cookies.get(self.get_cookie_name(app))
        if not value:
            return super().open_session(app, request)
        max_age = app.permanent_session_lifetime.total_seconds()
        known = self._verified.get(value)
        if known is not None:
            data, signed_at = known
            if 0 <= time.time() - signed_at <= max_age:
                return self.session_class(data)  # a copy: the request may change it
            del self._verified[value]
        serializer = self.get_signing_serializer(app)
        if serializer is None:
            return None
        try:
            data, signed = serializer.loads(value, max_age=int(max_age), return_timestamp=True)
        except BadSignature:
            return self.session_class()
        if all(isinstance(item, _PLAIN) for item in data.values()):
            if len(self._verified) >= VERIFIED_COOKIES:
                self._verified.clear()
            self._verified[value] = (data, signed.timestamp())
        return self.session_class(data)

    def _refresh_due(self, app: Flask, session: SessionMixin) -> bool:
        if not (session.permanent and app.config["SESSION_REFRESH_EACH_REQUEST"]):
            return False
        issued = session.get(ISSUED_KEY)
        every = app.config.get("SESSION_REFRESH_SECONDS", 300)
        return not isinstance(issued, int) or time.time() - issued >= every

    def should_set_cookie(self, app: Flask, session: SessionMixin) -> bool:
        return session.modified or self._refresh_due(app, session)

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        if session and not session.modified and not self._refresh_due(app, session):
            # unchanged and recently issued: no cookie to send (Flask would work out
            # the cookie's seven attributes before finding that out)
            if session.accessed:
                add_vary(response, "Cookie")
            return
        if session:
            session[ISSUED_KEY] = int(time.time())  # marks it modified: saved below
        super().save_session(app, session, response)
