"""What the courses domain registers: points reasons and links, notifications,
integrity checks, demo data, panels and exports."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from functools import cache

import sqlalchemy as sa
import sqlalchemy.orm as so
from flask import url_for

from memberplatform.core.registry import (
    admin_panel,
    demo_seeder,
    home_panel,
    integrity_check,
    me_panel,
    register_export,
)
from memberplatform.db import utcnow
from memberplatform.notifications.services import register_message
from memberplatform.points import services as points
from memberplatform.points.models import LedgerEntry
from memberplatform.web.i18n import lazy_gettext as _l

from . import services
from .models import (
    HOLDING,
    Course,
    Enrolment,
    ExamRegistration,
    ExamSession,
    Lesson,
    LessonProgress,
)

points.register_reason("course_completion", _l("Course completed"))
points.register_reason("course_fee", _l("Course fee"))
points.register_reason("course_fee_refund", _l("Course fee refunded"))
points.register_ref_link("course", lambda course_id: url_for("courses.detail", course_id=course_id))

register_message(
    "courses.promoted", _l("A place in %(course)s became free and is now yours. Happy learning!")
)
register_message(
    "courses.offered",
    _l("A place in %(course)s is free for you. Confirm it within %(hours)s hours."),
)
register_message(
    "courses.offer_lapsed",
    _l("The place offered to you in %(course)s was not confirmed in time and has passed on."),
)
register_message(
    "courses.completed",
    _l("You completed %(course)s and earned %(points)s points. Your certificate is ready."),
)
register_message("exams.promoted", _l("A seat for the %(exam)s exam became free and is now yours."))
register_message(
    "exams.offered",
    _l("A seat for the %(exam)s exam is free for you. Confirm it within %(hours)s hours."),
)
register_message(
    "exams.offer_lapsed",
    _l("The exam seat offered to you (%(exam)s) was not confirmed in time and has passed on."),
)
register_message("exams.result", _l("Your result for the %(exam)s exam is available."))

register_export(_l("Course rosters (all courses)"), "courses.export_enrolments")
register_export(_l("Exam candidates (all sessions, full ID numbers)"), "courses.export_candidates")


# --- integrity ----------------------------------------------------------------


def _counts_match(session, parent, entry, fk, taken) -> Iterator[str]:
    held = (
        sa.select(getattr(entry, fk).label("pid"), sa.func.count(entry.id).label("n"))
        .where(entry.status.in_(HOLDING))
        .group_by(getattr(entry, fk))
        .subquery()
    )
    for pid, counter, actual in session.execute(
        sa.select(parent.id, getattr(parent, taken), held.c.n)
        .outerjoin(held, held.c.pid == parent.id)
        .where(getattr(parent, taken) != sa.func.coalesce(held.c.n, 0))
    ):
        yield f"{parent.__tablename__} {pid}: counter {counter} but {actual or 0} places held"


@integrity_check("courses: enrolled ≤ capacity and the counter matches the enrolments")
def _course_capacity(session: so.Session) -> Iterator[str]:
    for cid, enrolled, capacity in session.execute(
        sa.select(Course.id, Course.enrolled_count, Course.capacity).where(
            Course.capacity.is_not(None), Course.enrolled_count > Course.capacity
        )
    ):
        yield f"course {cid}: {enrolled} enrolled but capacity {capacity}"
    yield from _counts_match(session, Course, Enrolment, "course_id", "enrolled_count")


@integrity_check("exams: seats taken ≤ seats and the counter matches the registrations")
def _exam_seats(session: so.Session) -> Iterator[str]:
    for sid, taken, seats in session.execute(
        sa.select(ExamSession.id, ExamSession.seats_taken, ExamSession.seats).where(
            ExamSession.seats_taken > ExamSession.seats
        )
    ):
        yield f"exam session {sid}: {taken} seats taken of {seats}"
    yield from _counts_match(session, ExamSession, ExamRegistration, "session_id", "seats_taken")


def _waitlist_consistent(session, parent, entry, fk, taken, capacity) -> Iterator[str]:
    # every waitlisted entry has a position the counter has handed out
    for eid, position, counter in session.execute(
        sa.select(entry.id, entry.waitlist_position, parent.waitlist_counter)
        .join(parent, parent.id == getattr(entry, fk))
        .where(
            entry.status == "waitlisted",
            sa.or_(
                entry.waitlist_position.is_(None),
                entry.waitlist_position < 1,
                entry.waitlist_position > parent.waitlist_counter,
            ),
        )
    ):
        yield f"{entry.__tablename__} {eid}: position {position} outside 1..{counter}"
    # a free place never stays free while someone waits (it goes to the head of the queue)
    waiting = (
        sa.select(getattr(entry, fk).label("pid"), sa.func.count(entry.id).label("n"))
        .where(entry.status == "waitlisted")
        .group_by(getattr(entry, fk))
        .subquery()
    )
    cap = getattr(parent, capacity)
    for pid, n in session.execute(
        sa.select(parent.id, waiting.c.n)
        .join(waiting, waiting.c.pid == parent.id)
        .where(sa.or_(cap.is_(None), getattr(parent, taken) < cap))
    ):
        yield f"{parent.__tablename__} {pid}: {n} waiting while a place is free"


@integrity_check("courses: waitlist positions are consistent and first come, first served")
def _course_waitlist(session: so.Session) -> Iterator[str]:
    yield from _waitlist_consistent(
        session, Course, Enrolment, "course_id", "enrolled_count", "capacity"
    )


@integrity_check("exams: waitlist positions are consistent and first come, first served")
def _exam_waitlist(session: so.Session) -> Iterator[str]:
    yield from _waitlist_consistent(
        session, ExamSession, ExamRegistration, "session_id", "seats_taken", "seats"
    )


@integrity_check("courses: one reward entry per completion")
def _one_reward(session: so.Session) -> Iterator[str]:
    rewards = (
        sa.select(LedgerEntry.ref_id, LedgerEntry.idempotency_key, LedgerEntry.amount)
        .where(LedgerEntry.reason == "course_completion")
        .subquery()
    )
    key = sa.literal("course:") + sa.cast(Enrolment.course_id, sa.String) + sa.literal(":")
    key = key + sa.cast(Enrolment.user_id, sa.String)
    # every rewarded completion has exactly its one entry, of the course's reward
    for eid, reward, amount in session.execute(
        sa.select(Enrolment.id, Course.points_reward, rewards.c.amount)
        .join(Course, Course.id == Enrolment.course_id)
        .outerjoin(rewards, rewards.c.idempotency_key == key)
        .where(
            Enrolment.completed_at.is_not(None),
            Course.points_reward > 0,
            rewards.c.idempotency_key.is_(None),
        )
    ):
        yield f"enrolment {eid}: completed but no reward entry (reward {reward}, {amount})"
    # no reward without a completion, never two for one course and member
    for key_value, n in session.execute(
        sa.select(LedgerEntry.idempotency_key, sa.func.count(LedgerEntry.id))
        .outerjoin(
            Enrolment,
            sa.and_(
                LedgerEntry.idempotency_key == key,
                Enrolment.completed_at.is_not(None),
            ),
        )
        .where(LedgerEntry.reason == "course_completion")
        .group_by(LedgerEntry.idempotency_key)
        .having(sa.func.count(Enrolment.id) != 1)
    ):
        yield f"reward {key_value}: {n} entries without exactly one completion"


# --- panels -------------------------------------------------------------------


def _me_reads(user_id: int) -> list[tuple[sa.Select, dict]]:
    params = {"user_id": user_id}
    return [(_my_enrolments(), params), (_my_registrations(), params)]


@me_panel("courses", 40, "courses/_me_panel.html", reads=_me_reads)
def _me_panel(user) -> dict:
    """Enrolments with title, progress and waitlist place in one statement; exams in one."""
    from memberplatform.extensions import db

    enrolments, registrations = _me_reads(user.id)
    items = db.read(*enrolments).all()
    registrations = db.read(*registrations).all()
    return {
        "items": [
            (
                row,
                services.Progress(row.done, row.total) if row.status == "enrolled" else None,
                row.rank,
            )
            for row in items
        ],
        "registrations": [(row, row.rank) for row in registrations],
    }


def _waitlist_rank(entry, fk: str) -> sa.ColumnElement:
    """1 for the head of the waitlist, None when not waitlisted (as ``seats.queue_rank``)."""
    ahead = so.aliased(entry)
    count = (
        sa.select(sa.func.count(ahead.id))
        .where(
            getattr(ahead, fk) == getattr(entry, fk),
            ahead.status == "waitlisted",
            ahead.waitlist_position < entry.waitlist_position,
        )
        .scalar_subquery()
    )
    waiting = sa.and_(entry.status == "waitlisted", entry.waitlist_position.is_not(None))
    return sa.case((waiting, count + 1), else_=None)


@cache
def _my_enrolments() -> sa.Select:
    total = sa.select(sa.func.count(Lesson.id)).where(Lesson.course_id == Enrolment.course_id)
    done = (
        sa.select(sa.func.count(LessonProgress.id))
        .join(Lesson, Lesson.id == LessonProgress.lesson_id)
        .where(LessonProgress.enrolment_id == Enrolment.id, Lesson.course_id == Enrolment.course_id)
    )
    return (
        sa.select(
            Enrolment.id,
            Enrolment.course_id,
            Enrolment.status,
            Enrolment.completed_at,
            Course.title.label("course_title"),
            total.scalar_subquery().label("total"),
            done.scalar_subquery().label("done"),
            _waitlist_rank(Enrolment, "course_id").label("rank"),
        )
        .join(Course, Course.id == Enrolment.course_id)
        .where(Enrolment.user_id == sa.bindparam("user_id"), Enrolment.status != "cancelled")
        .order_by(Enrolment.joined_at.desc())
        .limit(10)
    )


@cache
def _my_registrations() -> sa.Select:
    return (
        sa.select(
            ExamRegistration.id,
            ExamRegistration.session_id,
            ExamRegistration.status,
            ExamRegistration.passed,
            ExamSession.qualification,
            _waitlist_rank(ExamRegistration, "session_id").label("rank"),
        )
        .join(ExamSession, ExamSession.id == ExamRegistration.session_id)
        .where(
            ExamRegistration.user_id == sa.bindparam("user_id"),
            ExamRegistration.status != "cancelled",
        )
        .order_by(ExamRegistration.joined_at.desc())
        .limit(5)
    )


@admin_panel("courses", 40, "courses/_admin_panel.html")
def _admin_panel() -> dict:
    return {"figures": services.figures()}


@home_panel("courses", 40, "courses/_home_panel.html")
def _home_panel() -> dict:
    return {"figures": services.figures(), "live": services.upcoming_live_sessions(3)}


# --- demo data ----------------------------------------------------------------

HEALTH_MANAGER = "健康管理师（三级）线上免费学习"
HEALTH_LESSONS = [
    (
        "健康管理概论",
        "健康管理的概念、基本步骤与服务流程；健康管理师的职业定位与职业守则。",
        "https://video.example.org/health-manager/01",
    ),
    (
        "健康监测与信息管理",
        "健康信息的收集、整理与记录；个人健康档案的建立与管理。",
        "https://video.example.org/health-manager/02",
    ),
    (
        "健康风险评估",
        "常见慢性病的危险因素；健康风险评估的方法与报告解读。",
        "https://video.example.org/health-manager/03",
    ),
    (
        "健康指导与干预",
        "膳食、运动、心理与戒烟限酒指导；复工复产期间的个人防护与健康教育。",
        "https://video.example.org/health-manager/04",
    ),
    (
        "考前复习与模拟练习",
        "理论知识与专业技能考核要点；模拟试题讲解。",
        None,
    ),
]
SMALL_COURSE = "复工复产防疫知识小班课"
LIVE_COURSE = "律师直播：复工复产中的劳动用工法律问题"
EXAM = "健康管理师（三级）职业技能等级认定"


@demo_seeder("courses", 40)
def _seed(session: so.Session, users) -> None:
    now = utcnow()
    admin = users.admin

    def find(title: str) -> Course | None:
        return session.scalar(sa.select(Course).where(Course.title == title))

    health = find(HEALTH_MANAGER)
    if health is None:
        health = services.create_course(
            admin,
            title=HEALTH_MANAGER,
            teacher="科学城职业技能培训中心",
            description=(
                "面向园区民营科技企业职工的免费线上课程：系统学习健康管理师（三级）"
                "理论知识与专业技能，学完全部课时可获得结业证书和积分奖励，并可报名职业技能等级认定考试。"
            ),
            category="职业技能",
            status="published",
            capacity=None,
            points_cost=0,
            points_reward=50,
        )
        for position, (title, body, video) in enumerate(HEALTH_LESSONS, start=1):
            services.save_lesson(
                admin, health, title=title, position=position, body=body, video_url=video
            )
    small = find(SMALL_COURSE)
    if small is None:
        small = services.create_course(
            admin,
            title=SMALL_COURSE,
            teacher="劳模工作室 · 王建华",
            description="劳动模范手把手讲解复工复产中的岗位防疫要点，小班授课，名额有限。",
            category="劳模课堂",
            status="published",
            capacity=5,
            points_reward=10,
        )
        services.save_lesson(
            admin,
            small,
            title="岗位防疫要点",
            position=1,
            body="工位消毒、口罩佩戴与更换、错峰就餐。",
        )
        services.save_lesson(
            admin, small, title="返岗健康监测", position=2, body="体温监测与异常情况报告流程。"
        )
        session.flush()
        for member in users.members[:8]:  # 5 take the places, 3 wait in line
            services.enrol(member, small.id)
    live = find(LIVE_COURSE)
    if live is None:
        lawyer = users.lawyers[0] if users.lawyers else None
        start = (now + timedelta(days=3)).replace(hour=11, minute=0, second=0, microsecond=0)
        live = services.create_course(
            admin,
            title=LIVE_COURSE,
            teacher=lawyer.name if lawyer else "园区法律服务团",
            description=(
                "法律服务专区律师视频直播：复工复产期间的工资支付、休假安排、"
                "劳动合同变更与解除等热点问题，直播中在线答疑。"
            ),
            category="法律服务",
            status="published",
            capacity=None,
            live_starts_at=start,
            live_url="https://live.example.org/union/return-to-work-labour-law",
        )
        services.save_lesson(
            admin,
            live,
            title="直播回放与课件",
            position=1,
            body="直播结束后在此发布回放链接与课件。",
        )
    exam = session.scalar(sa.select(ExamSession).where(ExamSession.qualification == EXAM))
    if exam is None:
        services.create_exam_session(
            admin,
            course_ids=[health.id],
            qualification=EXAM,
            description="理论知识考试与专业技能考核，两项均达到 60 分为合格。",
            starts_at=(now + timedelta(days=45)).replace(hour=1, minute=0, second=0, microsecond=0),
            place="科学城职业技能鉴定中心 3 楼考场",
            online=False,
            seats=60,
            registration_deadline=(now + timedelta(days=30)).replace(
                hour=15, minute=59, second=0, microsecond=0
            ),
            requires_completion=True,
            status="published",
        )
    # one demo member is half-way through the Health Manager course
    first = users.members[0] if users.members else None
    if first is not None and services.enrolment_of(first, health.id) is None:
        services.enrol(first, health.id)
        lessons = session.scalars(
            sa.select(Lesson).where(Lesson.course_id == health.id).order_by(Lesson.position)
        ).all()
        for lesson in lessons[:2]:
            services.mark_lesson_done(first, health.id, lesson.id)
    # another has completed it and registered for the exam (a row on the candidates roster)
    second = users.members[1] if len(users.members) > 1 else None
    exam = session.scalar(sa.select(ExamSession).where(ExamSession.qualification == EXAM))
    if second is not None and services.enrolment_of(second, health.id) is None:
        services.enrol(second, health.id)
        for lesson in session.scalars(sa.select(Lesson).where(Lesson.course_id == health.id)):
            services.mark_lesson_done(second, health.id, lesson.id)
        services.register_for_exam(
            second,
            exam.id,
            real_name=second.name,
            id_number=services.with_check_digit("11010819880512003"),
            education="college",
            years_of_work=8,
        )
    session.flush()
