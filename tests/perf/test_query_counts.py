"""Guard for every page the benchmark measures: its SQL statement count must not
grow with the data (demo data + 10 members against demo data + 200 members, each
member with a points history of 10 entries)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from flask import url_for

from bench import seed
from memberplatform.auth.models import User
from memberplatform.extensions import db
from tests.querycount import count_queries

PAGES = [
    ("home.index", "member", False, {}),
    ("home.me", "member", False, {}),
    ("points.index", "member", False, {}),
    ("points.badge", "member", True, {}),
    ("notifications.badge", "member", True, {}),
    ("donations.campaign", "member", False, {"campaign_id": "campaign"}),
    ("donations.progress", "member", True, {"campaign_id": "campaign"}),
    ("kits.index", "member", False, {}),
    ("courses.index", "member", False, {}),
    ("legal.index", "member", False, {}),
    ("legal.lawyer_queue", "lawyer", False, {}),
    ("admin.index", "admin", False, {}),
]


def _world(app, runner, members: int) -> dict:
    result = runner.invoke(args=["seed-demo", "--password", "Demo-Pass-2020"])
    assert result.exit_code == 0, result.output
    with app.app_context():
        password_hash = db.session.scalar(
            sa.select(User.password_hash).where(User.phone == "13800000001")
        )
        db.session.rollback()  # end the read before the bulk writer starts
        seed.seed_members(db.engine, members, 10, password_hash)
        campaigns = sa.Table("donation_campaigns", sa.MetaData(), autoload_with=db.engine)
        campaign = db.session.scalar(sa.select(sa.func.min(campaigns.c.id)))
    return {"campaign": campaign}


def _counts(app, ids) -> dict[str, int]:
    counts = {}
    clients = {}
    for who, phone in (
        ("member", "13800000001"),
        ("lawyer", "13900000001"),
        ("admin", "13600000000"),
    ):
        client = app.test_client()
        response = client.post("/auth/login", data={"phone": phone, "password": "Demo-Pass-2020"})
        assert response.status_code == 303
        clients[who] = client
    with app.app_context():
        engine = db.engine
    for endpoint, who, htmx, values in PAGES:
        with app.test_request_context():
            path = url_for(endpoint, **{k: ids[v] for k, v in values.items()})
        headers = {"HX-Request": "true"} if htmx else {}
        clients[who].get(path, headers=headers)  # warm-up (first-request caches)
        with count_queries(engine) as statements:
            response = clients[who].get(path, headers=headers)
        assert response.status_code == 200, (endpoint, response.status_code)
        counts[endpoint] = len(statements)
    return counts


@pytest.mark.slow
def test_page_query_counts_do_not_grow_with_data(app, runner):
    ids = _world(app, runner, 10)
    small = _counts(app, ids)
    with app.app_context():
        seed.seed_members(db.engine, 190, 10, "x")  # now 200 bench members
    large = _counts(app, ids)
    assert large == small


@pytest.mark.slow
def test_every_page_sends_at_most_eight_statements(app_factory):
    """The benchmark's target, with production's short caches on (aggregate figures
    for FIGURES_CACHE_SECONDS, the progress fragment for PROGRESS_CACHE_SECONDS)."""
    app = app_factory(FIGURES_CACHE_SECONDS=30, PROGRESS_CACHE_SECONDS=30)
    counts = _counts(app, _world(app, app.test_cli_runner(), 10))
    assert max(counts.values()) <= 8, counts


def test_cached_figures_render_again_from_the_cache(app_factory):
    """With the figures cache on (production), a second request renders the cached
    panel contexts outside the session that loaded them: it must still work."""
    app = app_factory(FIGURES_CACHE_SECONDS=30)
    runner = app.test_cli_runner()
    assert runner.invoke(args=["seed-demo", "--password", "Demo-Pass-2020"]).exit_code == 0
    admin = app.test_client()
    admin.post("/auth/login", data={"phone": "13600000000", "password": "Demo-Pass-2020"})
    anonymous = app.test_client()
    for client, path in ((anonymous, "/"), (admin, "/admin"), (anonymous, "/impact")):
        first = client.get(path)
        second = client.get(path)
        assert first.status_code == second.status_code == 200, path
        assert "不可用" not in second.get_data(as_text=True), path
    with app.app_context():
        engine = db.engine
    with count_queries(engine) as statements:
        anonymous.get("/")
    assert len(statements) <= 2  # the cards come from the cache
