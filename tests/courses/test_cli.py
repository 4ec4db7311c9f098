"""Demo data (idempotent, integrity holds) and the lapsed-offers command."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from memberplatform.cli import DemoUsers
from memberplatform.courses import hooks, services
from memberplatform.courses.models import Course, Enrolment, ExamSession, Lesson
from memberplatform.db import utcnow
from memberplatform.extensions import db
from tests.concurrency import integrity_problems


def _demo_users(make_user) -> DemoUsers:
    return DemoUsers(
        admin=make_user(roles=("admin", "staff")),
        staff=make_user(roles=("staff",)),
        lawyers=[make_user(roles=("lawyer",), name="王伟律师")],
        members=[make_user() for _ in range(10)],
    )


def _snapshot():
    return (
        db.session.scalar(sa.select(sa.func.count(Course.id))),
        db.session.scalar(sa.select(sa.func.count(Lesson.id))),
        db.session.scalar(sa.select(sa.func.count(Enrolment.id))),
        db.session.scalar(sa.select(sa.func.count(ExamSession.id))),
    )


def test_demo_seeder_is_idempotent_and_consistent(app, make_user):
    users = _demo_users(make_user)
    with app.app_context():
        for name in ("admin", "staff"):
            setattr(users, name, db.session.merge(getattr(users, name)))
        users.lawyers = [db.session.merge(u) for u in users.lawyers]
        users.members = [db.session.merge(u) for u in users.members]
        hooks._seed(db.session, users)
        db.session.commit()
        first = _snapshot()
        hooks._seed(db.session, users)
        db.session.commit()
        assert _snapshot() == first
        small = db.session.scalar(sa.select(Course).where(Course.title == hooks.SMALL_COURSE))
        assert small.enrolled_count == small.capacity == 5
        waiting = db.session.scalar(
            sa.select(sa.func.count(Enrolment.id)).where(
                Enrolment.course_id == small.id, Enrolment.status == "waitlisted"
            )
        )
        assert waiting == 3
        live = services.upcoming_live_sessions(5)
        assert any(s.title == hooks.LIVE_COURSE for s in live)
        exam = db.session.scalar(sa.select(ExamSession))
        assert exam.courses[0].title == hooks.HEALTH_MANAGER and exam.requires_completion
    assert integrity_problems(app) == []


def test_expire_offers_command(app_factory, make_course, make_user):
    app = app_factory(COURSE_PROMOTION_HOURS=1)
    course_id = make_course(capacity=1)
    a, b, c = (make_user().id for _ in range(3))
    with app.app_context():
        for user in (a, b, c):
            services.enrol(user, course_id)
        services.cancel_enrolment(a, course_id)
        enrolment = services.enrolment_of(b, course_id)
        enrolment.offer_expires_at = utcnow() - timedelta(minutes=1)
        db.session.commit()
    runner = app.test_cli_runner()
    result = runner.invoke(args=["courses-expire-offers"])
    assert result.exit_code == 0 and "1 course place(s)" in result.output
    again = runner.invoke(args=["courses-expire-offers"])
    assert "0 course place(s)" in again.output
    with app.app_context():
        assert services.enrolment_of(c, course_id).status == "offered"
    assert integrity_problems(app) == []
