"""Who may use each courses/exams route: anonymous, member, lawyer, staff, admin."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from memberplatform import create_app
from memberplatform.courses.models import Lesson
from memberplatform.extensions import db
from tests.conftest import PASSWORD, TEST_CONFIG

ROLES = ("anonymous", "member", "lawyer", "staff", "admin")
LOGIN = 302
STAFF = (LOGIN, 403, 403, 200, 200)
ANYONE = (200, 200, 200, 200, 200)

# {c}: a published course, {d}: a draft course, {l}: a lesson of {c}, {e}: an exam session
TABLE: dict[tuple[str, str], tuple[int, ...]] = {
    ("GET", "/courses"): ANYONE,
    ("GET", "/courses/{c}"): ANYONE,
    ("GET", "/courses/{d}"): (404, 404, 404, 200, 200),
    ("GET", "/courses/{c}/cover"): (404,) * 5,  # no cover uploaded
    ("GET", "/courses/{c}/certificate"): (LOGIN, 404, 404, 404, 404),  # nobody completed
    ("GET", "/courses/certificates/{forged}"): (404,) * 5,
    ("GET", "/courses/{c}/cancel"): (LOGIN, 404, 404, 404, 404),  # nobody enrolled
    ("POST", "/courses/{c}/cancel"): (LOGIN, 404, 404, 404, 404),
    ("POST", "/courses/{c}/confirm"): (LOGIN, 303, 303, 303, 303),  # refused with a message
    ("POST", "/courses/{c}/enrol"): (LOGIN, 303, 303, 303, 303),
    ("POST", "/courses/{d}/enrol"): (LOGIN, 404, 404, 303, 303),
    ("POST", "/courses/{c}/lessons/{l}/done"): (LOGIN, 303, 303, 303, 303),  # refused, msg
    ("GET", "/courses/{c}/lessons/{l}/file"): (LOGIN, 403, 403, 404, 404),
    ("GET", "/courses/staff"): STAFF,
    ("GET", "/courses/new"): STAFF,
    ("GET", "/courses/{c}/edit"): STAFF,
    ("GET", "/courses/{c}/lessons/new"): STAFF,
    ("GET", "/courses/{c}/lessons/{l}/edit"): STAFF,
    ("GET", "/courses/{c}/lessons/{l}/delete"): STAFF,
    ("GET", "/courses/{c}/roster"): STAFF,
    ("GET", "/courses/{c}/roster.csv"): STAFF,
    ("GET", "/courses/enrolments.csv"): STAFF,
    ("GET", "/exams"): ANYONE,
    ("GET", "/exams/{e}"): ANYONE,
    ("POST", "/exams/{e}/register"): (LOGIN, 422, 422, 422, 422),  # empty form
    ("GET", "/exams/{e}/cancel"): (LOGIN, 404, 404, 404, 404),
    ("POST", "/exams/{e}/confirm"): (LOGIN, 303, 303, 303, 303),
    ("GET", "/exams/staff"): STAFF,
    ("GET", "/exams/new"): STAFF,
    ("GET", "/exams/{e}/edit"): STAFF,
    ("GET", "/exams/{e}/roster"): STAFF,
    ("GET", "/exams/{e}/roster.csv"): STAFF,
    ("GET", "/exams/candidates.csv"): STAFF,
    ("POST", "/exams/{e}/roster/999999"): (LOGIN, 403, 403, 404, 404),
    ("GET", "/courses/999999"): (404,) * 5,
    ("GET", "/exams/999999"): (404,) * 5,
    ("GET", "/courses/999999/roster"): (LOGIN, 403, 403, 404, 404),
}


def test_table_covers_every_courses_route():
    app = create_app({**TEST_CONFIG, "DATABASE_URL": "sqlite://"})
    routes = {
        (method, rule.rule)
        for rule in app.url_map.iter_rules()
        if rule.endpoint.split(".")[0] == "courses"
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    forms = {  # form posts: covered by their own view tests
        ("POST", "/courses/new"),
        ("POST", "/courses/<int:course_id>/edit"),
        ("POST", "/courses/<int:course_id>/lessons/new"),
        ("POST", "/courses/<int:course_id>/lessons/<int:lesson_id>/edit"),
        ("POST", "/courses/<int:course_id>/lessons/<int:lesson_id>/delete"),
        ("POST", "/exams/<int:session_id>/cancel"),
        ("POST", "/exams/new"),
        ("POST", "/exams/<int:session_id>/edit"),
    }
    adapter = app.url_map.bind("localhost")
    sample = {"c": 1, "d": 2, "l": 3, "e": 4, "forged": "0123456789abcdef"}
    covered = set()
    for method, path in TABLE:
        rule, _ = adapter.match(path.format(**sample), method=method, return_rule=True)
        covered.add((method, rule.rule))
    assert routes - forms == covered


@pytest.fixture
def objects(app, make_course, make_exam):
    course = make_course(lessons=1)
    draft = make_course(title="草稿", status="draft")
    exam = make_exam()
    with app.app_context():
        lesson = db.session.scalar(sa.select(Lesson.id).where(Lesson.course_id == course))
    return {"c": course, "d": draft, "l": lesson, "e": exam, "forged": "0123456789abcdef"}


@pytest.mark.parametrize(("method", "path"), list(TABLE))
def test_access(app, make_user, objects, method, path):
    users = {role: make_user(roles=(role,)) for role in ROLES[1:]}
    url = path.format(**objects)
    for index, role in enumerate(ROLES):
        client = app.test_client()
        if role != "anonymous":
            login = client.post(
                "/auth/login", data={"phone": users[role].phone, "password": PASSWORD}
            )
            assert login.status_code == 303
        response = client.open(url, method=method)
        response.get_data()  # consume streamed CSV bodies before the next client
        response.close()
        assert response.status_code == TABLE[(method, path)][index], (role, method, url)
