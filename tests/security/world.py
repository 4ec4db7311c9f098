"""The cast of the security tests: one app and eight actors, created once per module.

Actors (columns of the access matrix):

- ``member`` — the owner of the objects each row creates (branch A)
- ``other_member`` — another member (branch B): other people's private objects → 404
- ``lawyer`` — the lawyer assigned to / serving the row's object
- ``other_lawyer`` — a lawyer with nothing to do with it
- ``staff`` — staff of branch A (the owner's branch), limited to it in the console
- ``other_staff`` — staff of branch B, limited to branch B (``StaffScope``)
- ``admin`` — admin (implies every role)
- ``anonymous`` — not logged in

Each actor logs in once; every cell then uses a fresh test client carrying a copy of
that actor's session cookie. A cell can still end the actor's sessions everywhere
(``POST /auth/logout`` rotates ``User.session_token``, as do a password change and an
admin reset), so before handing out a cached cookie the world checks that the user's token
is unchanged and logs the actor in again when it is not.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from memberplatform import create_app
from memberplatform.db import Base
from memberplatform.extensions import db
from tests.conftest import PASSWORD, TEST_CONFIG

ACTORS = (
    "anonymous",
    "member",
    "other_member",
    "lawyer",
    "other_lawyer",
    "staff",
    "other_staff",
    "admin",
)
BRANCH_A, BRANCH_B = "安全测试甲工会", "安全测试乙工会"

CAST: dict[str, dict[str, Any]] = {
    "member": dict(
        phone="13810000001",
        name="张三明",
        roles=("member",),
        member_no="SEC00001",
        branch=BRANCH_A,
        enterprise="甲科技有限公司",
        tags=("returned-to-work",),
    ),
    "other_member": dict(
        phone="13810000002",
        name="李四海",
        roles=("member",),
        member_no="SEC00002",
        branch=BRANCH_B,
        enterprise="乙科技有限公司",
        tags=("returned-to-work",),
    ),
    "lawyer": dict(phone="13910000001", name="王律师", roles=("lawyer",)),
    "other_lawyer": dict(phone="13910000002", name="赵律师", roles=("lawyer",)),
    "staff": dict(phone="13710000001", name="甲干事", roles=("staff",), branch=BRANCH_A),
    "other_staff": dict(phone="13710000002", name="乙干事", roles=("staff",), branch=BRANCH_B),
    "admin": dict(phone="13610000001", name="管理员", roles=("admin",)),
}


class World:
    """An app with the cast; helpers to make objects and clients."""

    def __init__(self, app, users: dict[str, Any]) -> None:
        self.app = app
        self.users = users  # actor -> detached User
        self.ids = {actor: user.id for actor, user in users.items()}
        self._cookies: dict[str, tuple[str, str]] = {}  # actor -> (cookie, session token)
        self._seq = itertools.count(1)

    def seq(self) -> int:
        return next(self._seq)

    def user(self, actor: str):
        with self.app.app_context():
            from memberplatform.auth.models import User

            return db.session.get(User, self.ids[actor])

    def run(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run ``fn`` in an app context and commit (objects a row needs)."""
        with self.app.app_context():
            with db.transaction():
                result = fn(*args, **kwargs)
            db.session.remove()
        return result

    def _session_token(self, actor: str) -> str:
        with self.app.app_context():
            from memberplatform.auth.models import User

            token = db.session.scalar(
                sa.select(User.session_token).where(User.id == self.ids[actor])
            )
            db.session.remove()
        return token

    def login_cookie(self, actor: str) -> str | None:
        if actor == "anonymous":
            return None
        token = self._session_token(actor)
        cached = self._cookies.get(actor)
        if cached is None or cached[1] != token:  # first use, or the sessions were ended
            client = self.app.test_client()
            response = client.post(
                "/auth/login", data={"phone": CAST[actor]["phone"], "password": PASSWORD}
            )
            assert response.status_code == 303, (actor, response.status_code)
            cached = (client.get_cookie("session").value, token)
            self._cookies[actor] = cached
        return cached[0]

    def client(self, actor: str, **config_unused: Any):
        client = self.app.test_client()
        cookie = self.login_cookie(actor)
        if cookie is not None:
            client.set_cookie("session", cookie)
        return client


def build_world(db_url: str, upload_folder: str, **config: Any) -> World:
    from memberplatform.admin.models import StaffScope
    from memberplatform.auth.services import create_user

    app = create_app(
        {**TEST_CONFIG, "DATABASE_URL": db_url, "UPLOAD_FOLDER": upload_folder, **config}
    )
    users = {}
    with app.app_context():
        Base.metadata.create_all(db.engine)
        for actor, fields in CAST.items():
            user = create_user(password=PASSWORD, **fields)
            users[actor] = user
        for actor in ("staff", "other_staff"):  # branch staff: the console shows their branch
            db.session.add(StaffScope(user_id=users[actor].id, branch_id=users[actor].branch_id))
        db.session.commit()
        for user in users.values():
            db.session.refresh(user)
            db.session.expunge(user)
        db.session.remove()
    return World(app, users)


def table_counts(app) -> dict[str, int]:
    """Row count of every table (a refused request must not change any)."""
    with app.app_context():
        counts = {
            table.name: db.session.scalar(sa.select(sa.func.count()).select_from(table))
            for table in Base.metadata.sorted_tables
        }
        db.session.remove()
    return counts


def dispose(world: World) -> None:
    with world.app.app_context():
        db.session.remove()
        db.engine.dispose()
