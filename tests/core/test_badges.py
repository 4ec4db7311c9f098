"""The header's badges are rendered once per (count, language, mount point) per worker
(web.badges): pages and badge polls then reuse that HTML, and a changed count, another
language or another mount point renders anew."""

from __future__ import annotations

import contextlib

from flask import template_rendered

from memberplatform.extensions import db
from memberplatform.points import services as points

BADGES = ("points/_badge.html", "notifications/_badge.html")


@contextlib.contextmanager
def rendered(app, templates: tuple[str, ...] = BADGES):
    """The names of ``templates`` rendered in the block, in order."""
    names: list[str] = []

    def note(sender, template, context, **extra):
        if template.name in templates:
            names.append(template.name)

    template_rendered.connect(note, app)
    try:
        yield names
    finally:
        template_rendered.disconnect(note, app)


def _earn(app, user, amount, key):
    with app.app_context():
        points.earn(user, amount, reason="grant", idempotency_key=key)
        db.session.commit()


def test_badges_render_once_per_count_and_language(app, client, auth, make_user, hx):
    member = make_user()
    other = make_user()
    _earn(app, member, 7, "badge-a")
    _earn(app, other, 7, "badge-b")
    auth.login(member)
    with rendered(app) as names:
        first = client.get("/points/badge", headers=hx).get_data(as_text=True)
        again = client.get("/points/badge", headers=hx).get_data(as_text=True)
        page = client.get("/me").get_data(as_text=True)
    assert '<span class="count">7</span>' in first and first == again
    assert first in page  # the page's header shows the same HTML
    assert names == ["points/_badge.html", "notifications/_badge.html"]  # the poll's + /me's

    _earn(app, member, 3, "badge-c")
    with rendered(app) as names:
        changed = client.get("/points/badge", headers=hx).get_data(as_text=True)
        english = client.get("/points/badge", headers={**hx, "Accept-Language": "en"}).get_data(
            as_text=True
        )
    assert '<span class="count">10</span>' in changed and "积分" in changed
    assert '<span class="count">10</span>' in english and "Points" in english
    assert names == ["points/_badge.html", "points/_badge.html"]

    auth.logout()
    auth.login(other)  # another member with the same balance: the same HTML, no render
    with rendered(app) as names:
        theirs = client.get("/points/badge", headers=hx).get_data(as_text=True)
        mounted = client.get(
            "/points/badge", headers=hx, base_url="http://localhost/union"
        ).get_data(as_text=True)
    assert theirs == first
    assert 'href="/union/points' in mounted and 'href="/points' not in mounted
    assert names == ["points/_badge.html"]  # the other mount point's


def test_the_badge_refreshed_after_a_check_in_shows_the_new_balance(
    app, client, auth, make_user, hx
):
    """The refresh htmx sends on ``points-changed``: 0 was kept, 5 is rendered."""
    member = make_user()
    auth.login(member)
    assert '<span class="count">0</span>' in client.get("/points/badge", headers=hx).get_data(
        as_text=True
    )
    response = client.post("/points/check-in", headers=hx)
    assert response.status_code == 200 and "points-changed" in response.headers["HX-Trigger"]
    badge = client.get("/points/badge", headers=hx).get_data(as_text=True)
    assert '<span class="count">5</span>' in badge
