"""Fixtures for the donations tests: a staff user, an open campaign, members with points."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

import memberplatform.models  # noqa: F401  (every table exists on the PostgreSQL test database)
from memberplatform.db import utcnow
from memberplatform.donations import services
from memberplatform.extensions import db
from memberplatform.points import services as points


def campaign_values(**overrides):
    now = utcnow()
    values = {
        "title": "积分捐：为普仁医院捐赠医用口罩",
        "story": "每 10 积分 = 1 只口罩。",
        "beneficiary_name": "武汉科技大学附属普仁医院",
        "beneficiary_type": "hospital",
        "item_name": "医用口罩",
        "unit_label": "只",
        "points_per_unit": 10,
        "target_units": 100,
        "min_units": None,
        "max_units": None,
        "opens_at": now - timedelta(days=1),
        "closes_at": now + timedelta(days=30),
    }
    values.update(overrides)
    return values


@pytest.fixture
def staff(make_user):
    return make_user(roles=("staff",), name="工会干事")


@pytest.fixture
def make_campaign(app, staff):
    """Create a campaign (open unless status='draft') and return its id."""

    def make(status: str = "open", **overrides) -> int:
        with app.app_context():
            campaign = services.create_campaign(staff, **campaign_values(**overrides))
            if status == "open":
                services.change_status(campaign.id, "open", staff)
            db.session.commit()
            return campaign.id

    return make


@pytest.fixture
def give_points(app):
    def give(user, amount: int) -> None:
        with app.app_context():
            points.earn(user, amount, reason="grant", idempotency_key=f"test-grant:{uuid.uuid4()}")
            db.session.commit()

    return give


@pytest.fixture
def member(make_user, give_points):
    user = make_user(name="张三明")
    give_points(user, 1000)
    return user


def key() -> str:
    return uuid.uuid4().hex
