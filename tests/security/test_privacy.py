"""Privacy helpers of memberplatform/security: field encryption and rotation, phone masking,
the member's own data export."""

from __future__ import annotations

import json

import sqlalchemy as sa
from cryptography.fernet import Fernet

from memberplatform.extensions import db
from memberplatform.security import crypto
from memberplatform.security.export import collect, export_response
from memberplatform.security.privacy import phone_for_viewer
from tests.security import objects
from tests.security.world import World


def test_encrypt_round_trip_and_rotation(app):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    with app.app_context():
        app.config["FIELD_ENCRYPTION_KEYS"] = old
        token = crypto.encrypt("110101199003074518")
        assert "110101199003074518" not in token
        app.config["FIELD_ENCRYPTION_KEYS"] = f"{new},{old}"
        assert crypto.decrypt(token) == "110101199003074518"  # old key still reads
        assert not crypto.encrypted_with_current_key(token)
        app.config["FIELD_ENCRYPTION_KEYS"] = new
        try:
            crypto.decrypt(token)
        except ValueError:
            pass
        else:
            raise AssertionError("a token of a retired key must not decrypt")


def test_encrypted_column_stores_ciphertext_and_rotates(app):
    table = sa.Table(
        "security_test_secrets",
        sa.MetaData(),
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("id_number", crypto.EncryptedString(18)),
    )
    old = Fernet.generate_key().decode()
    with app.app_context():
        app.config["FIELD_ENCRYPTION_KEYS"] = old
        table.create(db.engine)
        try:
            with db.engine.begin() as conn:
                conn.execute(table.insert(), [{"id_number": "11010119900307451X"}])
                raw = conn.execute(sa.text("SELECT id_number FROM security_test_secrets")).scalar()
                assert "1101011990" not in raw
                assert conn.execute(sa.select(table.c.id_number)).scalar() == "11010119900307451X"
            assert crypto.blind_index(" 11010119900307451x ") == crypto.blind_index(
                "11010119900307451X"
            )
        finally:
            with db.engine.begin() as conn:
                table.drop(conn)


def test_phone_is_masked_for_everyone_but_owner_and_staff(make_user, app):
    owner, other = make_user(), make_user()
    staff, lawyer = make_user(roles=("staff",)), make_user(roles=("lawyer",))
    with app.test_request_context():
        assert phone_for_viewer(owner.phone, owner.id, owner) == owner.phone
        assert phone_for_viewer(owner.phone, owner.id, staff) == owner.phone
        for viewer in (other, lawyer):
            shown = phone_for_viewer(owner.phone, owner.id, viewer)
            assert shown == owner.phone[:3] + "****" + owner.phone[-4:]
        assert "*" in phone_for_viewer(owner.phone, owner.id)  # anonymous


def test_member_export_has_own_data_only(app, make_user):
    staff, admin = make_user(roles=("staff",)), make_user(roles=("admin",))
    member, other = make_user(), make_user()
    world = World(app, {"staff": staff, "admin": admin, "member": member, "other": other})
    objects.donation(world, "member")
    objects.donation(world, "other")
    with app.test_request_context():
        data = collect(member.id)
        assert [row["id"] for row in data["users"]] == [member.id]
        assert all(row["user_id"] == member.id for row in data["donations"])
        assert len(data["donations"]) == 1 and len(data["ledger_entries"]) >= 2
        text = json.dumps(data, ensure_ascii=False)
        assert "password_hash" not in text and "session_token" not in text
        assert other.phone not in text
        response = export_response(db.session.get(type(member), member.id))
        assert response.headers["Content-Disposition"].startswith("attachment")
        assert json.loads(response.get_data())["user_id"] == member.id
