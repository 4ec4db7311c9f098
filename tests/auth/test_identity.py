"""The signed-in user: one statement with roles and tags, read-only, ORM record on demand."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from memberplatform.auth.identity import SignedInUser, load_signed_in
from memberplatform.auth.models import MemberTag, User
from memberplatform.extensions import db
from tests.querycount import count_queries


def test_one_statement_brings_roles_tags_and_organisation(app, make_user):
    user = make_user(roles=("member", "lawyer"))
    with app.app_context():
        db.session.add_all(
            [MemberTag(user_id=user.id, tag="农民工"), MemberTag(user_id=user.id, tag="困难职工")]
        )
        db.session.commit()
    with app.test_request_context():
        with count_queries(db.engine) as statements:
            signed_in = load_signed_in(f"{user.id}:{user.session_token}")
        assert len(statements) == 1
        assert isinstance(signed_in, SignedInUser) and signed_in.id == user.id
        assert signed_in.roles == {"member", "lawyer"} and signed_in.has_role("lawyer")
        assert not signed_in.has_role("staff")
        assert signed_in.tags == {"农民工", "困难职工"}
        assert signed_in.get_id() == f"{user.id}:{user.session_token}" and signed_in.is_active
        assert signed_in == user and hash(signed_in) == hash(load_signed_in(signed_in.get_id()))


def test_a_user_without_roles_or_tags_still_signs_in(app, make_user):
    user = make_user(roles=())
    with app.test_request_context():
        signed_in = load_signed_in(f"{user.id}:{user.session_token}")
        assert signed_in is not None and signed_in.roles == frozenset() == signed_in.tags


def test_wrong_token_or_id_ends_the_session(app, make_user):
    user = make_user()
    with app.test_request_context():
        assert load_signed_in(f"{user.id}:{'x' * 32}") is None
        assert load_signed_in(f"{user.id + 999}:{user.session_token}") is None
        assert load_signed_in(f"abc:{user.session_token}") is None


def test_read_only_and_changes_go_through_the_record(app, make_user):
    user = make_user()
    with app.test_request_context(method="POST"):  # a request that may write
        signed_in = load_signed_in(f"{user.id}:{user.session_token}")
        with pytest.raises(AttributeError, match="read-only"):
            signed_in.locale = "en"
        assert signed_in.password_hash  # anything else comes from the ORM record
        assert isinstance(signed_in.record, User) and signed_in.record is signed_in.record
        with pytest.raises(AttributeError):
            signed_in._sa_instance_state  # never poses as an ORM instance
        signed_in.record.locale = "en"
        db.session.commit()
        assert db.session.scalar(sa.select(User.locale).where(User.id == user.id)) == "en"


def test_language_choice_is_saved_on_the_account(client, auth, make_user, app):
    user = make_user()
    auth.login(user)
    assert client.post("/lang", data={"locale": "en", "next": "/me"}).status_code == 303
    with app.app_context():
        assert db.session.get(User, user.id).locale == "en"
    assert "My account" in client.get("/me").get_data(as_text=True)
