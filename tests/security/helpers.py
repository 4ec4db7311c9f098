"""Small helpers shared by the security tests."""

from __future__ import annotations

import re

from tests.conftest import PASSWORD

TOKEN_RE = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def csrf_token(client, path: str = "/auth/login") -> str:
    """The CSRF token of a page (CSRF on), as a browser would read it from the form."""
    page = client.get(path).get_data(as_text=True)
    match = TOKEN_RE.search(page)
    assert match, f"no csrf_token on {path}"
    return match.group(1)


def login(client, user_or_phone, password: str = PASSWORD, *, csrf: bool = False):
    phone = getattr(user_or_phone, "phone", user_or_phone)
    data = {"phone": phone, "password": password}
    if csrf:
        data["csrf_token"] = csrf_token(client)
    response = client.post("/auth/login", data=data)
    assert response.status_code == 303, response.status_code
    return response
