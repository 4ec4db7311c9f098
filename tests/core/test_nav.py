"""The header counts (points balance, unread notifications) are read with the signed-in
user, and read again after the request's own writes."""

from __future__ import annotations

import sqlalchemy as sa
from flask import g
from flask_login import login_user

from memberplatform.auth.identity import load_signed_in
from memberplatform.auth.models import User
from memberplatform.core.nav import nav_count
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
    assert len(counts) == 1 and "session_token" in counts[0], statements  # with the user
    assert '<span class="count">7</span>' in text
    with count_queries(engine) as statements:
        badge = client.get("/points/badge", headers=hx).get_data(as_text=True)
    assert len(statements) == 1 and '<span class="count">7</span>' in badge  # who, counts
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


def test_counts_are_read_again_after_the_request_writes(app, make_user):
    member = make_user()
    with app.app_context():
        points.earn(member, 7, reason="grant", idempotency_key="nav-2")
        db.session.commit()
        token = db.session.scalar(sa.select(User.session_token).where(User.id == member.id))
        engine = db.engine
    with app.test_request_context("/points/check-in", method="POST"):
        login_user(load_signed_in(f"{member.id}:{token}"))
        with count_queries(engine) as statements:
            assert nav_count("points") == 7
        assert statements == []  # read with the user
        g.pop("nav_counts")
        points.earn(member.id, 5, reason="grant", idempotency_key="nav-3")
        assert nav_count("points") == 12
        db.session.rollback()
