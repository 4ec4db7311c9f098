"""Objects the access matrix, XSS and upload tests need, made through each domain's services.

Every builder takes the :class:`~tests.security.world.World`, runs in its own committed
transaction and returns plain values (ids, numbers) for building URLs.
"""

from __future__ import annotations

import io
from datetime import timedelta

import sqlalchemy as sa
from werkzeug.datastructures import FileStorage

from memberplatform.db import utcnow

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def points(w, actor: str = "member", amount: int = 1000) -> None:
    from memberplatform.points import services

    def grant():
        services.grant(
            w.ids[actor],
            amount,
            actor=w.ids["admin"],
            note="security tests",
            idempotency_key=f"sec-grant-{w.seq()}",
        )

    w.run(grant)


def notification(w, owner: str = "member") -> int:
    from memberplatform.notifications.services import notify

    return w.run(lambda: notify(w.ids[owner], "account.welcome", {}, "/me"))


# --- donations -------------------------------------------------------------------------


def campaign(w, status: str = "open", **fields) -> int:
    from memberplatform.donations import services

    def make():
        now = utcnow()
        values = dict(
            title=f"口罩捐赠 {w.seq()}",
            story="为医院捐赠口罩",
            beneficiary_name="普仁医院",
            beneficiary_type="hospital",
            item_name="口罩",
            unit_label="只",
            points_per_unit=10,
            target_units=1000,
            min_units=None,
            max_units=None,
            opens_at=now - timedelta(days=1),
            closes_at=now + timedelta(days=30),
        )
        values.update(fields)
        made = services.create_campaign(w.ids["staff"], **values)
        if status != "draft":
            services.change_status(made.id, "open", w.ids["staff"])
        return made.id

    return w.run(make)


def donation(w, owner: str = "member") -> dict:
    """An open campaign with one donation by ``owner``: ids and certificate number."""
    from memberplatform.donations import services

    points(w, owner, 100)
    campaign_id = campaign(w)

    def give():
        result = services.donate(
            w.ids[owner], campaign_id, 2, idempotency_key=f"sec-donation-{w.seq()}"
        )
        return {
            "campaign_id": campaign_id,
            "donation_id": result.donation.id,
            "number": result.donation.certificate_no,
        }

    return w.run(give)


def fulfilment(w, data: bytes = PDF, filename: str = "delivery.pdf") -> dict:
    """A campaign with a donation and a delivery record carrying an uploaded file."""
    from memberplatform.donations import services

    made = donation(w)

    def record():
        file = FileStorage(io.BytesIO(data), filename=filename, content_type="application/pdf")
        fulfilment = services.record_fulfilment(
            made["campaign_id"],
            w.ids["staff"],
            quantity=1,
            delivered_on=utcnow().date(),
            note="已送达",
            file=file,
        )
        return {**made, "fulfilment_id": fulfilment.id, "upload_id": fulfilment.upload_id}

    return w.run(record)


# --- shared helpers ------------------------------------------------------------------------

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


def _file(data: bytes = PDF, filename: str = "file.pdf", content_type: str = "application/pdf"):
    return FileStorage(io.BytesIO(data), filename=filename, content_type=content_type)


def _user(w, actor: str):
    """The actor's User in the current session (inside ``w.run``)."""
    from memberplatform.auth.models import User
    from memberplatform.extensions import db

    return db.session.get(User, w.ids[actor])


def _upload(w, data: bytes, filename: str, content_type: str, kinds=None) -> int:
    """A stored upload by staff (inside ``w.run``)."""
    from memberplatform.core.uploads import save_upload

    options = {"kinds": kinds} if kinds else {}
    file = _file(data, filename, content_type)
    return save_upload(file, uploaded_by=w.ids["staff"], **options).id


# --- admin (the staff console) -------------------------------------------------------------


def account(w, branch: str | None = None) -> int:
    """A fresh member account of the owner's branch (targets of console actions)."""
    from memberplatform.auth.services import create_user
    from tests.conftest import PASSWORD
    from tests.security.world import BRANCH_A, CAST

    n = w.seq()
    return w.run(
        lambda: create_user(
            phone=f"1385{n:07d}",
            name=f"目标会员{n}",
            password=PASSWORD,
            member_no=f"SECT{n:04d}",
            branch=branch or BRANCH_A,
            enterprise=CAST["member"]["enterprise"],
        ).id
    )


def branch_id(w, name: str) -> int:
    from memberplatform.auth.models import UnionBranch
    from memberplatform.extensions import db

    return w.run(
        lambda: db.session.scalar(sa.select(UnionBranch.id).where(UnionBranch.name == name))
    )


def enterprise_id(w, actor: str = "member") -> int:
    return w.run(lambda: _user(w, actor).enterprise_id)


def reset_token(w) -> str:
    """A valid one-time password link for a fresh member, issued by the admin."""
    from memberplatform.admin import services
    from memberplatform.auth.models import User
    from memberplatform.extensions import db

    target = account(w)
    return w.run(
        lambda: services.issue_password_reset(_user(w, "admin"), db.session.get(User, target)).token
    )


def roster(w) -> str:
    """A stored roster upload (two new members of the owner's branch); its SHA-256."""
    from memberplatform.admin import services
    from tests.security.world import BRANCH_A

    n = w.seq()
    text = (
        "姓名,手机号,会员号,企业,基层工会\n"
        f"花名册甲,1386{n:07d},SECR{n:04d},甲科技有限公司,{BRANCH_A}\n"
        f"花名册乙,1387{n:07d},SECS{n:04d},甲科技有限公司,{BRANCH_A}\n"
    )
    return w.run(lambda: services.store_roster(text.encode(), owner_id=w.ids["staff"]))


# --- courses and exams ---------------------------------------------------------------------


def course(w, status: str = "published", *, cover: bool = False, lesson_file: bool = False) -> dict:
    """A course (made by staff) with one lesson; ``cover``/``lesson_file`` add uploads."""
    from memberplatform.core.uploads import IMAGES
    from memberplatform.courses import services

    def make():
        staff = _user(w, "staff")
        values = dict(title=f"健康管理师 {w.seq()}", teacher="刘老师", status=status)
        if cover:
            values["cover_upload_id"] = _upload(w, PNG, "cover.png", "image/png", IMAGES)
        made = services.create_course(staff, **values)
        lesson = services.save_lesson(
            staff,
            made,
            title="第1课",
            position=1,
            body="内容",
            upload_id=_upload(w, PDF, "lesson.pdf", "application/pdf") if lesson_file else None,
        )
        return {"course_id": made.id, "lesson_id": lesson.id}

    return w.run(make)


def enrolment(w, owner: str = "member", *, completed: bool = False, **course_options) -> dict:
    """A published course ``owner`` is enrolled in (``completed``: with its certificate)."""
    from memberplatform.courses import services

    made = course(w, **course_options)

    def enrol():
        user = _user(w, owner)
        services.enrol(user, made["course_id"])
        if completed:
            result = services.mark_lesson_done(user, made["course_id"], made["lesson_id"])
            return {**made, "code": result.enrolment.certificate_code}
        return made

    return w.run(enrol)


def exam_session(w, status: str = "published") -> int:
    from memberplatform.courses import services

    def make():
        now = utcnow()
        return services.create_exam_session(
            _user(w, "staff"),
            course_ids=[],
            qualification=f"健康管理师职业技能等级认定 {w.seq()}",
            starts_at=now + timedelta(days=30),
            registration_deadline=now + timedelta(days=20),
            place="科学城考场",
            seats=10,
            status=status,
        ).id

    return w.run(make)


GOOD_ID = "11010519491231002X"  # a valid GB 11643 number


def exam_registration(w, owner: str = "member") -> dict:
    """A published exam session ``owner`` is registered for."""
    from memberplatform.courses import services
    from tests.security.world import CAST

    session_id = exam_session(w)

    def register():
        registration = services.register_for_exam(
            _user(w, owner),
            session_id,
            real_name=CAST[owner]["name"],
            id_number=GOOD_ID,
            education="college",
            years_of_work=5,
        )
        return {"session_id": session_id, "registration_id": registration.id}

    return w.run(register)


# --- kits ----------------------------------------------------------------------------------


def kit(w, *, active: bool = True, picture: bool = False, stock: int = 5) -> dict:
    """A kit type with one pickup point holding ``stock`` units."""
    from memberplatform.core.uploads import IMAGES
    from memberplatform.kits import services

    def make():
        n = w.seq()
        staff_id = w.ids["staff"]
        point = services.save_point(
            staff_id, None, name=f"领取点 {n}", address="西北旺东路10号", hours="9:00–17:30"
        )
        now = utcnow()
        made = services.save_kit_type(
            staff_id,
            None,
            name=f"健康防护包 {n}",
            description="口罩和消毒液",
            contents="医用口罩 ×20\n消毒液 ×1",
            opens_at=now - timedelta(days=1),
            closes_at=now + timedelta(days=30),
            points_cost=0,
            required_tag=None,
            enterprise_ids=[],
            branch_ids=[],
            delivery_allowed=True,
            active=active,
            picture_id=_upload(w, PNG, "kit.png", "image/png", IMAGES) if picture else None,
        )
        if stock:
            services.adjust_stock(staff_id, made.id, point.id, stock, "首批到货")
        return {"kit_id": made.id, "point_id": point.id}

    return w.run(make)


def kit_claim(w, owner: str = "member") -> dict:
    """A kit reserved by ``owner`` for pickup: ids and the pickup code."""
    from memberplatform.kits import services

    made = kit(w)

    def reserve():
        claimed = services.claim(_user(w, owner), made["kit_id"], made["point_id"])
        return {**made, "claim_id": claimed.id, "code": claimed.pickup_code}

    return w.run(reserve)


# --- legal ---------------------------------------------------------------------------------


def legal_item(w) -> dict:
    """A legal-service category with one active menu item (made by the admin)."""
    from memberplatform.legal import services

    def make():
        n = w.seq()
        admin = w.ids["admin"]
        category = services.save_category(admin, None, name=f"工资与社保 {n}", name_en="Wages")
        item = services.save_item(
            admin,
            None,
            category_id=category.id,
            code=f"unpaid-wages-{n}",
            title=f"欠薪追讨 {n}",
            title_en="Unpaid wages",
            description="单位拖欠工资时的维权咨询。",
            prepare="工资条",
            sla_hours=8,
            fields=[],
        )
        return {"category_id": category.id, "item_id": item.id}

    return w.run(make)


def legal_request(w, owner: str = "member", *, claimed: bool = True) -> dict:
    """A private request by ``owner`` with a PDF attached; ``claimed``: taken by ``lawyer``."""
    from memberplatform.extensions import db
    from memberplatform.legal import services
    from memberplatform.legal.models import MenuItem, RequestAttachment

    made = legal_item(w)

    def submit():
        item = db.session.get(MenuItem, made["item_id"])
        created = services.submit_request(
            _user(w, owner),
            item,
            question="公司拖欠两个月工资怎么办？",
            values={},
            files=[_file(PDF, "contract.pdf")],
        )
        if claimed:
            services.claim(_user(w, "lawyer"), created)
        attachment_id = db.session.scalar(
            sa.select(RequestAttachment.id).where(RequestAttachment.request_id == created.id)
        )
        return {**made, "request_id": created.id, "attachment_id": attachment_id}

    return w.run(submit)


def hotline(w) -> int:
    from memberplatform.legal import services

    return w.run(
        lambda: services.save_hotline(
            w.ids["admin"],
            None,
            name=f"热线 {w.seq()}",
            number="12351",
            hours="工作日",
            active=True,
        ).id
    )


def consultation(w) -> int:
    from memberplatform.legal import services

    return w.run(
        lambda: services.save_session(
            w.ids["admin"],
            None,
            title=f"直播 {w.seq()}",
            speaker="王律师",
            starts_at=utcnow() + timedelta(days=1),
            duration_minutes=60,
            venue="",
            description="",
        ).id
    )
