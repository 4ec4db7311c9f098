"""Courses with lessons, enrolments with a fair waitlist, lesson progress, and exam sessions.

Seat rules are the same for courses and exam sessions: the parent row holds a
counter of places taken (``enrolled_count`` / ``seats_taken``, guarded by a
CHECK against the capacity) and a ``waitlist_counter`` from which each
waitlisted entry takes a strictly increasing ``waitlist_position``.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
import sqlalchemy.orm as so

import memberplatform.auth.models
import memberplatform.core.uploads  # noqa: F401  (tables our foreign keys point to)
from memberplatform.db import Base, utcnow
from memberplatform.security.crypto import EncryptedString

COURSE_STATUSES = ("draft", "published", "archived")
#: enrolled: holds a place; offered: promoted from the waitlist, holds a place until the
#: confirmation window ends; waitlisted: in the queue; cancelled: left (or the offer lapsed)
ENTRY_STATUSES = ("enrolled", "offered", "waitlisted", "cancelled")
HOLDING = ("enrolled", "offered")
EDUCATION_LEVELS = ("junior_high", "senior_high", "vocational", "college", "bachelor", "postgrad")


class Course(Base):
    __tablename__ = "courses"
    __table_args__ = (
        sa.CheckConstraint(f"status IN {COURSE_STATUSES!r}", name="status_known"),
        sa.CheckConstraint("capacity IS NULL OR capacity >= 0", name="capacity_not_negative"),
        sa.CheckConstraint("enrolled_count >= 0", name="enrolled_not_negative"),
        sa.CheckConstraint(
            "capacity IS NULL OR enrolled_count <= capacity", name="enrolled_within_capacity"
        ),
        sa.CheckConstraint("waitlist_counter >= 0", name="waitlist_counter_not_negative"),
        sa.CheckConstraint("points_cost >= 0", name="points_cost_not_negative"),
        sa.CheckConstraint("points_reward >= 0", name="points_reward_not_negative"),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    title: so.Mapped[str] = so.mapped_column(sa.String(200))
    teacher: so.Mapped[str] = so.mapped_column(sa.String(100), default="")
    description: so.Mapped[str] = so.mapped_column(sa.Text, default="")
    category: so.Mapped[str] = so.mapped_column(sa.String(40), default="", index=True)
    cover_upload_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("uploads.id"))
    status: so.Mapped[str] = so.mapped_column(sa.String(10), default="draft", index=True)
    enrol_opens_at: so.Mapped[datetime | None]
    enrol_closes_at: so.Mapped[datetime | None]
    #: None means unlimited
    capacity: so.Mapped[int | None]
    enrolled_count: so.Mapped[int] = so.mapped_column(default=0)
    #: the last waitlist position handed out (positions are never reused)
    waitlist_counter: so.Mapped[int] = so.mapped_column(default=0)
    points_cost: so.Mapped[int] = so.mapped_column(default=0)
    points_reward: so.Mapped[int] = so.mapped_column(default=0)
    #: a scheduled live session (e.g. a lawyer's live video talk)
    live_starts_at: so.Mapped[datetime | None] = so.mapped_column(index=True)
    live_url: so.Mapped[str | None] = so.mapped_column(sa.String(300))
    created_at: so.Mapped[datetime] = so.mapped_column(default=utcnow)
    updated_at: so.Mapped[datetime] = so.mapped_column(default=utcnow, onupdate=utcnow)

    lessons: so.Mapped[list[Lesson]] = so.relationship(
        back_populates="course", order_by="(Lesson.position, Lesson.id)", lazy="selectin"
    )

    @property
    def seats_left(self) -> int | None:
        if self.capacity is None:
            return None
        return max(0, self.capacity - self.enrolled_count)


class Lesson(Base):
    __tablename__ = "course_lessons"
    __table_args__ = (sa.Index("ix_course_lessons_course_position", "course_id", "position"),)

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    course_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("courses.id", ondelete="CASCADE"))
    position: so.Mapped[int] = so.mapped_column(default=1)
    title: so.Mapped[str] = so.mapped_column(sa.String(200))
    body: so.Mapped[str] = so.mapped_column(sa.Text, default="")
    video_url: so.Mapped[str | None] = so.mapped_column(sa.String(300))
    upload_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("uploads.id"))
    live_starts_at: so.Mapped[datetime | None] = so.mapped_column(index=True)
    live_url: so.Mapped[str | None] = so.mapped_column(sa.String(300))
    created_at: so.Mapped[datetime] = so.mapped_column(default=utcnow)

    course: so.Mapped[Course] = so.relationship(back_populates="lessons")


class Enrolment(Base):
    """One member's place (or queue position) in one course; at most one row per pair."""

    __tablename__ = "course_enrolments"
    __table_args__ = (
        sa.UniqueConstraint("course_id", "user_id"),
        sa.UniqueConstraint("course_id", "waitlist_position"),
        sa.CheckConstraint(f"status IN {ENTRY_STATUSES!r}", name="status_known"),
        sa.CheckConstraint(
            "status <> 'waitlisted' OR waitlist_position IS NOT NULL",
            name="waitlisted_has_position",
        ),
        sa.CheckConstraint(
            "status <> 'offered' OR offer_expires_at IS NOT NULL", name="offer_has_deadline"
        ),
        sa.Index("ix_course_enrolments_course_status", "course_id", "status"),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    course_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("courses.id", ondelete="CASCADE"))
    user_id: so.Mapped[int] = so.mapped_column(
        sa.ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    status: so.Mapped[str] = so.mapped_column(sa.String(12))
    waitlist_position: so.Mapped[int | None]
    offer_expires_at: so.Mapped[datetime | None]
    #: bumped each time the member joins again after cancelling (keys the points fee)
    attempt: so.Mapped[int] = so.mapped_column(default=1)
    fee_paid: so.Mapped[int] = so.mapped_column(default=0)
    joined_at: so.Mapped[datetime] = so.mapped_column(default=utcnow)
    enrolled_at: so.Mapped[datetime | None]
    cancelled_at: so.Mapped[datetime | None]
    completed_at: so.Mapped[datetime | None]
    certificate_code: so.Mapped[str | None] = so.mapped_column(sa.String(32), unique=True)

    course: so.Mapped[Course] = so.relationship(lazy="joined")


class LessonProgress(Base):
    """A lesson a member marked done (once)."""

    __tablename__ = "course_lesson_progress"
    __table_args__ = (sa.UniqueConstraint("enrolment_id", "lesson_id"),)

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    enrolment_id: so.Mapped[int] = so.mapped_column(
        sa.ForeignKey("course_enrolments.id", ondelete="CASCADE")
    )
    lesson_id: so.Mapped[int] = so.mapped_column(
        sa.ForeignKey("course_lessons.id", ondelete="CASCADE"), index=True
    )
    done_at: so.Mapped[datetime] = so.mapped_column(default=utcnow)


exam_session_courses = sa.Table(
    "exam_session_courses",
    Base.metadata,
    sa.Column(
        "session_id", sa.ForeignKey("exam_sessions.id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column("course_id", sa.ForeignKey("courses.id", ondelete="CASCADE"), primary_key=True),
)


class ExamSession(Base):
    """A sitting of a vocational exam (e.g. 健康管理师) with seats and a registration deadline."""

    __tablename__ = "exam_sessions"
    __table_args__ = (
        sa.CheckConstraint(f"status IN {COURSE_STATUSES!r}", name="status_known"),
        sa.CheckConstraint("seats >= 0", name="seats_not_negative"),
        sa.CheckConstraint("seats_taken >= 0", name="taken_not_negative"),
        sa.CheckConstraint("seats_taken <= seats", name="taken_within_seats"),
        sa.CheckConstraint("waitlist_counter >= 0", name="waitlist_counter_not_negative"),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    qualification: so.Mapped[str] = so.mapped_column(sa.String(200))
    description: so.Mapped[str] = so.mapped_column(sa.Text, default="")
    starts_at: so.Mapped[datetime]
    place: so.Mapped[str] = so.mapped_column(sa.String(200), default="")
    online: so.Mapped[bool] = so.mapped_column(default=False)
    seats: so.Mapped[int]
    seats_taken: so.Mapped[int] = so.mapped_column(default=0)
    waitlist_counter: so.Mapped[int] = so.mapped_column(default=0)
    registration_deadline: so.Mapped[datetime]
    #: the linked course(s) must be completed before registering
    requires_completion: so.Mapped[bool] = so.mapped_column(default=False)
    status: so.Mapped[str] = so.mapped_column(sa.String(10), default="draft", index=True)
    created_at: so.Mapped[datetime] = so.mapped_column(default=utcnow)

    courses: so.Mapped[list[Course]] = so.relationship(
        secondary=exam_session_courses, lazy="selectin", order_by="Course.id"
    )

    @property
    def seats_left(self) -> int:
        return max(0, self.seats - self.seats_taken)


class ExamRegistration(Base):
    """A candidate's registration for an exam session, with the required details and result.

    ``id_number`` is the full ID card number, encrypted at rest (``EncryptedString``,
    key from FIELD_ENCRYPTION_KEYS); it is only ever rendered masked, except in the
    staff CSV export of the roster.
    """

    __tablename__ = "exam_registrations"
    __table_args__ = (
        sa.UniqueConstraint("session_id", "user_id"),
        sa.UniqueConstraint("session_id", "waitlist_position"),
        sa.CheckConstraint(f"status IN {ENTRY_STATUSES!r}", name="status_known"),
        sa.CheckConstraint(
            "status <> 'waitlisted' OR waitlist_position IS NOT NULL",
            name="waitlisted_has_position",
        ),
        sa.CheckConstraint(
            "status <> 'offered' OR offer_expires_at IS NOT NULL", name="offer_has_deadline"
        ),
        sa.CheckConstraint("years_of_work >= 0 AND years_of_work <= 70", name="years_in_range"),
        sa.CheckConstraint(
            "theory_score IS NULL OR (theory_score >= 0 AND theory_score <= 100)",
            name="theory_in_range",
        ),
        sa.CheckConstraint(
            "practical_score IS NULL OR (practical_score >= 0 AND practical_score <= 100)",
            name="practical_in_range",
        ),
        sa.Index("ix_exam_registrations_session_status", "session_id", "status"),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    session_id: so.Mapped[int] = so.mapped_column(
        sa.ForeignKey("exam_sessions.id", ondelete="CASCADE")
    )
    user_id: so.Mapped[int] = so.mapped_column(
        sa.ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    status: so.Mapped[str] = so.mapped_column(sa.String(12))
    waitlist_position: so.Mapped[int | None]
    offer_expires_at: so.Mapped[datetime | None]
    real_name: so.Mapped[str] = so.mapped_column(sa.String(50))
    id_number: so.Mapped[str] = so.mapped_column(EncryptedString(18))
    education: so.Mapped[str] = so.mapped_column(sa.String(20))
    years_of_work: so.Mapped[int]
    joined_at: so.Mapped[datetime] = so.mapped_column(default=utcnow)
    registered_at: so.Mapped[datetime | None]
    cancelled_at: so.Mapped[datetime | None]
    attended: so.Mapped[bool | None]
    theory_score: so.Mapped[int | None]
    practical_score: so.Mapped[int | None]
    passed: so.Mapped[bool | None]
    result_recorded_at: so.Mapped[datetime | None]

    session: so.Mapped[ExamSession] = so.relationship(lazy="joined")
