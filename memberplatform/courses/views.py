"""Courses (/courses), exams (/exams), certificates and the staff pages of both."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask import Blueprint, abort, flash, request, url_for
from flask_login import current_user

import memberplatform.courses.hooks  # noqa: F401  (registers reasons, checks, panels, demo)
from memberplatform.audit.services import record
from memberplatform.auth.models import User
from memberplatform.core.cache import cached_briefly
from memberplatform.core.csvio import csv_response
from memberplatform.core.errors import DomainError
from memberplatform.core.pagination import paginate
from memberplatform.core.qr import qr_svg
from memberplatform.core.uploads import IMAGES, Upload, save_upload, send_upload
from memberplatform.db import mark_write_intent, utcnow
from memberplatform.extensions import db
from memberplatform.web import hx_redirect, is_fragment_request, render, roles_required
from memberplatform.web import with_trigger as _with_trigger
from memberplatform.web.forms import attach_error
from memberplatform.web.i18n import gettext as _

from . import services
from .forms import (
    EDUCATION_LABELS,
    CourseForm,
    ExamSessionForm,
    LessonForm,
    RegistrationForm,
    ResultForm,
    to_local,
)
from .models import Course, Enrolment, ExamRegistration, ExamSession, Lesson

bp = Blueprint("courses", __name__)

#: GET views that write (an audit entry): their SQLite transaction must start as a writer
WRITING_GETS = {"courses.exam_roster_csv", "courses.export_candidates"}


@bp.before_request
def _write_intent() -> None:
    if request.endpoint in WRITING_GETS:
        mark_write_intent()


PER_PAGE = 12


def _is_staff() -> bool:
    return current_user.is_authenticated and current_user.has_role("staff")


def _me() -> Any:
    return current_user if current_user.is_authenticated else None


def _may_see(status: str | None) -> bool:
    """Whether the reader may see a course of this status (None: no such course):
    drafts exist only for staff."""
    return status is not None and (status != "draft" or _is_staff())


def load_course(course_id: int) -> Course:
    """A course the reader may see (404 for everyone else)."""
    course = db.session.get(Course, course_id)
    if not _may_see(course.status if course is not None else None):
        abort(404)
    return course


#: a course's status, for :func:`check_course_visible`
_STATUS = sa.select(Course.status).where(Course.id == sa.bindparam("course_id"))


def check_course_visible(course_id: int) -> None:
    """:func:`load_course`'s 404 without loading the course and its lessons: for a
    view whose service loads the course itself, locked."""
    if not _may_see(db.read(_STATUS, {"course_id": course_id}).scalar()):
        abort(404)


def load_lesson(course: Course, lesson_id: int) -> Lesson:
    lesson = db.session.get(Lesson, lesson_id)
    if lesson is None or lesson.course_id != course.id:
        abort(404)
    return lesson


def load_session(session_id: int) -> ExamSession:
    session = db.session.get(ExamSession, session_id)
    if session is None or (session.status == "draft" and not _is_staff()):
        abort(404)
    return session


def _refused(error: DomainError) -> None:
    flash(str(error.message), "error")


# --- catalogue ----------------------------------------------------------------


@bp.get("/courses")
def index():  # access: anyone
    q = request.args.get("q", "").strip()[:50]
    category = request.args.get("category", "").strip()[:40]
    page = paginate(services.catalogue_query(q, category), request.args.get("page"), PER_PAGE)
    return render(
        "courses/index.html",
        fragment="results",
        page=page,
        q=q,
        category=category,
        # the same beside every search, for everyone: each worker keeps them a moment
        categories=cached_briefly(("courses.categories",), services.categories),
        live=cached_briefly(("courses.live", 5), lambda: services.upcoming_live_sessions(5)),
    )


def _detail_context(course: Course) -> dict[str, Any]:
    enrolment = services.enrolment_of(_me(), course.id)
    holding = enrolment is not None and enrolment.status == "enrolled"
    done = services.done_lesson_ids(enrolment) if holding else set()
    return {
        "course": course,
        "enrolment": enrolment,
        "rank": services.waitlist_rank(enrolment) if enrolment else None,
        "progress": services.progress_in(course, done) if holding else None,
        "done": done,
        "can_view_lessons": holding or _is_staff(),
    }


@bp.get("/courses/<int:course_id>")
def detail(course_id: int):  # access: anyone (drafts: staff)
    course = load_course(course_id)
    return render("courses/detail.html", fragment="enrolment", **_detail_context(course))


@bp.get("/courses/<int:course_id>/cover")
def cover(course_id: int):  # access: anyone who may see the course
    course = load_course(course_id)
    upload = db.session.get(Upload, course.cover_upload_id) if course.cover_upload_id else None
    if upload is None:
        abort(404)
    return send_upload(upload, inline=True)


def _enrolment_response(course_id: int, message: str | None = None, status: int = 200):
    """After an enrolment action: the enrolment panel (htmx) or the course page (redirect)."""
    if message and not is_fragment_request():
        flash(message, "success" if status < 400 else "error")
    if not is_fragment_request():
        return hx_redirect(url_for("courses.detail", course_id=course_id))
    db.session.expire_all()
    with db.reading():  # after an enrolment committed (or refused): no write lock to read
        course = load_course(course_id)
        response = render(
            "courses/detail.html",
            fragment="enrolment",
            status=status,
            message=message,
            message_error=status >= 400,
            **_detail_context(course),
        )
    return _with_trigger(response, "points-changed", "notifications-changed")


@bp.post("/courses/<int:course_id>/enrol")
@roles_required()
def enrol(course_id: int):  # access: any logged-in user
    with db.reading():  # on SQLite the write lock is taken by the enrolment itself
        check_course_visible(course_id)
    try:
        enrolment = services.enrol(current_user, course_id)
    except DomainError as error:
        return _enrolment_error(course_id, error)
    db.session.commit()  # in a rush the course's seat counter is not held while we render
    if enrolment.status == "waitlisted":
        message = _("The course is full: you are on the waitlist.")
    else:
        message = _("You are enrolled. Happy learning!")
    return _enrolment_response(course_id, message)


def _enrolment_error(course_id: int, error: DomainError):
    db.session.rollback()
    if not is_fragment_request():
        _refused(error)
        return hx_redirect(url_for("courses.detail", course_id=course_id))
    return _enrolment_response(course_id, str(error.message), status=422)


@bp.route("/courses/<int:course_id>/cancel", methods=["GET", "POST"])
@roles_required()
def cancel(course_id: int):  # access: any logged-in user (their own enrolment)
    course = load_course(course_id)
    enrolment = services.enrolment_of(current_user, course_id)
    if enrolment is None or enrolment.status == "cancelled":
        abort(404)
    if request.method == "GET":
        return render(
            "courses/confirm.html",
            fragment="dialog",
            title=_("Leave this course?"),
            text=_(
                "Your place in %(course)s goes to the next person on the waitlist. "
                "If you join again later, you start at the end of the line.",
                course=course.title,
            ),
            action=url_for("courses.cancel", course_id=course_id),
            button=_("Yes, leave the course"),
            back=url_for("courses.detail", course_id=course_id),
        )
    try:
        services.cancel_enrolment(current_user, course_id)
    except DomainError as error:
        return _enrolment_error(course_id, error)
    return _enrolment_response(course_id, _("You have left the course."))


@bp.post("/courses/<int:course_id>/confirm")
@roles_required()
def confirm(course_id: int):  # access: any logged-in user (their own offer)
    load_course(course_id)
    try:
        services.confirm_offer(current_user, course_id)
    except DomainError as error:
        return _enrolment_error(course_id, error)
    return _enrolment_response(course_id, _("Your place is confirmed. Happy learning!"))


@bp.post("/courses/<int:course_id>/lessons/<int:lesson_id>/done")
@roles_required()
def lesson_done(course_id: int, lesson_id: int):  # access: members enrolled in the course
    course = load_course(course_id)
    load_lesson(course, lesson_id)
    try:
        result = services.mark_lesson_done(current_user, course_id, lesson_id)
    except DomainError as error:
        db.session.rollback()
        if not is_fragment_request():
            _refused(error)
            return hx_redirect(url_for("courses.detail", course_id=course_id))
        return render(
            "courses/detail.html",
            fragment="enrolment",
            status=422,
            message=str(error.message),
            message_error=True,
            **_detail_context(course),
        )
    message = None
    if result.completed_now:
        message = _("Congratulations, you completed the course!")
        if course.points_reward:
            message += " " + _("%(n)s points were added.", n=course.points_reward)
    if not is_fragment_request():
        if message:
            flash(message, "success")
        return hx_redirect(url_for("courses.detail", course_id=course_id) + f"#lesson-{lesson_id}")
    response = render(
        "courses/detail.html", fragment="enrolment", message=message, **_detail_context(course)
    )
    if result.completed_now:
        _with_trigger(response, "points-changed", "notifications-changed")
    return response


@bp.get("/courses/<int:course_id>/lessons/<int:lesson_id>/file")
@roles_required()
def lesson_file(course_id: int, lesson_id: int):  # access: enrolled members and staff
    course = load_course(course_id)
    lesson = load_lesson(course, lesson_id)
    enrolment = services.enrolment_of(current_user, course_id)
    if not _is_staff() and (enrolment is None or enrolment.status != "enrolled"):
        abort(403)
    upload = db.session.get(Upload, lesson.upload_id) if lesson.upload_id else None
    if upload is None:
        abort(404)
    return send_upload(upload, inline=upload.content_type != "application/pdf")


@bp.get("/courses/<int:course_id>/certificate")
@roles_required()
def certificate(course_id: int):  # access: the member who completed the course
    course = load_course(course_id)
    enrolment = services.enrolment_of(current_user, course_id)
    if enrolment is None or enrolment.completed_at is None:
        abort(404)
    verify_url = url_for("courses.verify", code=enrolment.certificate_code, _external=True)
    return render(
        "courses/certificate.html",
        fragment=None,
        course=course,
        enrolment=enrolment,
        holder=current_user.name,
        verify_url=verify_url,
        qr_svg=qr_svg(verify_url, title=_("Verification code")),
    )


@bp.get("/courses/certificates/<code>")
def verify(code: str):  # access: anyone (the public verification URL; forged codes 404)
    enrolment = services.certificate_by_code(code)
    if enrolment is None:
        abort(404)
    holder = db.session.get(User, enrolment.user_id)
    return render(
        "courses/verify.html",
        fragment=None,
        enrolment=enrolment,
        course=enrolment.course,
        holder=holder.name if holder else "",
    )


# --- exams --------------------------------------------------------------------


@bp.get("/exams")
def exams():  # access: anyone
    sessions = list(
        db.session.scalars(
            sa.select(ExamSession)
            .where(ExamSession.status == "published")
            .order_by(ExamSession.starts_at)
        )
    )
    mine = {}
    if current_user.is_authenticated:
        mine = {
            r.session_id: r
            for r in db.session.scalars(
                sa.select(ExamRegistration).where(
                    ExamRegistration.user_id == current_user.id,
                    ExamRegistration.status != "cancelled",
                )
            )
        }
    return render("courses/exams.html", sessions=sessions, mine=mine, now=utcnow())


def _exam_context(session: ExamSession, form: RegistrationForm | None = None) -> dict[str, Any]:
    registration = services.registration_of(_me(), session.id)
    return {
        "session": session,
        "registration": registration
        if registration and registration.status != "cancelled"
        else None,
        "rank": services.waitlist_rank(registration) if registration else None,
        "missing": services.missing_prerequisites(current_user, session)
        if current_user.is_authenticated
        else [],
        "form": form or RegistrationForm(),
        "now": utcnow(),
        "mask_id": services.mask_id_number,
        "education_labels": EDUCATION_LABELS,
    }


@bp.get("/exams/<int:session_id>")
def exam_detail(session_id: int):  # access: anyone (drafts: staff)
    session = load_session(session_id)
    return render("courses/exam_detail.html", fragment="registration", **_exam_context(session))


@bp.post("/exams/<int:session_id>/register")
@roles_required()
def exam_register(session_id: int):  # access: any logged-in user
    session = load_session(session_id)
    form = RegistrationForm()
    if form.validate_on_submit():
        try:
            registration = services.register_for_exam(
                current_user,
                session_id,
                real_name=form.real_name.data,
                id_number=form.id_number.data,
                education=form.education.data,
                years_of_work=form.years_of_work.data,
            )
        except DomainError as error:
            db.session.rollback()
            attach_error(form, error)
        else:
            if registration.status == "waitlisted":
                flash(_("All seats are taken: you are on the waitlist."), "info")
            else:
                flash(_("You are registered for the exam."), "success")
            return hx_redirect(url_for("courses.exam_detail", session_id=session_id))
    return render(
        "courses/exam_detail.html",
        fragment="registration",
        status=422,
        **_exam_context(session, form),
    )


@bp.route("/exams/<int:session_id>/cancel", methods=["GET", "POST"])
@roles_required()
def exam_cancel(session_id: int):  # access: any logged-in user (their own registration)
    session = load_session(session_id)
    registration = services.registration_of(current_user, session_id)
    if registration is None or registration.status == "cancelled":
        abort(404)
    back = url_for("courses.exam_detail", session_id=session_id)
    if request.method == "GET":
        return render(
            "courses/confirm.html",
            fragment="dialog",
            title=_("Cancel your exam registration?"),
            text=_(
                "Your seat for %(exam)s goes to the next person on the waitlist.",
                exam=session.qualification,
            ),
            action=url_for("courses.exam_cancel", session_id=session_id),
            button=_("Yes, cancel the registration"),
            back=back,
        )
    try:
        services.cancel_exam_registration(current_user, session_id)
    except DomainError as error:
        db.session.rollback()
        _refused(error)
        return hx_redirect(back)
    flash(_("Your exam registration is cancelled."), "success")
    return hx_redirect(back)


@bp.post("/exams/<int:session_id>/confirm")
@roles_required()
def exam_confirm(session_id: int):  # access: any logged-in user (their own offer)
    load_session(session_id)
    back = url_for("courses.exam_detail", session_id=session_id)
    try:
        services.confirm_exam_offer(current_user, session_id)
    except DomainError as error:
        db.session.rollback()
        _refused(error)
        return hx_redirect(back)
    flash(_("Your exam seat is confirmed."), "success")
    return hx_redirect(back)


# --- staff: courses -------------------------------------------------------------


@bp.get("/courses/staff")
@roles_required("staff")
def staff_courses():  # access: staff
    counts = (
        sa.select(
            Enrolment.course_id.label("cid"),
            sa.func.count(Enrolment.id).filter(Enrolment.status == "waitlisted").label("waiting"),
            sa.func.count(Enrolment.id).filter(Enrolment.completed_at.is_not(None)).label("done"),
        )
        .group_by(Enrolment.course_id)
        .subquery()
    )
    query = (
        sa.select(Course, counts.c.waiting, counts.c.done)
        .outerjoin(counts, counts.c.cid == Course.id)
        .order_by(Course.created_at.desc(), Course.id.desc())
    )
    page = paginate(query, request.args.get("page"), 20, scalars=False)
    return render(
        "courses/staff_courses.html", fragment="content", page=page, figures=services.figures()
    )


def _save_cover(form: CourseForm) -> int | None:
    file = form.cover.data
    if file is None or not getattr(file, "filename", ""):
        return None
    return save_upload(file, kinds=IMAGES, uploaded_by=current_user.id, field="cover").id


@bp.route("/courses/new", methods=["GET", "POST"])
@roles_required("staff")
def course_new():  # access: staff
    form = CourseForm()
    if form.validate_on_submit():
        try:
            values = form.values()
            cover_id = _save_cover(form)
            if cover_id:
                values["cover_upload_id"] = cover_id
            course = services.create_course(current_user, **values)
        except DomainError as error:
            db.session.rollback()
            attach_error(form, error)
        else:
            flash(_("The course is saved."), "success")
            return hx_redirect(url_for("courses.detail", course_id=course.id))
    status = 422 if form.errors or form.form_errors else 200
    return render(
        "courses/course_form.html", fragment="form", form=form, course=None, status=status
    )


@bp.route("/courses/<int:course_id>/edit", methods=["GET", "POST"])
@roles_required("staff")
def course_edit(course_id: int):  # access: staff
    course = load_course(course_id)
    form = CourseForm(obj=course) if request.method == "GET" else CourseForm()
    if request.method == "GET":
        for name in ("enrol_opens_at", "enrol_closes_at", "live_starts_at"):
            getattr(form, name).data = to_local(getattr(course, name))
    if form.validate_on_submit():
        try:
            values = form.values()
            cover_id = _save_cover(form)
            if cover_id:
                values["cover_upload_id"] = cover_id
            services.update_course(current_user, course_id, **values)
        except DomainError as error:
            db.session.rollback()
            attach_error(form, error)
        else:
            flash(_("The course is saved."), "success")
            return hx_redirect(url_for("courses.detail", course_id=course_id))
    status = 422 if form.errors or form.form_errors else 200
    return render(
        "courses/course_form.html", fragment="form", form=form, course=course, status=status
    )


def _save_lesson_file(form: LessonForm) -> int | None:
    file = form.file.data
    if file is None or not getattr(file, "filename", ""):
        return None
    return save_upload(file, uploaded_by=current_user.id, field="file").id


@bp.route("/courses/<int:course_id>/lessons/new", methods=["GET", "POST"])
@roles_required("staff")
def lesson_new(course_id: int):  # access: staff
    course = load_course(course_id)
    form = LessonForm()
    if request.method == "GET":
        form.position.data = services.next_lesson_position(course)
    return _lesson_form(course, None, form)


@bp.route("/courses/<int:course_id>/lessons/<int:lesson_id>/edit", methods=["GET", "POST"])
@roles_required("staff")
def lesson_edit(course_id: int, lesson_id: int):  # access: staff
    course = load_course(course_id)
    lesson = load_lesson(course, lesson_id)
    form = LessonForm(obj=lesson) if request.method == "GET" else LessonForm()
    if request.method == "GET":
        form.live_starts_at.data = to_local(lesson.live_starts_at)
    return _lesson_form(course, lesson, form)


def _lesson_form(course: Course, lesson: Lesson | None, form: LessonForm):
    if form.validate_on_submit():
        try:
            values = form.values()
            values["upload_id"] = _save_lesson_file(form)
            services.save_lesson(current_user, course, lesson, **values)
        except DomainError as error:
            db.session.rollback()
            attach_error(form, error)
        else:
            flash(_("The lesson is saved."), "success")
            return hx_redirect(url_for("courses.detail", course_id=course.id))
    status = 422 if form.errors or form.form_errors else 200
    return render(
        "courses/lesson_form.html",
        fragment="form",
        form=form,
        course=course,
        lesson=lesson,
        status=status,
    )


@bp.route("/courses/<int:course_id>/lessons/<int:lesson_id>/delete", methods=["GET", "POST"])
@roles_required("staff")
def lesson_delete(course_id: int, lesson_id: int):  # access: staff
    course = load_course(course_id)
    lesson = load_lesson(course, lesson_id)
    if request.method == "GET":
        return render(
            "courses/confirm.html",
            fragment="dialog",
            title=_("Delete this lesson?"),
            text=_(
                "%(lesson)s and the members' progress on it will be deleted. "
                "This cannot be undone.",
                lesson=lesson.title,
            ),
            action=url_for("courses.lesson_delete", course_id=course_id, lesson_id=lesson_id),
            button=_("Yes, delete the lesson"),
            back=url_for("courses.detail", course_id=course_id),
        )
    services.delete_lesson(current_user, lesson)
    flash(_("The lesson is deleted."), "success")
    return hx_redirect(url_for("courses.detail", course_id=course_id))


def _roster_rows(course_id: int | None):
    done = (
        sa.select(sa.func.count(sa.literal_column("1")))
        .select_from(Lesson)
        .where(Lesson.course_id == Enrolment.course_id)
        .scalar_subquery()
    )
    from .models import LessonProgress

    progress = (
        sa.select(sa.func.count(LessonProgress.id))
        .join(Lesson, Lesson.id == LessonProgress.lesson_id)
        .where(LessonProgress.enrolment_id == Enrolment.id, Lesson.course_id == Enrolment.course_id)
        .scalar_subquery()
    )
    query = (
        sa.select(Enrolment, User, progress.label("done"), done.label("total"))
        .join(User, User.id == Enrolment.user_id)
        .order_by(
            Enrolment.course_id,
            sa.case(
                {"enrolled": 0, "offered": 1, "waitlisted": 2}, value=Enrolment.status, else_=3
            ),
            Enrolment.waitlist_position,
            Enrolment.joined_at,
            Enrolment.id,
        )
    )
    if course_id is not None:
        query = query.where(Enrolment.course_id == course_id)
    return query


@bp.get("/courses/<int:course_id>/roster")
@roles_required("staff")
def roster(course_id: int):  # access: staff
    course = load_course(course_id)
    status = request.args.get("status", "")
    query = _roster_rows(course_id)
    if status in ("enrolled", "offered", "waitlisted", "cancelled"):
        query = query.where(Enrolment.status == status)
    page = paginate(query, request.args.get("page"), 50, scalars=False)
    return render(
        "courses/roster.html", fragment="content", course=course, page=page, status_filter=status
    )


ENROLMENT_HEADER = [
    "course_id",
    "course",
    "member_no",
    "name",
    "phone",
    "status",
    "waitlist_position",
    "lessons_done",
    "lessons_total",
    "joined_at",
    "completed_at",
    "certificate",
]


def _enrolment_csv_rows(course_id: int | None):
    for enrolment, user, done, total in db.session.execute(
        _roster_rows(course_id).execution_options(yield_per=500)
    ):
        yield [
            enrolment.course_id,
            enrolment.course.title,
            user.member_no or "",
            user.name,
            user.phone,
            enrolment.status,
            enrolment.waitlist_position if enrolment.status == "waitlisted" else "",
            done,
            total,
            enrolment.joined_at.isoformat(timespec="seconds"),
            enrolment.completed_at.isoformat(timespec="seconds") if enrolment.completed_at else "",
            enrolment.certificate_code or "",
        ]


@bp.get("/courses/<int:course_id>/roster.csv")
@roles_required("staff")
def roster_csv(course_id: int):  # access: staff
    load_course(course_id)
    return csv_response(
        f"course-{course_id}-roster.csv", ENROLMENT_HEADER, _enrolment_csv_rows(course_id)
    )


@bp.get("/courses/enrolments.csv")
@roles_required("staff")
def export_enrolments():  # access: staff
    return csv_response("course-enrolments.csv", ENROLMENT_HEADER, _enrolment_csv_rows(None))


# --- staff: exams -------------------------------------------------------------


@bp.get("/exams/staff")
@roles_required("staff")
def staff_exams():  # access: staff
    waiting = (
        sa.select(
            ExamRegistration.session_id.label("sid"),
            sa.func.count(ExamRegistration.id)
            .filter(ExamRegistration.status == "waitlisted")
            .label("waiting"),
        )
        .group_by(ExamRegistration.session_id)
        .subquery()
    )
    query = (
        sa.select(ExamSession, waiting.c.waiting)
        .outerjoin(waiting, waiting.c.sid == ExamSession.id)
        .order_by(ExamSession.starts_at.desc(), ExamSession.id.desc())
    )
    page = paginate(query, request.args.get("page"), 20, scalars=False)
    return render("courses/staff_exams.html", fragment="content", page=page)


def _course_choices(form: ExamSessionForm) -> None:
    form.courses.choices = [
        (c.id, c.title)
        for c in db.session.scalars(
            sa.select(Course).where(Course.status != "archived").order_by(Course.title)
        )
    ]


@bp.route("/exams/new", methods=["GET", "POST"])
@roles_required("staff")
def exam_new():  # access: staff
    form = ExamSessionForm()
    _course_choices(form)
    return _exam_form(None, form)


@bp.route("/exams/<int:session_id>/edit", methods=["GET", "POST"])
@roles_required("staff")
def exam_edit(session_id: int):  # access: staff
    session = load_session(session_id)
    form = ExamSessionForm(obj=session) if request.method == "GET" else ExamSessionForm()
    _course_choices(form)
    if request.method == "GET":
        form.courses.data = [c.id for c in session.courses]
        form.starts_at.data = to_local(session.starts_at)
        form.registration_deadline.data = to_local(session.registration_deadline)
    return _exam_form(session, form)


def _exam_form(session: ExamSession | None, form: ExamSessionForm):
    if form.validate_on_submit():
        try:
            if session is None:
                session = services.create_exam_session(
                    current_user, course_ids=form.courses.data, **form.values()
                )
            else:
                services.update_exam_session(
                    current_user, session.id, course_ids=form.courses.data, **form.values()
                )
        except DomainError as error:
            db.session.rollback()
            attach_error(form, error)
        else:
            flash(_("The exam session is saved."), "success")
            return hx_redirect(url_for("courses.exam_detail", session_id=session.id))
    status = 422 if form.errors or form.form_errors else 200
    return render(
        "courses/exam_form.html", fragment="form", form=form, session=session, status=status
    )


def _exam_roster_query(session_id: int | None):
    query = (
        sa.select(ExamRegistration, User)
        .join(User, User.id == ExamRegistration.user_id)
        .order_by(
            ExamRegistration.session_id,
            sa.case(
                {"enrolled": 0, "offered": 1, "waitlisted": 2},
                value=ExamRegistration.status,
                else_=3,
            ),
            ExamRegistration.waitlist_position,
            ExamRegistration.joined_at,
            ExamRegistration.id,
        )
    )
    if session_id is not None:
        query = query.where(ExamRegistration.session_id == session_id)
    return query


def _result_form(registration: ExamRegistration, formdata: Any = None) -> ResultForm:
    tri = {None: "", True: "yes", False: "no"}
    form = ResultForm(formdata=formdata, prefix=f"r{registration.id}")
    if formdata is None:
        form.attended.data = tri[registration.attended]
        form.theory_score.data = registration.theory_score
        form.practical_score.data = registration.practical_score
        form.passed.data = {None: "", True: "pass", False: "fail"}[registration.passed]
    return form


@bp.get("/exams/<int:session_id>/roster")
@roles_required("staff")
def exam_roster(session_id: int):  # access: staff
    session = load_session(session_id)
    page = paginate(_exam_roster_query(session_id), request.args.get("page"), 50, scalars=False)
    rows = [(r, u, _result_form(r)) for r, u in page.items]
    return render(
        "courses/exam_roster.html",
        fragment="content",
        session=session,
        page=page,
        rows=rows,
        mask_id=services.mask_id_number,
        education_labels=EDUCATION_LABELS,
    )


@bp.post("/exams/<int:session_id>/roster/<int:registration_id>")
@roles_required("staff")
def exam_result(session_id: int, registration_id: int):  # access: staff
    session = load_session(session_id)
    registration = db.session.get(ExamRegistration, registration_id)
    if registration is None or registration.session_id != session.id:
        abort(404)
    user = db.session.get(User, registration.user_id)
    form = _result_form(registration, request.form)
    saved = False
    if form.validate_on_submit():
        try:
            services.record_result(current_user, registration, **form.values())
        except DomainError as error:
            db.session.rollback()
            attach_error(form, error)
        else:
            saved = True
    status = 422 if form.errors or form.form_errors else 200
    if not is_fragment_request() and status == 200:
        flash(_("The result is saved."), "success")
        return hx_redirect(url_for("courses.exam_roster", session_id=session_id))
    return render(
        "courses/exam_roster.html",
        fragment="row",
        status=status,
        session=session,
        registration=registration,
        user=user,
        form=form,
        saved=saved,
        rows=[(registration, user, form)],
        page=None,
        mask_id=services.mask_id_number,
        education_labels=EDUCATION_LABELS,
    )


CANDIDATE_HEADER = [
    "session_id",
    "qualification",
    "member_no",
    "account_name",
    "phone",
    "status",
    "waitlist_position",
    "real_name",
    "id_number",
    "education",
    "years_of_work",
    "attended",
    "theory_score",
    "practical_score",
    "passed",
]


def _candidate_rows(session_id: int | None):
    yes_no = {None: "", True: "yes", False: "no"}
    for registration, user in db.session.execute(
        _exam_roster_query(session_id).execution_options(yield_per=500)
    ):
        yield [
            registration.session_id,
            registration.session.qualification,
            user.member_no or "",
            user.name,
            user.phone,
            registration.status,
            registration.waitlist_position if registration.status == "waitlisted" else "",
            registration.real_name,
            registration.id_number,  # the only place the full number is shown: staff export
            registration.education,
            registration.years_of_work,
            yes_no[registration.attended],
            "" if registration.theory_score is None else registration.theory_score,
            "" if registration.practical_score is None else registration.practical_score,
            {None: "", True: "pass", False: "fail"}[registration.passed],
        ]


@bp.get("/exams/<int:session_id>/roster.csv")
@roles_required("staff")
def exam_roster_csv(session_id: int):  # access: staff
    load_session(session_id)
    _audit_export(session_id)
    return csv_response(
        f"exam-{session_id}-candidates.csv", CANDIDATE_HEADER, _candidate_rows(session_id)
    )


@bp.get("/exams/candidates.csv")
@roles_required("staff")
def export_candidates():  # access: staff
    _audit_export(None)
    return csv_response("exam-candidates.csv", CANDIDATE_HEADER, _candidate_rows(None))


def _audit_export(session_id: int | None) -> None:
    """Exporting full ID numbers is recorded (a GET that writes: mark the write intent)."""
    record(current_user, "exam.export_candidates", "exam_session", session_id)
