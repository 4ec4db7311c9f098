"""The header counts (points balance, unread notifications) come from one statement."""

from __future__ import annotations

from memberplatform.extensions import db
from memberplatform.notifications.services import notify
from memberplatform.points import services as points
from tests.querycount import count_queries


def test_both_badges_read_in_one_statement_and_follow_changes(app, client, auth, make_user, hx):
    member = make_user()
    with app.app_context():
        points.earn(member, 7, reason="grant", idempotency_key="nav-1")
        notify(member, "points.granted", {"amount": 7, "note": "x"}, "/points")
        db.session.commit()
        engine = db.engine
    auth.login(member)
    with count_queries(engine) as statements:
        text = client.get("/notifications").get_data(as_text=True)
    counts = [s for s in statements if "points_accounts" in s and "notifications" in s]
    assert len(counts) == 1, statements
    assert '<span class="count">7</span>' in text
    with count_queries(engine) as statements:
        badge = client.get("/points/badge", headers=hx).get_data(as_text=True)
    assert len(statements) == 2 and '<span class="count">7</span>' in badge  # who, counts
    # a response that changes points shows the balance after the change
    response = client.post("/points/check-in", headers=hx)
    assert response.status_code == 200
    assert '<span class="count">12</span>' in client.get("/points/badge", headers=hx).get_data(
        as_text=True
    )


def test_signed_out_pages_send_no_count_query(app, client):
    with app.app_context():
        engine = db.engine
    with count_queries(engine) as statements:
        assert client.get("/").status_code == 200
    assert not [s for s in statements if "points_accounts" in s]
