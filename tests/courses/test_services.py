"""Enrolment, waitlist, promotion, learning, completion points and exams — both engines."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from memberplatform.core.errors import DomainError
from memberplatform.courses import services
from memberplatform.courses.models import Course, Enrolment, ExamRegistration, ExamSession, Lesson
from memberplatform.db import utcnow
from memberplatform.extensions import db
from memberplatform.notifications.models import Notification
from memberplatform.points import services as points
from memberplatform.points.models import LedgerEntry
from tests.concurrency import integrity_problems, run_together
from tests.courses.conftest import BAD_ID, GOOD_ID, make_id


def _lessons(course_id):
    return list(
        db.session.scalars(
            sa.select(Lesson.id).where(Lesson.course_id == course_id).order_by(Lesson.position)
        )
    )


def _statuses(course_id):
    return dict(
        db.session.execute(
            sa.select(Enrolment.user_id, Enrolment.status).where(Enrolment.course_id == course_id)
        ).all()
    )


# --- enrolment and the waitlist -------------------------------------------------------


def test_enrol_until_full_then_waitlist(app, make_course, bulk_members):
    course_id = make_course(capacity=2)
    a, b, c, d = bulk_members(4)
    with app.app_context():
        assert services.enrol(a, course_id).status == "enrolled"
        assert services.enrol(b, course_id).status == "enrolled"
        third = services.enrol(c, course_id)
        fourth = services.enrol(d, course_id)
        db.session.commit()
        assert (third.status, third.waitlist_position) == ("waitlisted", 1)
        assert (fourth.status, fourth.waitlist_position) == ("waitlisted", 2)
        assert services.waitlist_rank(fourth) == 2
        course = db.session.get(Course, course_id)
        assert course.enrolled_count == 2 and course.seats_left == 0
    assert integrity_problems(app) == []


def test_enrolling_twice_is_refused_and_changes_nothing(app, make_course, bulk_members):
    course_id = make_course(capacity=1)
    a, b = bulk_members(2)
    with app.app_context():
        services.enrol(a, course_id)
        services.enrol(b, course_id)
        db.session.commit()
        with pytest.raises(DomainError, match="您已报名本课程"):
            services.enrol(a, course_id)
        db.session.rollback()
        with pytest.raises(DomainError, match="您已在本课程的候补名单中"):
            services.enrol(b, course_id)
        db.session.rollback()
        course = db.session.get(Course, course_id)
        assert (course.enrolled_count, course.waitlist_counter) == (1, 1)
        assert db.session.scalar(sa.select(sa.func.count(Enrolment.id))) == 2


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"status": "draft"}, "暂不开放报名"),
        ({"enrol_opens_at_days": 1}, "尚未开始报名"),
        ({"enrol_closes_at_days": -1}, "报名已截止"),
    ],
)
def test_enrolment_window_and_status(app, make_course, bulk_members, values, message):
    now = utcnow()
    extra = {}
    if "status" in values:
        extra["status"] = values["status"]
    if "enrol_opens_at_days" in values:
        extra["enrol_opens_at"] = now + timedelta(days=values["enrol_opens_at_days"])
    if "enrol_closes_at_days" in values:
        extra["enrol_opens_at"] = now - timedelta(days=5)
        extra["enrol_closes_at"] = now + timedelta(days=values["enrol_closes_at_days"])
    course_id = make_course(**extra)
    (member,) = bulk_members(1)
    with app.app_context():
        with pytest.raises(DomainError, match=message):
            services.enrol(member, course_id)
        db.session.rollback()
        assert db.session.scalar(sa.select(sa.func.count(Enrolment.id))) == 0


def test_cancel_promotes_the_head_of_the_waitlist_and_notifies(app, make_course, bulk_members):
    course_id = make_course(capacity=1)
    a, b, c = bulk_members(3)
    with app.app_context():
        for user in (a, b, c):
            services.enrol(user, course_id)
        db.session.commit()
        services.cancel_enrolment(a, course_id)
        db.session.commit()
        assert _statuses(course_id) == {a: "cancelled", b: "enrolled", c: "waitlisted"}
        assert services.waitlist_rank(services.enrolment_of(c, course_id)) == 1
        notes = db.session.scalars(sa.select(Notification).where(Notification.user_id == b)).all()
        assert [n.kind for n in notes] == ["courses.promoted"]
        # leaving the waitlist frees no place and promotes nobody
        services.cancel_enrolment(c, course_id)
        db.session.commit()
        assert db.session.get(Course, course_id).enrolled_count == 1
        # joining again starts at the end of the line with a new position
        services.enrol(a, course_id)
        db.session.commit()
        again = services.enrolment_of(a, course_id)
        assert (again.status, again.waitlist_position, again.attempt) == ("waitlisted", 3, 2)
    assert integrity_problems(app) == []


def test_promotion_with_confirmation_window(app_factory, make_course, bulk_members):
    app = app_factory(COURSE_PROMOTION_HOURS=24)
    # fixtures built on the default app share the same database
    course_id = make_course(capacity=1)
    a, b, c = bulk_members(3)
    with app.app_context():
        for user in (a, b, c):
            services.enrol(user, course_id)
        db.session.commit()
        services.cancel_enrolment(a, course_id)
        db.session.commit()
        offered = services.enrolment_of(b, course_id)
        assert offered.status == "offered" and offered.offer_expires_at is not None
        with pytest.raises(DomainError):
            services.mark_lesson_done(b, course_id, _lessons(course_id)[0])
        db.session.rollback()
        # nobody confirms: after the window the place passes on to c
        later = utcnow() + timedelta(hours=25)
        assert services.expire_course_offers(later) == 1
        db.session.commit()
        assert services.expire_course_offers(later) == 0  # idempotent
        db.session.commit()
        assert _statuses(course_id) == {a: "cancelled", b: "cancelled", c: "offered"}
        kinds = db.session.scalars(
            sa.select(Notification.kind).where(Notification.user_id == b).order_by(Notification.id)
        ).all()
        assert kinds == ["courses.offered", "courses.offer_lapsed"]
        # c confirms in time
        services.confirm_offer(c, course_id)
        db.session.commit()
        assert services.enrolment_of(c, course_id).status == "enrolled"
        with pytest.raises(DomainError):
            services.confirm_offer(c, course_id)
        db.session.rollback()
    assert integrity_problems(app) == []


def test_expired_offer_cannot_be_confirmed(app_factory, make_course, bulk_members):
    app = app_factory(COURSE_PROMOTION_HOURS=2)
    course_id = make_course(capacity=1)
    a, b = bulk_members(2)
    with app.app_context():
        services.enrol(a, course_id)
        services.enrol(b, course_id)
        services.cancel_enrolment(a, course_id)
        db.session.commit()
        with pytest.raises(DomainError, match="期限已过"):
            services.confirm_offer(b, course_id, now=utcnow() + timedelta(hours=3))


def test_raising_capacity_promotes_and_lowering_below_enrolled_is_refused(
    app, make_course, bulk_members, staff
):
    course_id = make_course(capacity=1)
    a, b, c = bulk_members(3)
    with app.app_context():
        for user in (a, b, c):
            services.enrol(user, course_id)
        db.session.commit()
        services.update_course(staff, course_id, capacity=2)
        db.session.commit()
        assert _statuses(course_id) == {a: "enrolled", b: "enrolled", c: "waitlisted"}
        with pytest.raises(DomainError) as error:
            services.update_course(staff, course_id, capacity=1)
        assert error.value.field == "capacity"
        db.session.rollback()
        assert db.session.get(Course, course_id).capacity == 2
    assert integrity_problems(app) == []


def test_points_fee_is_charged_and_refunded_on_cancel(app, make_course, bulk_members):
    course_id = make_course(capacity=5, points_cost=30)
    rich, poor = bulk_members(2)
    with app.app_context():
        points.earn(rich, 100, reason="grant", idempotency_key="g1")
        points.earn(poor, 10, reason="grant", idempotency_key="g2")
        db.session.commit()
        services.enrol(rich, course_id)
        db.session.commit()
        assert points.balance_of(rich) == 70
        with pytest.raises(points.InsufficientPoints):
            services.enrol(poor, course_id)
        db.session.rollback()
        assert services.enrolment_of(poor, course_id) is None
        assert db.session.get(Course, course_id).enrolled_count == 1
        services.cancel_enrolment(rich, course_id)
        db.session.commit()
        assert points.balance_of(rich) == 100
        services.enrol(rich, course_id)  # a second attempt pays again, with its own key
        db.session.commit()
        assert points.balance_of(rich) == 70
    assert integrity_problems(app) == []


# --- learning and completion --------------------------------------------------------


def test_lessons_progress_completion_points_and_certificate(app, make_course, bulk_members):
    course_id = make_course(lessons=3, points_reward=50)
    (member,) = bulk_members(1)
    with app.app_context():
        services.enrol(member, course_id)
        db.session.commit()
        lessons = _lessons(course_id)
        first = services.mark_lesson_done(member, course_id, lessons[0])
        again = services.mark_lesson_done(member, course_id, lessons[0])  # twice: no change
        assert not first.completed_now and not again.completed_now
        assert services.progress_of(first.enrolment).done == 1
        services.mark_lesson_done(member, course_id, lessons[1])
        last = services.mark_lesson_done(member, course_id, lessons[2])
        db.session.commit()
        assert last.completed_now
        enrolment = services.enrolment_of(member, course_id)
        assert enrolment.completed_at is not None and len(enrolment.certificate_code) == 16
        assert services.progress_of(enrolment).percent == 100
        assert points.balance_of(member) == 50
        assert services.certificate_by_code(enrolment.certificate_code).id == enrolment.id
        assert services.certificate_by_code("0" * 16) is None
        assert services.certificate_by_code("../../etc") is None
        with pytest.raises(DomainError, match="您已完成本课程"):
            services.cancel_enrolment(member, course_id)
        db.session.rollback()
    assert integrity_problems(app) == []


def test_progress_from_the_loaded_lessons_agrees_with_the_counted(app, make_course, bulk_members):
    """The course page computes progress from its lessons and the done set
    (``progress_in``, no statement of its own); it matches ``progress_of``'s counts
    and counts only the course's own lessons."""
    course_id = make_course(lessons=4)
    other_id = make_course(title="另一门课", lessons=1)
    (member,) = bulk_members(1)
    with app.app_context():
        enrolment = services.enrol(member, course_id)
        db.session.commit()
        for lesson_id in _lessons(course_id)[:3]:
            services.mark_lesson_done(member, course_id, lesson_id)
        db.session.commit()
        course = db.session.get(Course, course_id)
        done = services.done_lesson_ids(enrolment)
        assert services.progress_in(course, done) == services.progress_of(enrolment)
        assert services.progress_in(course, done) == services.Progress(3, 4)
        assert services.progress_in(course, done | set(_lessons(other_id))).done == 3


def test_marking_a_lesson_of_a_course_you_are_not_in(app, make_course, bulk_members):
    course_id = make_course(capacity=1)
    other_id = make_course(title="另一门课")
    a, b = bulk_members(2)
    with app.app_context():
        services.enrol(a, course_id)
        services.enrol(b, course_id)  # waitlisted
        db.session.commit()
        lesson = _lessons(course_id)[0]
        for user in (b,):
            with pytest.raises(DomainError, match="报名后才能"):
                services.mark_lesson_done(user, course_id, lesson)
            db.session.rollback()
        with pytest.raises(DomainError, match="本课程中没有这一课"):
            services.mark_lesson_done(a, other_id, lesson)  # forged pairing
        db.session.rollback()
        with pytest.raises(DomainError, match="本课程中没有这一课"):
            services.mark_lesson_done(a, course_id, 999_999)
        db.session.rollback()


def test_completion_awards_points_once_when_last_lessons_marked_at_once(
    app, make_course, bulk_members
):
    course_id = make_course(lessons=2, points_reward=40)
    (member,) = bulk_members(1)
    with app.app_context():
        services.enrol(member, course_id)
        db.session.commit()
        lessons = _lessons(course_id)
    # the two remaining lessons (and the last one twice) marked at the same moment
    targets = [lessons[0], lessons[1], lessons[1], lessons[0], lessons[1], lessons[1]]
    results = run_together(
        app, len(targets), lambda i: services.mark_lesson_done(member, course_id, targets[i])
    )
    assert [r for r in results if isinstance(r, Exception)] == []
    assert sum(r.completed_now for r in results) == 1
    with app.app_context():
        rewards = db.session.scalars(
            sa.select(LedgerEntry).where(LedgerEntry.reason == "course_completion")
        ).all()
        assert [(e.amount, e.idempotency_key) for e in rewards] == [
            (40, f"course:{course_id}:{member}")
        ]
        assert points.balance_of(member) == 40
    assert integrity_problems(app) == []


# --- rush ---------------------------------------------------------------------------


def test_rush_thirty_seats_two_hundred_members(app, make_course, bulk_members):
    course_id = make_course(capacity=30)
    members = bulk_members(200)
    results = run_together(app, 200, lambda i: services.enrol(members[i], course_id))
    assert [r for r in results if isinstance(r, Exception)] == []
    with app.app_context():
        rows = db.session.execute(
            sa.select(Enrolment.user_id, Enrolment.status, Enrolment.waitlist_position)
            .where(Enrolment.course_id == course_id)
            .order_by(Enrolment.id)
        ).all()
        assert len(rows) == 200 and len({r.user_id for r in rows}) == 200
        enrolled = [r for r in rows if r.status == "enrolled"]
        waiting = sorted(
            (r for r in rows if r.status == "waitlisted"), key=lambda r: r.waitlist_position
        )
        assert len(enrolled) == 30 and len(waiting) == 170
        assert [r.waitlist_position for r in waiting] == list(range(1, 171))
        # first come, first served: positions follow the order the rows were written
        by_id = [r.waitlist_position for r in rows if r.status == "waitlisted"]
        assert by_id == sorted(by_id)
        course = db.session.get(Course, course_id)
        assert (course.enrolled_count, course.waitlist_counter) == (30, 170)
    assert integrity_problems(app) == []


def test_racing_cancellations_promote_the_head_in_order(app, make_course, bulk_members):
    course_id = make_course(capacity=5)
    members = bulk_members(12)
    with app.app_context():
        for user in members:
            services.enrol(user, course_id)
        db.session.commit()
    leaving = members[:5]  # every enrolled member cancels at once
    results = run_together(
        app, len(leaving), lambda i: services.cancel_enrolment(leaving[i], course_id)
    )
    assert [r for r in results if isinstance(r, Exception)] == []
    with app.app_context():
        statuses = _statuses(course_id)
        assert [statuses[m] for m in members[5:10]] == ["enrolled"] * 5  # the 5 heads
        assert [statuses[m] for m in members[10:]] == ["waitlisted"] * 2
        assert db.session.get(Course, course_id).enrolled_count == 5
        promoted = db.session.scalars(
            sa.select(Notification.user_id).where(Notification.kind == "courses.promoted")
        ).all()
        assert sorted(promoted) == sorted(members[5:10])
    assert integrity_problems(app) == []


def test_same_member_enrolling_from_many_tabs_enrols_once(app, make_course, bulk_members):
    course_id = make_course(capacity=3)
    (member,) = bulk_members(1)
    results = run_together(app, 10, lambda i: services.enrol(member, course_id))
    assert sum(isinstance(r, Enrolment) for r in results) == 1
    assert all(isinstance(r, Enrolment | DomainError) for r in results)
    with app.app_context():
        assert db.session.get(Course, course_id).enrolled_count == 1
    assert integrity_problems(app) == []


# --- live sessions ------------------------------------------------------------------


def test_upcoming_live_sessions(app, make_course, staff):
    now = utcnow()
    make_course(title="律师直播：复工复产劳动用工", live_starts_at=now + timedelta(days=2))
    make_course(title="已结束的直播", live_starts_at=now - timedelta(days=2))
    make_course(title="草稿直播", status="draft", live_starts_at=now + timedelta(days=1))
    course_id = make_course(title="普通课程")
    with app.app_context():
        course = db.session.get(Course, course_id)
        services.save_lesson(
            staff,
            course,
            title="第4课 直播答疑",
            position=4,
            live_starts_at=now + timedelta(days=1),
            live_url="https://live.example.org/x",
        )
        db.session.commit()
        sessions = services.upcoming_live_sessions(5)
        assert [s.title for s in sessions] == ["第4课 直播答疑", "律师直播：复工复产劳动用工"]
        assert sessions[0].course_title == "普通课程" and sessions[0].lesson_id
        assert services.upcoming_live_sessions(1)[0].title == "第4课 直播答疑"


# --- exams --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw", ["11010519491231002x", "110105 19491231 002X", "11010519491231002X"]
)
def test_id_number_accepted_and_normalized(raw):
    assert services.normalize_id_number(raw) == GOOD_ID


@pytest.mark.parametrize(
    "raw",
    [BAD_ID, "", "1101051949123100", "11010519491231002Y", "110105194913310029", "abc"],
)
def test_bad_id_numbers_are_refused(raw):
    with pytest.raises(DomainError) as error:
        services.normalize_id_number(raw)
    assert error.value.field == "id_number"


def test_id_number_masking():
    assert services.mask_id_number(GOOD_ID) == "1101**********002X"


def _register(user, session_id, **overrides):
    details = {
        "real_name": "张三明",
        "id_number": GOOD_ID,
        "education": "college",
        "years_of_work": 5,
    }
    details.update(overrides)
    return services.register_for_exam(user, session_id, **details)


def test_exam_registration_with_bad_id_is_refused(app, make_exam, bulk_members):
    session_id = make_exam()
    (member,) = bulk_members(1)
    with app.app_context():
        with pytest.raises(DomainError) as error:
            _register(member, session_id, id_number=BAD_ID)
        assert error.value.field == "id_number"
        db.session.rollback()
        assert db.session.scalar(sa.select(sa.func.count(ExamRegistration.id))) == 0
        assert db.session.get(ExamSession, session_id).seats_taken == 0


def test_exam_prerequisite_deadline_seats_and_results(
    app, make_course, make_exam, bulk_members, staff
):
    course_id = make_course(lessons=1)
    session_id = make_exam(course_ids=[course_id], requires_completion=True, seats=1)
    a, b, c = bulk_members(3)
    with app.app_context():
        with pytest.raises(DomainError, match="请先完成课程"):
            _register(a, session_id)
        db.session.rollback()
        lesson = _lessons(course_id)[0]
        for user in (a, b, c):
            services.enrol(user, course_id)
            services.mark_lesson_done(user, course_id, lesson)
        db.session.commit()
        assert _register(a, session_id).status == "enrolled"
        assert _register(b, session_id, id_number=make_id(2)).status == "waitlisted"
        db.session.commit()
        with pytest.raises(DomainError, match="您已报名本场考试"):
            _register(a, session_id)
        db.session.rollback()
        late = utcnow() + timedelta(days=21)
        with pytest.raises(DomainError, match="报名已截止"):
            _register(c, session_id, now=late)
        db.session.rollback()
        services.cancel_exam_registration(a, session_id)
        db.session.commit()
        assert services.registration_of(b, session_id).status == "enrolled"
        registration = services.registration_of(b, session_id)
        services.record_result(
            staff, registration, attended=True, theory_score=82, practical_score=75, passed=True
        )
        db.session.commit()
        with pytest.raises(DomainError):
            services.record_result(
                staff, registration, attended=True, theory_score=101, practical_score=1, passed=True
            )
        db.session.rollback()
        kinds = db.session.scalars(
            sa.select(Notification.kind).where(Notification.user_id == b).order_by(Notification.id)
        ).all()
        assert kinds[-2:] == ["exams.promoted", "exams.result"]
    assert integrity_problems(app) == []


def test_exam_rush(app, make_exam, bulk_members):
    session_id = make_exam(seats=10)
    members = bulk_members(40)
    results = run_together(app, 40, lambda i: _register(members[i], session_id))
    assert [r for r in results if isinstance(r, Exception)] == []
    with app.app_context():
        rows = db.session.execute(
            sa.select(ExamRegistration.status, ExamRegistration.waitlist_position).where(
                ExamRegistration.session_id == session_id
            )
        ).all()
        assert sum(r.status == "enrolled" for r in rows) == 10
        assert sorted(r.waitlist_position for r in rows if r.status == "waitlisted") == list(
            range(1, 31)
        )
    assert integrity_problems(app) == []


def test_figures(app, make_course, bulk_members):
    course_id = make_course(capacity=1)
    a, b = bulk_members(2)
    with app.app_context():
        services.enrol(a, course_id)
        services.enrol(b, course_id)
        db.session.commit()
        figures = services.figures()
        assert (figures["enrolled"], figures["waitlisted"], figures["completed"]) == (1, 1, 0)
