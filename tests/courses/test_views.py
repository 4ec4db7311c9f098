"""Pages and htmx fragments of courses and exams, through HTTP."""

from __future__ import annotations

import io

import pytest
import sqlalchemy as sa

from memberplatform.audit.models import AuditEntry
from memberplatform.courses import services
from memberplatform.courses.models import Course, Enrolment, ExamRegistration, Lesson
from memberplatform.extensions import db
from memberplatform.points import services as points
from tests.concurrency import integrity_problems
from tests.courses.conftest import BAD_ID, GOOD_ID
from tests.querycount import count_queries, read_before_writing, record_transactions

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


@pytest.fixture
def member(make_user):
    return make_user(name="张三明")


def _lesson_ids(app, course_id):
    with app.app_context():
        return list(
            db.session.scalars(
                sa.select(Lesson.id).where(Lesson.course_id == course_id).order_by(Lesson.position)
            )
        )


def test_catalogue_search_and_category(client, make_course, hx):
    make_course(title="健康管理师（三级）", category="职业技能", capacity=30)
    make_course(title="律师直播：劳动用工", category="法律服务")
    make_course(title="草稿课程", status="draft")
    page = client.get("/courses").get_data(as_text=True)
    assert "健康管理师" in page and "律师直播" in page and "草稿课程" not in page
    assert 'hx-trigger="search, keyup delay:300ms changed"' in page and "hx-push-url" in page
    assert "剩余 30 / 30 个名额" in page
    found = client.get("/courses?q=健康").get_data(as_text=True)
    assert "健康管理师（三级）" in found and "律师直播：劳动用工" not in found
    fragment = client.get("/courses?q=律师", headers=hx)
    body = fragment.get_data(as_text=True)
    assert fragment.status_code == 200 and "<html" not in body and 'id="course-results"' in body
    assert "律师直播：劳动用工" in body and "健康管理师（三级）" not in body
    assert "HX-Request" in fragment.headers["Vary"]
    by_category = client.get("/courses?category=法律服务").get_data(as_text=True)
    assert "律师直播：劳动用工" in by_category and "健康管理师（三级）</a>" not in by_category
    nothing = client.get("/courses?q=%25%25_").get_data(as_text=True)
    assert "没有符合搜索条件的课程" in nothing


def test_the_course_list_keeps_its_categories_and_live_sessions_a_moment(
    app_factory, make_course, monkeypatch
):
    """With the short cache on (production), the categories and the upcoming live
    sessions beside every search are read once per PROGRESS_CACHE_SECONDS per worker;
    the courses found are read on every request."""
    from datetime import timedelta

    from memberplatform.core import cache
    from memberplatform.db import utcnow
    from tests.querycount import count_queries

    app = app_factory(PROGRESS_CACHE_SECONDS=60)
    make_course(
        title="律师直播：劳动用工", category="法律服务", live_starts_at=utcnow() + timedelta(days=2)
    )
    client = app.test_client()
    with app.app_context():
        engine = db.engine
    with count_queries(engine) as first:
        page = client.get("/courses").get_data(as_text=True)
    assert "法律服务" in page and page.count("律师直播：劳动用工") == 2  # listed, and live
    make_course(title="健康管理师（三级）", category="心理健康专题")
    with count_queries(engine) as second:
        page = client.get("/courses").get_data(as_text=True)
    assert len(second) == len(first) - 3  # categories, courses' and lessons' live sessions
    assert "健康管理师（三级）" in page  # found at once; its category among the choices later
    assert '<option value="心理健康专题">' not in page
    later = cache.time.monotonic() + 61
    monkeypatch.setattr(cache.time, "monotonic", lambda: later)
    assert '<option value="心理健康专题">' in client.get("/courses").get_data(as_text=True)


def test_enrol_learn_complete_and_certificate(client, auth, member, make_course, app, hx):
    course_id = make_course(lessons=2, points_reward=30)
    auth.login(member)
    page = client.get(f"/courses/{course_id}").get_data(as_text=True)
    assert "报名" in page
    response = client.post(f"/courses/{course_id}/enrol", headers=hx)
    body = response.get_data(as_text=True)
    assert response.status_code == 200 and 'id="enrolment"' in body and "<html" not in body
    assert "已报名" in body and "<progress" in body
    first, second = _lesson_ids(app, course_id)
    body = client.post(f"/courses/{course_id}/lessons/{first}/done", headers=hx).get_data(
        as_text=True
    )
    assert "进度：已完成 1 / 2 课" in body
    response = client.post(f"/courses/{course_id}/lessons/{second}/done", headers=hx)
    assert "points-changed" in response.headers["HX-Trigger"]
    assert "恭喜" in response.get_data(as_text=True)
    with app.app_context():
        assert points.balance_of(member.id) == 30
        code = services.enrolment_of(member.id, course_id).certificate_code
    certificate = client.get(f"/courses/{course_id}/certificate").get_data(as_text=True)
    assert "张三明" in certificate and f"/courses/certificates/{code}" in certificate
    assert "<svg" in certificate and "data-print" in certificate
    public = app.test_client().get(f"/courses/certificates/{code}").get_data(as_text=True)
    assert "张*明" in public and "张三明" not in public
    assert app.test_client().get("/courses/certificates/0123456789abcdef").status_code == 404
    assert app.test_client().get("/courses/certificates/forged").status_code == 404
    me = client.get("/me").get_data(as_text=True)
    assert "我的课程" in me and "证书" in me


def test_enrol_without_js_redirects_with_a_message(client, auth, member, make_course):
    course_id = make_course()
    auth.login(member)
    response = client.post(f"/courses/{course_id}/enrol")
    assert response.status_code == 303 and response.headers["Location"] == f"/courses/{course_id}"
    again = client.post(f"/courses/{course_id}/enrol", follow_redirects=True)
    assert "您已报名本课程" in again.get_data(as_text=True)


def test_an_enrolment_reads_its_course_before_its_transaction_begins(
    client, auth, member, make_course, app, hx
):
    """In the 200-for-30-seats rush, enrolments queue on the write lock (SQLite) or the
    course row (PostgreSQL): the page's read of the course comes before that."""
    course_id = make_course()
    auth.login(member)
    with app.app_context():
        engine = db.engine
    with record_transactions(engine) as events:
        response = client.post(f"/courses/{course_id}/enrol", headers=hx)
    assert response.status_code == 200
    assert read_before_writing(events, "courses")


def test_enrolling_in_a_draft_or_unknown_course_is_404_and_charges_nothing(
    client, auth, member, make_course, hx, app
):
    course_id = make_course(status="draft", points_cost=10)
    auth.login(member)
    assert client.post(f"/courses/{course_id}/enrol", headers=hx).status_code == 404
    assert client.post("/courses/999999/enrol", headers=hx).status_code == 404
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(Enrolment.id))) == 0


def test_an_enrolment_loads_the_course_once_before_its_response(
    client, auth, member, make_course, hx, app
):
    """The view checks the course by its status alone, the service locks it without
    its lessons, the member's enrolment is read without joining the course again,
    the response counts progress from what it loaded: 10 statements (15 before),
    whatever the course's size."""
    course_id = make_course(lessons=12)
    auth.login(member)
    with app.app_context():
        engine = db.engine
    with count_queries(engine) as statements:
        response = client.post(f"/courses/{course_id}/enrol", headers=hx)
    assert response.status_code == 200 and "第12课" in response.get_data(as_text=True)
    assert len(statements) <= 10, "\n".join(statements)
    lesson_reads = [s for s in statements if s.lstrip().upper().startswith("SELECT COURSE_LESSONS")]
    assert len(lesson_reads) == 1  # the response's course page (its lessons) alone


def test_enrol_twice_over_htmx_gets_422_with_message(client, auth, member, make_course, hx, app):
    course_id = make_course()
    auth.login(member)
    client.post(f"/courses/{course_id}/enrol", headers=hx)
    response = client.post(f"/courses/{course_id}/enrol", headers=hx)
    assert response.status_code == 422 and "您已报名本课程" in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(Course, course_id).enrolled_count == 1


def test_full_course_waitlist_position_and_cancel_confirmation(
    client, auth, member, make_course, make_user, app, hx
):
    course_id = make_course(capacity=1)
    first = make_user()
    with app.app_context():
        services.enrol(first.id, course_id)
        db.session.commit()
    auth.login(member)
    assert "加入候补" in client.get(f"/courses/{course_id}").get_data(as_text=True)
    body = client.post(f"/courses/{course_id}/enrol", headers=hx).get_data(as_text=True)
    assert "您排在第 1 位" in body
    # the confirmation: a page without JS, a dialog over htmx
    page = client.get(f"/courses/{course_id}/cancel").get_data(as_text=True)
    assert "<dialog" not in page and "退出" in page
    dialog = client.get(f"/courses/{course_id}/cancel", headers=hx).get_data(as_text=True)
    assert dialog.strip().startswith("<dialog") and "data-open" in dialog
    response = client.post(f"/courses/{course_id}/cancel")
    assert response.status_code == 303
    with app.app_context():
        assert services.enrolment_of(member.id, course_id).status == "cancelled"
    assert client.get(f"/courses/{course_id}/cancel").status_code == 404
    assert integrity_problems(app) == []


def test_marking_a_lesson_when_not_enrolled_is_refused(client, auth, member, make_course, app, hx):
    course_id = make_course()
    other_id = make_course(title="另一门")
    lesson = _lesson_ids(app, course_id)[0]
    auth.login(member)
    response = client.post(f"/courses/{course_id}/lessons/{lesson}/done", headers=hx)
    assert response.status_code == 422 and "报名后才能" in response.get_data(as_text=True)
    assert client.post(f"/courses/{other_id}/lessons/{lesson}/done").status_code == 404
    assert client.post(f"/courses/999999/lessons/{lesson}/done").status_code == 404
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(Enrolment.id))) == 0


def test_lesson_content_and_files_only_for_enrolled(
    client, auth, member, make_course, app, staff, make_user
):
    course_id = make_course(lessons=0)
    auth.login(staff)
    response = client.post(
        f"/courses/{course_id}/lessons/new",
        data={
            "title": "资料课",
            "position": "1",
            "body": "仅学员可见的正文",
            "video_url": "https://video.example.org/1",
            "file": (io.BytesIO(b"%PDF-1.4 test"), "handout.pdf"),
        },
        content_type="multipart/form-data",
    )
    assert response.status_code == 303
    lesson = _lesson_ids(app, course_id)[0]
    auth.logout()
    outsider = app.test_client()
    assert "仅学员可见的正文" not in outsider.get(f"/courses/{course_id}").get_data(as_text=True)
    auth.login(member)
    assert client.get(f"/courses/{course_id}/lessons/{lesson}/file").status_code == 403
    client.post(f"/courses/{course_id}/enrol")
    page = client.get(f"/courses/{course_id}").get_data(as_text=True)
    assert "仅学员可见的正文" in page and "https://video.example.org/1" in page
    download = client.get(f"/courses/{course_id}/lessons/{lesson}/file")
    assert download.status_code == 200 and download.data.startswith(b"%PDF")


def test_staff_create_and_edit_course_with_validation(client, auth, staff, app, hx):
    auth.login(staff)
    bad = client.post(
        "/courses/new",
        data={"title": "", "points_cost": "0", "points_reward": "x", "status": "published"},
        headers=hx,
    )
    body = bad.get_data(as_text=True)
    assert bad.status_code == 422 and "<html" not in body and 'id="title-error"' in body
    window = client.post(
        "/courses/new",
        data={
            "title": "窗口错误",
            "points_cost": "0",
            "points_reward": "0",
            "status": "published",
            "enrol_opens_at": "2030-05-02T10:00",
            "enrol_closes_at": "2030-05-01T10:00",
        },
    )
    assert window.status_code == 422 and "报名截止时间必须晚于开始时间" in window.get_data(
        as_text=True
    )
    created = client.post(
        "/courses/new",
        data={
            "title": "新课程",
            "teacher": "王老师",
            "category": "职业技能",
            "capacity": "2",
            "points_cost": "0",
            "points_reward": "10",
            "status": "published",
            "live_starts_at": "2030-05-01T19:30",
            "live_url": "https://live.example.org/a",
            "cover": (io.BytesIO(PNG), "cover.png"),
        },
        content_type="multipart/form-data",
    )
    assert created.status_code == 303
    with app.app_context():
        course = db.session.scalar(sa.select(Course).where(Course.title == "新课程"))
        assert course.live_starts_at.hour == 11  # 19:30 Beijing = 11:30 UTC
        assert course.cover_upload_id
        course_id = course.id
    assert app.test_client().get(f"/courses/{course_id}/cover").status_code == 200
    edit = client.get(f"/courses/{course_id}/edit").get_data(as_text=True)
    assert 'value="2030-05-01T19:30"' in edit
    response = client.post(
        f"/courses/{course_id}/edit",
        data={
            "title": "新课程（修订）",
            "points_cost": "0",
            "points_reward": "10",
            "status": "published",
            "capacity": "3",
        },
    )
    assert response.status_code == 303
    with app.app_context():
        actions = db.session.scalars(sa.select(AuditEntry.action).order_by(AuditEntry.id)).all()
        assert actions == ["course.create", "course.update"]


def test_staff_roster_and_csv_are_formula_safe(client, auth, staff, make_course, make_user, app):
    course_id = make_course(capacity=1)
    evil = make_user(name="=HYPERLINK(1)")
    other = make_user()
    with app.app_context():
        services.enrol(evil.id, course_id)
        services.enrol(other.id, course_id)
        db.session.commit()
    auth.login(staff)
    page = client.get(f"/courses/{course_id}/roster").get_data(as_text=True)
    assert "候补第 1 位" in page and "<progress" in page
    assert "候补" in client.get(f"/courses/{course_id}/roster?status=waitlisted").get_data(
        as_text=True
    )
    csv = client.get(f"/courses/{course_id}/roster.csv")
    text = csv.data.decode("utf-8-sig")
    assert csv.mimetype == "text/csv" and "'=HYPERLINK(1)" in text
    assert client.get("/courses/enrolments.csv").status_code == 200
    staff_page = client.get("/courses/staff").get_data(as_text=True)
    assert "健康管理师" in staff_page


def _registration(**overrides):
    data = {
        "real_name": "张三明",
        "id_number": GOOD_ID,
        "education": "college",
        "years_of_work": "5",
    }
    data.update(overrides)
    return data


def test_exam_registration_flow_masks_id(client, auth, member, make_exam, app, hx, staff):
    session_id = make_exam(seats=1)
    auth.login(member)
    page = client.get(f"/exams/{session_id}").get_data(as_text=True)
    assert "身份证号" in page and "剩余 1 / 1 个座位" in page
    bad = client.post(
        f"/exams/{session_id}/register", data=_registration(id_number=BAD_ID), headers=hx
    )
    assert bad.status_code == 422 and "校验码" in bad.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(ExamRegistration.id))) == 0
    ok = client.post(f"/exams/{session_id}/register", data=_registration(), headers=hx)
    assert ok.status_code == 204 and ok.headers["HX-Redirect"] == f"/exams/{session_id}"
    page = client.get(f"/exams/{session_id}").get_data(as_text=True)
    assert "1101**********002X" in page and GOOD_ID not in page
    assert GOOD_ID not in client.get("/me").get_data(as_text=True)
    assert GOOD_ID not in client.get("/exams").get_data(as_text=True)
    # staff: masked on the roster page, full only in the CSV export (which is audited)
    auth.logout()
    auth.login(staff)
    roster = client.get(f"/exams/{session_id}/roster").get_data(as_text=True)
    assert "1101**********002X" in roster and GOOD_ID not in roster
    export = client.get(f"/exams/{session_id}/roster.csv").data.decode("utf-8-sig")
    assert GOOD_ID in export
    with app.app_context():
        assert "exam.export_candidates" in db.session.scalars(sa.select(AuditEntry.action)).all()
        registration_id = db.session.scalar(sa.select(ExamRegistration.id))
    result = client.post(
        f"/exams/{session_id}/roster/{registration_id}",
        data={
            f"r{registration_id}-attended": "yes",
            f"r{registration_id}-theory_score": "88",
            f"r{registration_id}-practical_score": "120",
            f"r{registration_id}-passed": "pass",
        },
        headers=hx,
    )
    assert result.status_code == 422 and "0 到 100" in result.get_data(as_text=True)
    result = client.post(
        f"/exams/{session_id}/roster/{registration_id}",
        data={
            f"r{registration_id}-attended": "yes",
            f"r{registration_id}-theory_score": "88",
            f"r{registration_id}-practical_score": "76",
            f"r{registration_id}-passed": "pass",
        },
        headers=hx,
    )
    body = result.get_data(as_text=True)
    assert result.status_code == 200 and body.strip().startswith("<li") and "已保存" in body
    auth.logout()
    auth.login(member)
    page = client.get(f"/exams/{session_id}").get_data(as_text=True)
    assert "88" in page and "76" in page and "合格" in page


def test_exam_prerequisite_shown_and_enforced(client, auth, member, make_course, make_exam, app):
    course_id = make_course(title="健康管理师课程")
    session_id = make_exam(course_ids=[course_id], requires_completion=True)
    auth.login(member)
    assert "请先完成课程" in client.get(f"/exams/{session_id}").get_data(as_text=True)
    response = client.post(f"/exams/{session_id}/register", data=_registration())
    assert response.status_code == 422 and "请先完成课程" in response.get_data(as_text=True)


def test_staff_create_exam_session(client, auth, staff, make_course, app):
    course_id = make_course()
    auth.login(staff)
    bad = client.post(
        "/exams/new",
        data={
            "qualification": "健康管理师",
            "seats": "10",
            "status": "published",
            "starts_at": "2030-06-01T09:00",
            "registration_deadline": "2030-06-10T09:00",
            "place": "考场",
        },
    )
    assert bad.status_code == 422 and "报名须在考试开始前截止" in bad.get_data(as_text=True)
    ok = client.post(
        "/exams/new",
        data={
            "qualification": "健康管理师",
            "seats": "10",
            "status": "published",
            "starts_at": "2030-06-01T09:00",
            "registration_deadline": "2030-05-20T09:00",
            "place": "考场",
            "courses": [str(course_id)],
            "requires_completion": "y",
        },
    )
    assert ok.status_code == 303
    assert "健康管理师" in client.get("/exams").get_data(as_text=True)
    assert "健康管理师" in client.get("/exams/staff").get_data(as_text=True)


def test_unknown_ids_are_404(client, auth, member, staff, make_course):
    course_id = make_course(status="draft")
    for path in (
        "/courses/999999",
        f"/courses/{course_id}",
        "/exams/999999",
        "/courses/999999/certificate",
        f"/courses/{course_id}/cover",
    ):
        assert client.get(path).status_code in (302, 404), path
    auth.login(member)
    assert client.get(f"/courses/{course_id}").status_code == 404  # drafts: staff only
    assert client.get(f"/courses/{course_id}/certificate").status_code == 404
    auth.logout()
    auth.login(staff)
    assert client.get(f"/courses/{course_id}").status_code == 200
