"""Fixtures of the courses tests: courses, lessons, exam sessions and many members fast."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from memberplatform.auth.models import User, UserRole
from memberplatform.courses import services
from memberplatform.db import utcnow
from memberplatform.extensions import db

# A valid GB 11643 number (check digit X) and the same with a wrong check digit.
GOOD_ID = "11010519491231002X"
BAD_ID = "110105194912310021"


@pytest.fixture
def staff(make_user):
    return make_user(roles=("staff",), name="工会干事")


@pytest.fixture
def make_course(app, staff):
    """Create a published course with ``lessons`` lessons; returns its id."""

    def make(lessons: int = 3, **values):
        values.setdefault("title", "健康管理师（三级）")
        values.setdefault("status", "published")
        with app.app_context():
            course = services.create_course(staff, **values)
            for n in range(1, lessons + 1):
                services.save_lesson(staff, course, title=f"第{n}课", position=n, body="内容")
            db.session.commit()
            return course.id

    return make


@pytest.fixture
def make_exam(app, staff):
    def make(course_ids=(), **values):
        now = utcnow()
        values.setdefault("qualification", "健康管理师（三级）职业技能等级认定")
        values.setdefault("starts_at", now + timedelta(days=30))
        values.setdefault("registration_deadline", now + timedelta(days=20))
        values.setdefault("place", "科学城考场")
        values.setdefault("seats", 10)
        values.setdefault("status", "published")
        with app.app_context():
            session = services.create_exam_session(staff, course_ids=list(course_ids), **values)
            db.session.commit()
            return session.id

    return make


@pytest.fixture
def bulk_members(app):
    """Insert ``n`` members in one statement (fast setup for rush tests); returns their ids."""

    def make(n: int, prefix: str = "177") -> list[int]:
        with app.app_context():
            rows = [
                {"phone": f"{prefix}{i:08d}", "name": f"会员{i}", "status": "active"}
                for i in range(n)
            ]
            db.session.execute(sa.insert(User), rows)
            ids = list(
                db.session.scalars(
                    sa.select(User.id).where(User.phone.like(f"{prefix}%")).order_by(User.id)
                )
            )
            db.session.execute(sa.insert(UserRole), [{"user_id": i, "role": "member"} for i in ids])
            db.session.commit()
            return ids

    return make


def make_id(serial: int) -> str:
    """A valid ID number born 1985-06-15 with the given 3-digit serial (check digit computed)."""
    body = f"32010219850615{serial % 1000:03d}"
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    return body + "10X98765432"[sum(int(d) * w for d, w in zip(body, weights)) % 11]
