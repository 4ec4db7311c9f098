"""The site header (web.chrome) is rendered once per kind of visitor (language, roles,
current section, mount point) per worker; each page puts in the visitor's own values:
the CSRF token of its forms, the numbers on its badges, the page to come back to."""

from __future__ import annotations

import re

from memberplatform.extensions import db
from memberplatform.points import services as points
from tests.core.test_badges import rendered

HEADER = "_site_header.html"


def headers_rendered(app):
    return rendered(app, (HEADER,))


def _tokens(html: str) -> set[str]:
    return set(re.findall(r'name="csrf_token" value="([^"]+)"', html))


def test_the_header_is_rendered_once_per_kind_of_visitor(app, client, auth, make_user):
    member, other = make_user(), make_user()
    with app.app_context():
        points.earn(member, 7, reason="grant", idempotency_key="header-7")
        db.session.commit()
    auth.login(member)
    with headers_rendered(app) as names:
        mine = client.get("/me?a=1&b=<2>").get_data(as_text=True)
        on_points = client.get("/points").get_data(as_text=True)
        again = client.get("/me").get_data(as_text=True)
    assert names == [HEADER, HEADER]  # /me's and /points' (another current section)
    assert '<span class="count">7</span>' in mine
    back = re.search(r'name="next" value="([^"]*)"', mine).group(1)
    assert back.startswith("/me?a=1&amp;b=") and "<" not in back  # escaped as Jinja would
    assert '<a href="/me" aria-current="page">' in mine
    assert '<a href="/points" aria-current="page">' in on_points
    assert 'aria-current="page"' not in on_points.replace('<a href="/points" aria-current', "")
    assert 'name="next" value="/me?"' in again
    assert len(_tokens(mine)) == 1  # both forms of the header carry this session's token
    assert f'"X-CSRFToken": "{next(iter(_tokens(mine)))}"' in mine

    auth.logout()
    auth.login(other)  # the same roles and language: the kept header, their own values
    with headers_rendered(app) as names:
        theirs = client.get("/me").get_data(as_text=True)
        kept = list(names)
        english = client.get("/me", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert kept == [] and names == [HEADER]  # English is another kind
    assert '<span class="count">0</span>' in theirs
    assert _tokens(theirs) and _tokens(theirs) != _tokens(mine)
    assert "我的积分" in theirs and "My points" in english and "Log out" in english

    auth.logout()
    with headers_rendered(app) as names:
        anonymous = client.get("/").get_data(as_text=True)
        mounted = client.get("/", base_url="http://localhost/union").get_data(as_text=True)
    assert names == [HEADER, HEADER]  # a visitor not signed in; another mount point
    assert 'data-testid="logout"' not in anonymous and 'data-testid="points-badge"' not in anonymous
    assert 'action="/union/lang"' in mounted and 'action="/lang"' in anonymous
