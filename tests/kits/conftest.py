"""Kits fixtures: two pickup points, a health kit with stock, staff and members."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import pytest
import sqlalchemy as sa

import memberplatform.models  # noqa: F401  (every table, also for the session-wide PostgreSQL schema)
from memberplatform.db import utcnow
from memberplatform.extensions import db
from memberplatform.kits import services
from memberplatform.kits.models import KitStock


@dataclass
class Setup:
    staff: object
    kit_id: int
    zgc: int
    city: int


def make_kit(staff_id: int, name: str = "健康防护包", **fields) -> int:
    now = utcnow()
    values = {
        "description": "口罩和消毒液",
        "contents": "医用口罩 ×20\n消毒液 ×1",
        "opens_at": now - timedelta(days=1),
        "closes_at": now + timedelta(days=30),
        "points_cost": 0,
        "required_tag": None,
        "enterprise_ids": [],
        "branch_ids": [],
        "delivery_allowed": True,
        "active": True,
    }
    values.update(fields)
    return services.save_kit_type(staff_id, None, name=name, **values).id


@pytest.fixture
def setup(app, make_user) -> Setup:
    staff = make_user(roles=("staff",), name="王干事")
    with app.app_context():
        zgc = services.save_point(
            staff.id, None, name="中关村软件园", address="西北旺东路10号", hours="9:00–17:30"
        )
        city = services.save_point(
            staff.id, None, name="科学城服务中心", address="丰豪东路9号", hours="9:00–18:00"
        )
        kit_id = make_kit(staff.id)
        services.adjust_stock(staff.id, kit_id, zgc.id, 5, "首批到货")
        services.adjust_stock(staff.id, kit_id, city.id, 3, "首批到货")
        db.session.commit()
        return Setup(staff=staff, kit_id=kit_id, zgc=zgc.id, city=city.id)


def stock(kit_id: int, point_id: int) -> KitStock:
    return db.session.scalar(
        sa.select(KitStock)
        .where(KitStock.kit_type_id == kit_id, KitStock.point_id == point_id)
        .execution_options(populate_existing=True)
    )
