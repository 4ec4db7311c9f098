"""The notification centre: list, badge, mark read, privacy."""

from __future__ import annotations

import pytest

from memberplatform.extensions import db
from memberplatform.notifications.services import notify


@pytest.fixture
def member(make_user):
    return make_user()


def send(app, user, count=1):
    with app.app_context():
        ids = [
            notify(user, "points.granted", {"amount": 5, "note": f"n{i}"}, "/points")
            for i in range(count)
        ]
        db.session.commit()
        return ids


def test_list_badge_and_language(app, client, auth, member, hx):
    send(app, member, 2)
    auth.login(member)
    page = client.get("/notifications").get_data(as_text=True)
    assert "您获得了 5 积分：n1" in page
    badge = client.get("/notifications/badge", headers=hx).get_data(as_text=True)
    assert '<span class="count">2</span>' in badge
    english = client.get("/notifications", headers={"Accept-Language": "en"})
    assert "You received 5 points: n1" in english.get_data(as_text=True)
    client.post("/lang", data={"locale": "zh_CN"})  # a saved choice beats the browser
    chinese = client.get("/notifications", headers={"Accept-Language": "en"})
    assert "您获得了 5 积分：n1" in chinese.get_data(as_text=True)


def test_mark_read_and_all_read(app, client, auth, member, hx):
    first, second, _third = send(app, member, 3)
    auth.login(member)
    response = client.post(f"/notifications/{first}/read", headers=hx)
    assert response.status_code == 200
    assert response.headers["HX-Trigger"] == '{"notifications-changed": null}'
    assert 'class="notification read"' in response.get_data(as_text=True)
    badge = client.get("/notifications/badge", headers=hx).get_data(as_text=True)
    assert '<span class="count">2</span>' in badge
    plain = client.post(f"/notifications/{second}/read")
    assert plain.status_code == 303 and plain.headers["Location"] == "/points"
    client.post("/notifications/read-all")
    badge = client.get("/notifications/badge", headers=hx).get_data(as_text=True)
    assert 'class="count"' not in badge


def test_someone_elses_notification_is_404(app, client, auth, member, make_user):
    other = make_user()
    (theirs,) = send(app, other)
    auth.login(member)
    assert client.post(f"/notifications/{theirs}/read").status_code == 404
    assert client.post("/notifications/999999/read").status_code == 404


def test_empty_state_and_login_required(client, auth, member):
    assert client.get("/notifications").status_code == 302
    auth.login(member)
    assert "暂无消息" in client.get("/notifications").get_data(as_text=True)


def test_load_more(app, client, auth, member, hx):
    send(app, member, 25)
    auth.login(member)
    page = client.get("/notifications").get_data(as_text=True)
    assert page.count('class="notification unread"') == 20
    import re

    before = re.search(r"/notifications\?before=(\d+)", page).group(1)
    more = client.get(f"/notifications?before={before}", headers=hx).get_data(as_text=True)
    assert more.count('class="notification unread"') == 5 and "<html" not in more


def test_dedupe_key_notifies_once(ctx, member):
    assert notify(member, "points.granted", {"amount": 1, "note": ""}, dedupe_key="k") is not None
    ctx.flush()
    assert notify(member, "points.granted", {"amount": 1, "note": ""}, dedupe_key="k") is None
