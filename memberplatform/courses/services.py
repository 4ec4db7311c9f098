"""Business operations of courses and exams. They flush, never commit.

Seat changes (enrol, cancel, confirm, lapse, capacity change, exam registration)
lock the course / exam-session row first and follow :mod:`.seats`; marking a
lesson done locks the member's enrolment row, so the completion (and its
points, keyed ``course:{course_id}:{user_id}``) happens exactly once even when
the last lessons are marked at the same moment.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa

from memberplatform.audit.services import record
from memberplatform.core.errors import DomainError
from memberplatform.db import insert_ignoring_conflicts, utcnow
from memberplatform.extensions import db
from memberplatform.notifications.services import notify
from memberplatform.points import services as points
from memberplatform.points.services import Ref
from memberplatform.web.i18n import lazy_gettext as _l

from . import seats
from .models import (
    EDUCATION_LEVELS,
    HOLDING,
    Course,
    Enrolment,
    ExamRegistration,
    ExamSession,
    Lesson,
    LessonProgress,
    exam_session_courses,
)

COURSE_SEATS = seats.SeatRules(
    Course, Enrolment, "course_id", "enrolled_count", "capacity", "enrolled_at"
)
EXAM_SEATS = seats.SeatRules(
    ExamSession, ExamRegistration, "session_id", "seats_taken", "seats", "registered_at"
)


def _user_id(user: Any) -> int:
    return user if isinstance(user, int) else user.id


def completion_key(course_id: int, user_id: int) -> str:
    return f"course:{course_id}:{user_id}"


def _fee_key(enrolment: Enrolment) -> str:
    return f"course_fee:{enrolment.id}:{enrolment.attempt}"


# --- catalogue ----------------------------------------------------------------


def catalogue_query(q: str = "", category: str = "") -> sa.Select:
    query = sa.select(Course).where(Course.status == "published")
    q = (q or "").strip()[:50]
    if q:
        like = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        query = query.where(
            sa.or_(
                Course.title.ilike(like, escape="\\"),
                Course.teacher.ilike(like, escape="\\"),
                Course.description.ilike(like, escape="\\"),
            )
        )
    if category:
        query = query.where(Course.category == category)
    return query.order_by(Course.created_at.desc(), Course.id.desc())


def categories() -> list[str]:
    return list(
        db.session.scalars(
            sa.select(Course.category)
            .where(Course.status == "published", Course.category != "")
            .distinct()
            .order_by(Course.category)
        )
    )


@dataclass(frozen=True)
class LiveSession:
    """An upcoming live session (a course's or one lesson's), e.g. a lawyer's live talk."""

    title: str
    course_id: int
    course_title: str
    teacher: str
    starts_at: datetime
    url: str | None
    lesson_id: int | None = None

    @property
    def course_path(self) -> str:
        return f"/courses/{self.course_id}"


def upcoming_live_sessions(limit: int = 5, *, now: datetime | None = None) -> list[LiveSession]:
    """Published live sessions that start from now on (or started within the last 2 hours)."""
    from datetime import timedelta

    since = (now or utcnow()) - timedelta(hours=2)
    course_rows = db.session.execute(
        sa.select(Course.id, Course.title, Course.teacher, Course.live_starts_at, Course.live_url)
        .where(Course.status == "published", Course.live_starts_at >= since)
        .order_by(Course.live_starts_at)
        .limit(limit)
    ).all()
    lesson_rows = db.session.execute(
        sa.select(
            Lesson.id,
            Lesson.title,
            Course.id,
            Course.title,
            Course.teacher,
            Lesson.live_starts_at,
            Lesson.live_url,
        )
        .join(Course, Course.id == Lesson.course_id)
        .where(Course.status == "published", Lesson.live_starts_at >= since)
        .order_by(Lesson.live_starts_at)
        .limit(limit)
    ).all()
    found = [LiveSession(t, cid, t, teacher, at, url) for cid, t, teacher, at, url in course_rows]
    found += [
        LiveSession(lt, cid, ct, teacher, at, url, lesson_id=lid)
        for lid, lt, cid, ct, teacher, at, url in lesson_rows
    ]
    found.sort(key=lambda s: (s.starts_at, s.course_id, s.lesson_id or 0))
    return found[:limit]


# --- enrolment ----------------------------------------------------------------


def _check_can_join(course: Course, now: datetime) -> None:
    if course.status != "published":
        raise DomainError(_l("This course is not open for enrolment."))
    if course.enrol_opens_at and now < course.enrol_opens_at:
        raise DomainError(_l("Enrolment for this course has not opened yet."))
    if course.enrol_closes_at and now >= course.enrol_closes_at:
        raise DomainError(_l("Enrolment for this course has closed."))


def enrol(user: Any, course_id: int, *, now: datetime | None = None) -> Enrolment:
    """Take a place, or join the waitlist when the course is full. One transaction."""
    now = now or utcnow()
    user_id = _user_id(user)
    course = seats.lock_parent(COURSE_SEATS, course_id)
    if course is None:
        raise DomainError(_l("There is no such course."))
    _check_can_join(course, now)
    enrolment = seats.entry_for(COURSE_SEATS, course_id, user_id, lock=True)
    if enrolment is not None and enrolment.status != "cancelled":
        if enrolment.status == "waitlisted":
            raise DomainError(_l("You are already on the waitlist of this course."))
        raise DomainError(_l("You are already enrolled in this course."))
    if enrolment is None:  # added to the session once seated (no half-made row is flushed)
        enrolment = Enrolment(course_id=course_id, user_id=user_id, attempt=1)
    else:
        enrolment.attempt += 1
        enrolment.cancelled_at = None
        enrolment.enrolled_at = None
    enrolment.joined_at = now
    enrolment.fee_paid = 0
    seats.seat_entry(COURSE_SEATS, enrolment, now)
    db.session.add(enrolment)
    db.session.flush()
    if course.points_cost:
        points.spend(
            user_id,
            course.points_cost,
            reason="course_fee",
            idempotency_key=_fee_key(enrolment),
            ref=Ref("course", course_id),
        )
        enrolment.fee_paid = course.points_cost
        db.session.flush()
    return enrolment


def _refund_fee(enrolment: Enrolment) -> None:
    if enrolment.fee_paid:
        points.refund(
            _fee_key(enrolment),
            reason="course_fee_refund",
            idempotency_key=f"course_fee_refund:{enrolment.id}:{enrolment.attempt}",
        )
        enrolment.fee_paid = 0


def _notify_promoted(enrolments: list[Enrolment], course: Course) -> None:
    for enrolment in enrolments:
        if enrolment.status == "offered":
            notify(
                enrolment.user_id,
                "courses.offered",
                {
                    "course": course.title,
                    "hours": seats.offer_hours(),
                },
                f"/courses/{course.id}",
            )
        else:
            notify(
                enrolment.user_id,
                "courses.promoted",
                {"course": course.title},
                f"/courses/{course.id}",
            )


def cancel_enrolment(user: Any, course_id: int, *, now: datetime | None = None) -> Enrolment:
    """Leave a course (or its waitlist, or decline an offer); the head of the waitlist moves up."""
    now = now or utcnow()
    course = seats.lock_parent(COURSE_SEATS, course_id)
    if course is None:
        raise DomainError(_l("There is no such course."))
    enrolment = seats.entry_for(COURSE_SEATS, course_id, _user_id(user), lock=True)
    if enrolment is None or enrolment.status == "cancelled":
        raise DomainError(_l("You are not enrolled in this course."))
    if enrolment.completed_at is not None:
        raise DomainError(_l("You have completed this course; it cannot be cancelled."))
    seats.leave(COURSE_SEATS, enrolment, now)
    _refund_fee(enrolment)
    promoted = seats.promote_waitlist(COURSE_SEATS, course_id, now)
    _notify_promoted(promoted, course)
    return enrolment


def confirm_offer(user: Any, course_id: int, *, now: datetime | None = None) -> Enrolment:
    """Accept a place offered from the waitlist, within the confirmation window."""
    now = now or utcnow()
    course = seats.lock_parent(COURSE_SEATS, course_id)
    if course is None:
        raise DomainError(_l("There is no such course."))
    enrolment = seats.entry_for(COURSE_SEATS, course_id, _user_id(user), lock=True)
    if enrolment is None or enrolment.status != "offered":
        raise DomainError(_l("There is no place waiting for your confirmation."))
    if enrolment.offer_expires_at <= now:
        raise DomainError(_l("The time to confirm this place has passed."))
    enrolment.status = "enrolled"
    enrolment.enrolled_at = now
    enrolment.offer_expires_at = None
    db.session.flush()
    return enrolment


def expire_course_offers(now: datetime | None = None) -> int:
    """Offers whose confirmation window has passed lose their place; the next one moves up.

    Idempotent: a lapsed offer is cancelled once; running again finds nothing.
    """
    now = now or utcnow()
    lapsed = 0
    for course_id in seats.parents_with_lapsed_offers(COURSE_SEATS, now):
        course = seats.lock_parent(COURSE_SEATS, course_id)
        for enrolment in seats.lapsed_offers(COURSE_SEATS, course_id, now):
            seats.leave(COURSE_SEATS, enrolment, now)
            _refund_fee(enrolment)
            notify(
                enrolment.user_id,
                "courses.offer_lapsed",
                {"course": course.title},
                f"/courses/{course_id}",
            )
            lapsed += 1
        _notify_promoted(seats.promote_waitlist(COURSE_SEATS, course_id, now), course)
    db.session.flush()
    return lapsed


def waitlist_rank(entry: Enrolment | ExamRegistration) -> int | None:
    rules = COURSE_SEATS if isinstance(entry, Enrolment) else EXAM_SEATS
    return seats.queue_rank(rules, entry)


def enrolment_of(user: Any, course_id: int) -> Enrolment | None:
    if user is None:
        return None
    return seats.entry_for(COURSE_SEATS, course_id, _user_id(user))


# --- learning -----------------------------------------------------------------


def done_lesson_ids(enrolment: Enrolment | None) -> set[int]:
    if enrolment is None:
        return set()
    return set(
        db.session.scalars(
            sa.select(LessonProgress.lesson_id).where(LessonProgress.enrolment_id == enrolment.id)
        )
    )


@dataclass(frozen=True)
class Progress:
    done: int
    total: int

    @property
    def percent(self) -> int:
        return 100 if self.total == 0 else round(100 * self.done / self.total)


def progress_of(enrolment: Enrolment) -> Progress:
    total = db.session.scalar(
        sa.select(sa.func.count(Lesson.id)).where(Lesson.course_id == enrolment.course_id)
    )
    done = db.session.scalar(
        sa.select(sa.func.count(LessonProgress.id))
        .join(Lesson, Lesson.id == LessonProgress.lesson_id)
        .where(LessonProgress.enrolment_id == enrolment.id, Lesson.course_id == enrolment.course_id)
    )
    return Progress(done or 0, total or 0)


def progress_in(course: Course, done_lesson_ids: set[int]) -> Progress:
    """:func:`progress_of` from what a course page has loaded already: the course's
    lessons and the enrolment's :func:`done_lesson_ids`."""
    lesson_ids = {lesson.id for lesson in course.lessons}
    return Progress(len(done_lesson_ids & lesson_ids), len(lesson_ids))


def progress_for(enrolments: list[Enrolment]) -> dict[int, Progress]:
    """Progress of many enrolments in two statements (for lists such as /me)."""
    if not enrolments:
        return {}
    course_ids = {e.course_id for e in enrolments}
    totals = dict(
        db.session.execute(
            sa.select(Lesson.course_id, sa.func.count(Lesson.id))
            .where(Lesson.course_id.in_(course_ids))
            .group_by(Lesson.course_id)
        ).all()
    )
    done = dict(
        db.session.execute(
            sa.select(LessonProgress.enrolment_id, sa.func.count(LessonProgress.id))
            .join(Lesson, Lesson.id == LessonProgress.lesson_id)
            .join(Enrolment, Enrolment.id == LessonProgress.enrolment_id)
            .where(
                LessonProgress.enrolment_id.in_([e.id for e in enrolments]),
                Lesson.course_id == Enrolment.course_id,
            )
            .group_by(LessonProgress.enrolment_id)
        ).all()
    )
    return {e.id: Progress(done.get(e.id, 0), totals.get(e.course_id, 0)) for e in enrolments}


@dataclass(frozen=True)
class MarkResult:
    enrolment: Enrolment
    completed_now: bool


def mark_lesson_done(
    user: Any, course_id: int, lesson_id: int, *, now: datetime | None = None
) -> MarkResult:
    """Mark one lesson done; the last one completes the course and awards its points once."""
    now = now or utcnow()
    user_id = _user_id(user)
    lesson = db.session.get(Lesson, lesson_id)
    if lesson is None or lesson.course_id != course_id:
        raise DomainError(_l("There is no such lesson in this course."))
    enrolment = seats.entry_for(COURSE_SEATS, course_id, user_id, lock=True)
    if enrolment is None or enrolment.status != "enrolled":
        raise DomainError(_l("Enrol in this course to mark its lessons done."))
    insert_ignoring_conflicts(
        db.session,
        LessonProgress.__table__,
        {"enrolment_id": enrolment.id, "lesson_id": lesson_id, "done_at": now},
        ["enrolment_id", "lesson_id"],
    )
    completed_now = False
    if enrolment.completed_at is None:
        progress = progress_of(enrolment)
        if progress.total and progress.done >= progress.total:
            completed_now = _complete(enrolment, now)
    return MarkResult(enrolment, completed_now)


def _complete(enrolment: Enrolment, now: datetime) -> bool:
    result = db.session.execute(
        sa.update(Enrolment)
        .where(Enrolment.id == enrolment.id, Enrolment.completed_at.is_(None))
        .values(completed_at=now, certificate_code=secrets.token_hex(8))
        .execution_options(synchronize_session=False)
    )
    db.session.refresh(enrolment)
    if result.rowcount != 1:
        return False
    course = enrolment.course
    if course.points_reward:
        points.earn(
            enrolment.user_id,
            course.points_reward,
            reason="course_completion",
            idempotency_key=completion_key(course.id, enrolment.user_id),
            ref=Ref("course", course.id),
        )
    notify(
        enrolment.user_id,
        "courses.completed",
        {"course": course.title, "points": course.points_reward},
        f"/courses/{course.id}/certificate",
    )
    return True


def certificate_by_code(code: str) -> Enrolment | None:
    if not code or not re.fullmatch(r"[0-9a-f]{16}", code):
        return None
    return db.session.scalar(
        sa.select(Enrolment).where(
            Enrolment.certificate_code == code, Enrolment.completed_at.is_not(None)
        )
    )


# --- staff: courses and lessons -----------------------------------------------

COURSE_FIELDS = (
    "title",
    "teacher",
    "description",
    "category",
    "status",
    "enrol_opens_at",
    "enrol_closes_at",
    "capacity",
    "points_cost",
    "points_reward",
    "live_starts_at",
    "live_url",
    "cover_upload_id",
)


def _check_course_values(values: dict[str, Any]) -> None:
    opens, closes = values.get("enrol_opens_at"), values.get("enrol_closes_at")
    if opens and closes and closes <= opens:
        raise DomainError(_l("Enrolment must close after it opens."), field="enrol_closes_at")
    if values.get("live_url") and not values.get("live_starts_at"):
        raise DomainError(_l("Give the start time of the live session."), field="live_starts_at")


def create_course(actor: Any, **values: Any) -> Course:
    _check_course_values(values)
    course = Course(**{k: v for k, v in values.items() if k in COURSE_FIELDS})
    db.session.add(course)
    db.session.flush()
    record(actor, "course.create", "course", course.id, _auditable(values))
    return course


def _auditable(values: dict[str, Any]) -> dict[str, Any]:
    return {
        k: (v.isoformat() if isinstance(v, datetime | date) else v)
        for k, v in values.items()
        if k in COURSE_FIELDS or k in EXAM_FIELDS
    }


def update_course(actor: Any, course_id: int, **values: Any) -> Course:
    """Edit a course; a smaller capacity may not drop enrolled members, a larger one
    promotes the waitlist at once."""
    _check_course_values(values)
    course = seats.lock_parent(COURSE_SEATS, course_id)
    if course is None:
        raise DomainError(_l("There is no such course."))
    capacity = values.get("capacity", course.capacity)
    if capacity is not None and capacity < course.enrolled_count:
        raise DomainError(
            _l(
                "%(n)s members already hold a place; the capacity cannot be lower.",
                n=course.enrolled_count,
            ),
            field="capacity",
        )
    changes = {}
    for key, value in values.items():
        if key in COURSE_FIELDS and getattr(course, key) != value:
            changes[key] = value
            setattr(course, key, value)
    db.session.flush()
    if "capacity" in changes:
        _notify_promoted(seats.promote_waitlist(COURSE_SEATS, course_id), course)
    if changes:
        record(actor, "course.update", "course", course.id, _auditable(changes))
    return course


LESSON_FIELDS = (
    "title",
    "position",
    "body",
    "video_url",
    "upload_id",
    "live_starts_at",
    "live_url",
)


def save_lesson(actor: Any, course: Course, lesson: Lesson | None = None, **values: Any) -> Lesson:
    if values.get("live_url") and not values.get("live_starts_at"):
        raise DomainError(_l("Give the start time of the live session."), field="live_starts_at")
    created = lesson is None
    if lesson is None:
        lesson = Lesson(course_id=course.id)
        db.session.add(lesson)
    for key, value in values.items():
        if key in LESSON_FIELDS:
            if key == "upload_id" and value is None:
                continue  # keep the current file unless a new one is uploaded
            setattr(lesson, key, value)
    db.session.flush()
    record(
        actor,
        "course.lesson_create" if created else "course.lesson_update",
        "course_lesson",
        lesson.id,
        {"course_id": course.id, "title": lesson.title, "position": lesson.position},
    )
    return lesson


def next_lesson_position(course: Course) -> int:
    last = db.session.scalar(
        sa.select(sa.func.max(Lesson.position)).where(Lesson.course_id == course.id)
    )
    return (last or 0) + 1


def delete_lesson(actor: Any, lesson: Lesson) -> None:
    record(
        actor,
        "course.lesson_delete",
        "course_lesson",
        lesson.id,
        {"course_id": lesson.course_id, "title": lesson.title},
    )
    db.session.delete(lesson)
    db.session.flush()


# --- exams --------------------------------------------------------------------

ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
ID_CHECK = "10X98765432"


def normalize_id_number(raw: str | None) -> str:
    """An 18-character resident ID number (GB 11643), checked; raises DomainError."""
    value = re.sub(r"\s+", "", raw or "").upper()
    if not re.fullmatch(r"\d{17}[\dX]", value):
        raise DomainError(
            _l("Enter the 18-character ID card number (digits, the last may be X)."),
            field="id_number",
        )
    try:
        birth = date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        birth = None
    if birth is None or not date(1900, 1, 1) <= birth <= date.today():
        raise DomainError(
            _l("The date of birth in this ID number is not valid."), field="id_number"
        )
    check = ID_CHECK[sum(int(d) * w for d, w in zip(value[:17], ID_WEIGHTS, strict=True)) % 11]
    if value[17] != check:
        raise DomainError(
            _l("This ID number is not valid (the check digit does not match)."), field="id_number"
        )
    return value


def with_check_digit(first17: str) -> str:
    """The 18-character ID number whose first 17 digits are ``first17`` (demo data, tests)."""
    return (
        first17 + ID_CHECK[sum(int(d) * w for d, w in zip(first17, ID_WEIGHTS, strict=True)) % 11]
    )


def mask_id_number(value: str | None) -> str:
    """1101**********123X: how an ID number is shown everywhere except the staff export."""
    if not value:
        return ""
    if len(value) < 8:
        return "*" * len(value)
    return value[:4] + "*" * (len(value) - 8) + value[-4:]


EXAM_FIELDS = (
    "qualification",
    "description",
    "starts_at",
    "place",
    "online",
    "seats",
    "registration_deadline",
    "requires_completion",
    "status",
)


def _check_exam_values(values: dict[str, Any]) -> None:
    deadline, starts = values.get("registration_deadline"), values.get("starts_at")
    if deadline and starts and deadline > starts:
        raise DomainError(
            _l("Registration must close before the exam starts."), field="registration_deadline"
        )
    if not values.get("online") and not (values.get("place") or "").strip():
        raise DomainError(_l("Give the place, or mark the exam as online."), field="place")


def _set_exam_courses(session: ExamSession, course_ids: list[int] | None) -> None:
    if course_ids is None:
        return
    session.courses = list(
        db.session.scalars(sa.select(Course).where(Course.id.in_(course_ids)).order_by(Course.id))
    )


def create_exam_session(actor: Any, course_ids: list[int] | None = None, **values: Any):
    _check_exam_values(values)
    session = ExamSession(**{k: v for k, v in values.items() if k in EXAM_FIELDS})
    db.session.add(session)
    _set_exam_courses(session, course_ids)
    db.session.flush()
    record(
        actor,
        "exam.create",
        "exam_session",
        session.id,
        {**_auditable(values), "courses": course_ids or []},
    )
    return session


def update_exam_session(
    actor: Any, session_id: int, course_ids: list[int] | None = None, **values: Any
) -> ExamSession:
    _check_exam_values(values)
    session = seats.lock_parent(EXAM_SEATS, session_id)
    if session is None:
        raise DomainError(_l("There is no such exam session."))
    if values.get("seats", session.seats) < session.seats_taken:
        raise DomainError(
            _l(
                "%(n)s candidates already hold a seat; the seats cannot be fewer.",
                n=session.seats_taken,
            ),
            field="seats",
        )
    changes = {}
    for key, value in values.items():
        if key in EXAM_FIELDS and getattr(session, key) != value:
            changes[key] = value
            setattr(session, key, value)
    _set_exam_courses(session, course_ids)
    db.session.flush()
    if "seats" in changes:
        _notify_exam_promoted(seats.promote_waitlist(EXAM_SEATS, session_id), session)
    record(
        actor,
        "exam.update",
        "exam_session",
        session.id,
        {**_auditable(changes), "courses": course_ids},
    )
    return session


def _notify_exam_promoted(registrations: list[ExamRegistration], session: ExamSession) -> None:
    for registration in registrations:
        kind = "exams.offered" if registration.status == "offered" else "exams.promoted"
        notify(
            registration.user_id,
            kind,
            {"exam": session.qualification, "hours": seats.offer_hours()},
            f"/exams/{session.id}",
        )


def missing_prerequisites(user: Any, session: ExamSession) -> list[Course]:
    """Linked courses the member has not completed (when the session requires them)."""
    if not session.requires_completion or not session.courses:
        return []
    completed = set(
        db.session.scalars(
            sa.select(Enrolment.course_id).where(
                Enrolment.user_id == _user_id(user),
                Enrolment.completed_at.is_not(None),
                Enrolment.course_id.in_([c.id for c in session.courses]),
            )
        )
    )
    return [course for course in session.courses if course.id not in completed]


def register_for_exam(
    user: Any,
    session_id: int,
    *,
    real_name: str,
    id_number: str,
    education: str,
    years_of_work: int,
    now: datetime | None = None,
) -> ExamRegistration:
    """Register with the candidate's details; a seat or the waitlist, like a course."""
    now = now or utcnow()
    user_id = _user_id(user)
    real_name = (real_name or "").strip()
    if not real_name or len(real_name) > 50:
        raise DomainError(_l("Enter your real name as on your ID card."), field="real_name")
    id_number = normalize_id_number(id_number)
    if education not in EDUCATION_LEVELS:
        raise DomainError(_l("Choose your education."), field="education")
    if isinstance(years_of_work, bool) or not isinstance(years_of_work, int):
        raise DomainError(_l("Enter a whole number of years."), field="years_of_work")
    if not 0 <= years_of_work <= 70:
        raise DomainError(_l("Years of work must be from 0 to 70."), field="years_of_work")
    session = seats.lock_parent(EXAM_SEATS, session_id)
    if session is None or session.status != "published":
        raise DomainError(_l("This exam session is not open for registration."))
    if now >= session.registration_deadline:
        raise DomainError(_l("Registration for this exam session has closed."))
    missing = missing_prerequisites(user_id, session)
    if missing:
        raise DomainError(
            _l(
                "Complete the course %(course)s before registering for this exam.",
                course=missing[0].title,
            )
        )
    registration = seats.entry_for(EXAM_SEATS, session_id, user_id, lock=True)
    if registration is not None and registration.status != "cancelled":
        raise DomainError(_l("You have already registered for this exam session."))
    if registration is None:  # added to the session once seated
        registration = ExamRegistration(session_id=session_id, user_id=user_id)
    registration.real_name = real_name
    registration.id_number = id_number
    registration.education = education
    registration.years_of_work = years_of_work
    registration.joined_at = now
    registration.cancelled_at = None
    registration.registered_at = None
    seats.seat_entry(EXAM_SEATS, registration, now)
    db.session.add(registration)
    db.session.flush()
    return registration


def cancel_exam_registration(
    user: Any, session_id: int, *, now: datetime | None = None
) -> ExamRegistration:
    now = now or utcnow()
    session = seats.lock_parent(EXAM_SEATS, session_id)
    if session is None:
        raise DomainError(_l("There is no such exam session."))
    registration = seats.entry_for(EXAM_SEATS, session_id, _user_id(user), lock=True)
    if registration is None or registration.status == "cancelled":
        raise DomainError(_l("You are not registered for this exam session."))
    if now >= session.starts_at or registration.result_recorded_at is not None:
        raise DomainError(_l("The exam has started; the registration cannot be cancelled."))
    seats.leave(EXAM_SEATS, registration, now)
    _notify_exam_promoted(seats.promote_waitlist(EXAM_SEATS, session_id, now), session)
    return registration


def confirm_exam_offer(
    user: Any, session_id: int, *, now: datetime | None = None
) -> ExamRegistration:
    now = now or utcnow()
    seats.lock_parent(EXAM_SEATS, session_id)
    registration = seats.entry_for(EXAM_SEATS, session_id, _user_id(user), lock=True)
    if registration is None or registration.status != "offered":
        raise DomainError(_l("There is no place waiting for your confirmation."))
    if registration.offer_expires_at <= now:
        raise DomainError(_l("The time to confirm this place has passed."))
    registration.status = "enrolled"
    registration.registered_at = now
    registration.offer_expires_at = None
    db.session.flush()
    return registration


def expire_exam_offers(now: datetime | None = None) -> int:
    now = now or utcnow()
    lapsed = 0
    for session_id in seats.parents_with_lapsed_offers(EXAM_SEATS, now):
        session = seats.lock_parent(EXAM_SEATS, session_id)
        for registration in seats.lapsed_offers(EXAM_SEATS, session_id, now):
            seats.leave(EXAM_SEATS, registration, now)
            notify(
                registration.user_id,
                "exams.offer_lapsed",
                {"exam": session.qualification},
                f"/exams/{session_id}",
            )
            lapsed += 1
        _notify_exam_promoted(seats.promote_waitlist(EXAM_SEATS, session_id, now), session)
    db.session.flush()
    return lapsed


def registration_of(user: Any, session_id: int) -> ExamRegistration | None:
    if user is None:
        return None
    return seats.entry_for(EXAM_SEATS, session_id, _user_id(user))


def record_result(
    actor: Any,
    registration: ExamRegistration,
    *,
    attended: bool | None,
    theory_score: int | None,
    practical_score: int | None,
    passed: bool | None,
    now: datetime | None = None,
) -> ExamRegistration:
    """Staff record attendance and the result; the candidate is told once a result exists."""
    if registration.status != "enrolled":
        raise DomainError(_l("Only candidates holding a seat can have a result."))
    for name, score in (("theory_score", theory_score), ("practical_score", practical_score)):
        if score is not None and not 0 <= score <= 100:
            raise DomainError(_l("A score must be from 0 to 100."), field=name)
    had_result = registration.passed is not None
    registration.attended = attended
    registration.theory_score = theory_score
    registration.practical_score = practical_score
    registration.passed = passed
    if passed is not None:
        registration.result_recorded_at = now or utcnow()
    db.session.flush()
    record(
        actor,
        "exam.result",
        "exam_registration",
        registration.id,
        {
            "attended": attended,
            "theory_score": theory_score,
            "practical_score": practical_score,
            "passed": passed,
        },
    )
    if passed is not None and not had_result:
        notify(
            registration.user_id,
            "exams.result",
            {"exam": registration.session.qualification},
            f"/exams/{registration.session_id}",
        )
    return registration


# --- figures ------------------------------------------------------------------


def figures() -> dict[str, int]:
    """Platform-wide counts for the admin and home panels (aggregate queries only)."""
    enrol = db.session.execute(
        sa.select(
            sa.func.count(Enrolment.id).filter(Enrolment.status.in_(HOLDING)),
            sa.func.count(Enrolment.id).filter(Enrolment.completed_at.is_not(None)),
            sa.func.count(Enrolment.id).filter(Enrolment.status == "waitlisted"),
        )
    ).one()
    exam = db.session.execute(
        sa.select(
            sa.func.count(ExamRegistration.id).filter(ExamRegistration.status.in_(HOLDING)),
            sa.func.count(ExamRegistration.id).filter(ExamRegistration.status == "waitlisted"),
            sa.func.count(ExamRegistration.id).filter(ExamRegistration.passed.is_(True)),
        )
    ).one()
    courses = db.session.scalar(
        sa.select(sa.func.count(Course.id)).where(Course.status == "published")
    )
    return {
        "courses": courses or 0,
        "enrolled": enrol[0],
        "completed": enrol[1],
        "waitlisted": enrol[2],
        "exam_registered": exam[0],
        "exam_waitlisted": exam[1],
        "exam_passed": exam[2],
    }


def course_ids_of_session(session_id: int) -> list[int]:
    return list(
        db.session.scalars(
            sa.select(exam_session_courses.c.course_id).where(
                exam_session_courses.c.session_id == session_id
            )
        )
    )
