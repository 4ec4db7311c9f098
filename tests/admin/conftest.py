"""Fixtures of the staff console tests: two branches, staff of each kind, members."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

import memberplatform.models  # noqa: F401  (every table exists before the PostgreSQL schema is made)
from memberplatform.admin.models import StaffScope
from memberplatform.auth.models import UnionBranch, User
from memberplatform.auth.services import get_or_create_branch
from memberplatform.extensions import db
from tests.conftest import PASSWORD


@dataclass
class World:
    branch_a: UnionBranch
    branch_b: UnionBranch
    admin: User
    staff: User  # unscoped staff
    scoped: User  # staff limited to branch A
    member_a: User
    member_b: User


@pytest.fixture
def world(app, make_user) -> World:
    with app.app_context():
        a = get_or_create_branch("软件园联合工会")
        b = get_or_create_branch("科学城第一基层工会")
        db.session.commit()
        db.session.expunge_all()
    admin = make_user(roles=("admin",), name="管理员")
    staff = make_user(roles=("staff",), name="总会干事")
    scoped = make_user(roles=("staff",), name="分会干事", branch=a.name)
    member_a = make_user(name="张三明", member_no="ZGC10001", branch=a.name, enterprise="软件公司")
    member_b = make_user(name="李四", member_no="ZGC10002", branch=b.name, enterprise="医疗公司")
    with app.app_context():
        db.session.add(StaffScope(user_id=scoped.id, branch_id=a.id))
        db.session.commit()
    return World(a, b, admin, staff, scoped, member_a, member_b)


def login(app, user, password: str = PASSWORD):
    client = app.test_client()
    response = client.post("/auth/login", data={"phone": user.phone, "password": password})
    assert response.status_code == 303, response.get_data(as_text=True)
    return client


def fresh(user_id: int) -> User:
    """The user as stored now (inside an app context)."""
    db.session.expire_all()
    return db.session.get(User, user_id)
