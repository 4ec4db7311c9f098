"""/me shows what the ORM says: each panel is one Core statement, checked here against
independent ORM queries on the demo data (plus a waitlist, lesson progress and a refund)."""

from __future__ import annotations

import sqlalchemy as sa

from memberplatform.auth.models import User
from memberplatform.courses import services as courses
from memberplatform.courses.models import Course, Enrolment
from memberplatform.donations.models import Donation
from memberplatform.extensions import db
from memberplatform.kits.models import KitClaim
from memberplatform.legal.models import LegalRequest
from tests.querycount import count_queries

PASSWORD = "Demo-Pass-2020"


def _seeded(app) -> User:
    runner = app.test_cli_runner()
    assert runner.invoke(args=["seed-demo", "--password", PASSWORD]).exit_code == 0
    with app.app_context():
        member = db.session.scalar(sa.select(User).where(User.phone == "13800000001"))
        db.session.expunge(member)
    return member


def test_me_panels_match_the_orm(app, make_user):
    member = _seeded(app)
    first = make_user(phone="13712345678")
    with app.app_context():
        # a one-seat course someone else took first: the member is number 1 in line
        staff = db.session.scalar(sa.select(User).where(User.phone == "13600000000"))
        full = courses.create_course(
            staff,
            title="满员小班课",
            teacher="讲师",
            description="",
            category="",
            status="published",
            capacity=1,
            points_reward=0,
        )
        courses.enrol(first.id, full.id)
        courses.enrol(member.id, full.id)
        db.session.commit()
    client = app.test_client()
    client.post("/auth/login", data={"phone": member.phone, "password": PASSWORD})
    with app.app_context():
        engine = db.engine
    with count_queries(engine) as statements:
        page = client.get("/me").get_data(as_text=True)
    assert len(statements) <= 8
    with app.app_context():
        session = db.session
        live = session.scalars(
            sa.select(Donation).where(Donation.user_id == member.id, Donation.refunded_at.is_(None))
        ).all()
        latest = session.scalars(
            sa.select(Donation).where(Donation.user_id == member.id).order_by(Donation.id.desc())
        ).all()[:5]
        claims = session.scalars(
            sa.select(KitClaim).where(KitClaim.user_id == member.id).order_by(KitClaim.id.desc())
        ).all()[:5]
        enrolments = session.scalars(
            sa.select(Enrolment)
            .where(Enrolment.user_id == member.id, Enrolment.status != "cancelled")
            .order_by(Enrolment.joined_at.desc())
        ).all()[:10]
        requests = session.scalars(
            sa.select(LegalRequest)
            .where(LegalRequest.requester_id == member.id)
            .order_by(LegalRequest.id.desc())
        ).all()[:5]
        titles = {e.course_id: session.get(Course, e.course_id).title for e in enrolments}
        request_titles = [(r.number, r.item.title) for r in requests]
        assert live and claims and enrolments  # the demo member has history to show
        total = sum(d.points for d in live)
        expected = f"共 {len(live)} 笔捐赠，合计 {total:,} 积分。"
        certificates = [d.certificate_no for d in latest]
        codes = [c.pickup_code for c in claims if c.status == "reserved" and c.mode == "pickup"]
    assert expected in page
    for number in certificates:
        assert number in page
    for code in codes:
        assert code in page
    for title in titles.values():
        assert title in page
    assert "候补第 1 位" in page  # the waitlisted course
    for number, title in request_titles:
        assert number in page and title in page
