"""The signed-cookie session, re-issued at most every few minutes instead of on every request.

Flask re-signs and re-sends a permanent session's cookie on every response
(``SESSION_REFRESH_EACH_REQUEST``) to slide its expiry. That costs a JSON dump, a
zlib pass and an HMAC per request, and a ``Set-Cookie`` on every htmx poll. Here
an unchanged session is re-issued only once ``SESSION_REFRESH_SECONDS`` (default
300) have passed since it was last issued, so the sliding 12-hour lifetime is
kept to within those few minutes. A changed session is always saved.
"""

from __future__ import annotations

import time

from flask import Flask
from flask.sessions import SecureCookieSessionInterface, SessionMixin
from flask.wrappers import Response

ISSUED_KEY = "_issued"


class ThrottledRefreshSessionInterface(SecureCookieSessionInterface):
    def _refresh_due(self, app: Flask, session: SessionMixin) -> bool:
        if not (session.permanent and app.config["SESSION_REFRESH_EACH_REQUEST"]):
            return False
        issued = session.get(ISSUED_KEY)
        every = app.config.get("SESSION_REFRESH_SECONDS", 300)
        return not isinstance(issued, int) or time.time() - issued >= every

    def should_set_cookie(self, app: Flask, session: SessionMixin) -> bool:
        return session.modified or self._refresh_due(app, session)

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        if session and (session.modified or self._refresh_due(app, session)):
            session[ISSUED_KEY] = int(time.time())  # marks it modified: saved below
        super().save_session(app, session, response)
