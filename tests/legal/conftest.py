"""Fixtures of the legal tests: a small menu, members, lawyers, staff and an admin."""

from __future__ import annotations

import io
from types import SimpleNamespace

import pytest
from werkzeug.datastructures import FileStorage

import memberplatform.models  # noqa: F401  (pg_url create_all needs every table on the metadata)
from memberplatform.auth.models import User
from memberplatform.extensions import db
from memberplatform.legal import services
from memberplatform.legal.models import LegalRequest

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
FIELDS = [
    {
        "name": "amount_owed",
        "label_zh": "拖欠金额（元）",
        "label_en": "Amount owed",
        "type": "number",
        "required": True,
    },
    {
        "name": "last_paid",
        "label_zh": "最后发薪日期",
        "label_en": "Last paid",
        "type": "date",
        "required": False,
    },
]


def pdf_file(name: str = "contract.pdf", data: bytes = PDF) -> FileStorage:
    return FileStorage(io.BytesIO(data), filename=name, content_type="application/pdf")


@pytest.fixture
def world(app, make_user):
    w = SimpleNamespace(
        member=make_user(name="张三明"),
        other=make_user(name="李四"),
        lawyer=make_user(roles=("lawyer",), name="王律师"),
        lawyer2=make_user(roles=("lawyer",), name="赵律师"),
        staff=make_user(roles=("staff",), name="工会干事"),
        admin=make_user(roles=("admin",), name="管理员"),
    )
    with app.app_context():
        category = services.save_category(w.admin.id, None, name="工资与社保", name_en="Wages")
        item = services.save_item(
            w.admin.id,
            None,
            category_id=category.id,
            code="unpaid-wages",
            title="欠薪追讨",
            title_en="Unpaid wages",
            description="单位拖欠工资时的维权咨询。",
            prepare="工资条",
            sla_hours=8,
            fields=FIELDS,
        )
        db.session.commit()
        w.category_id, w.item_id = category.id, item.id
    return w


def user(u) -> User:
    """The user row in the current session."""
    return db.session.get(User, getattr(u, "id", u))


def req(request_id: int) -> LegalRequest:
    return db.session.get(LegalRequest, request_id)


def submit(app, w, *, member=None, question="公司拖欠两个月工资怎么办？", **kwargs) -> int:
    """Submit a request (committed); returns its id."""
    with app.app_context():
        from memberplatform.legal.models import MenuItem

        item = db.session.get(MenuItem, kwargs.pop("item_id", w.item_id))
        created = services.submit_request(
            user(member or w.member),
            item,
            question=question,
            values=kwargs.pop("values", {"amount_owed": "12000"}),
            **kwargs,
        )
        db.session.commit()
        return created.id


def claimed(app, w, **kwargs) -> int:
    request_id = submit(app, w, **kwargs)
    with app.app_context():
        services.claim(user(w.lawyer), req(request_id))
        db.session.commit()
    return request_id
