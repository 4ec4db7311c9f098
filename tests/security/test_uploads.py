"""Uploads: size limit with a localized 413, type by content, sanitised names, safe serving."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import sqlalchemy as sa
from werkzeug.datastructures import FileStorage

from memberplatform import PROJECT_DIR
from memberplatform.core.errors import DomainError
from memberplatform.core.uploads import Upload, save_upload, send_upload, upload_root
from memberplatform.extensions import db
from tests.conftest import PASSWORD
from tests.security.helpers import login
from tests.security.objects import PDF

HTML_AS_PDF = b"<!doctype html><script>alert(1)</script>"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def _file(data: bytes, name: str, content_type: str = "application/pdf") -> FileStorage:
    return FileStorage(io.BytesIO(data), filename=name, content_type=content_type)


def _staff_client(app, make_user, csrf: bool = False):
    staff = make_user(roles=("staff",))
    client = app.test_client()
    login(client, staff, csrf=csrf)
    return client


def _uploads(app) -> int:
    with app.app_context():
        return db.session.scalar(sa.select(sa.func.count()).select_from(Upload))


@pytest.mark.parametrize("csrf", [False, True])
@pytest.mark.parametrize("htmx", [False, True])
def test_oversized_request_gets_a_localized_413(app_factory, make_user, csrf, htmx):
    app = app_factory(MAX_CONTENT_LENGTH=4096, WTF_CSRF_ENABLED=csrf)
    client = _staff_client(app, make_user, csrf=csrf)
    headers = {"HX-Request": "true"} if htmx else {}
    response = client.post(
        "/points/grants/bulk",
        data={"file": (io.BytesIO(b"x" * 10_000), "big.csv")},
        headers=headers,
        content_type="multipart/form-data",
    )
    assert response.status_code == 413
    body = response.get_data(as_text=True)
    assert "文件过大" in body and "超过了允许的大小" in body
    assert _uploads(app) == 0


def test_default_upload_limit_is_configured(app):
    assert app.config["MAX_CONTENT_LENGTH"] == 10 * 1024 * 1024


@pytest.mark.parametrize(
    ("data", "name"),
    [
        (HTML_AS_PDF, "receipt.pdf"),
        (b"GIF89a" + b"\x00" * 20, "picture.png"),
        (b"MZ\x90\x00", "setup.pdf"),
        (b"", "empty.pdf"),
        (b"%PDF" + b"x" * 10, "bad-magic.pdf"),  # "%PDF" without the dash
    ],
)
def test_type_is_checked_by_content_not_by_name(ctx, app, data, name):
    with pytest.raises(DomainError):
        save_upload(_file(data, name))
    ctx.rollback()
    assert _uploads(app) == 0
    assert not any(upload_root().iterdir())


def test_a_real_pdf_with_a_wrong_name_gets_the_right_type(ctx):
    upload = save_upload(_file(PDF, "photo.png", "image/png"))
    assert upload.content_type == "application/pdf"
    assert upload.original_name.endswith(".pdf")


@pytest.mark.parametrize(
    "name",
    [
        "../../etc/passwd.pdf",
        "..\\..\\windows\\win.ini.pdf",
        "a\r\nSet-Cookie: x=1.pdf",
        "收据<script>.pdf",
        "/absolute/path.pdf",
        "x" * 150 + ".pdf",
        "",
    ],
)
def test_filenames_are_sanitised(ctx, name):
    upload = save_upload(_file(PDF, name))
    assert "/" not in upload.original_name and "\\" not in upload.original_name
    assert ".." not in upload.original_name and "\r" not in upload.original_name
    assert "<" not in upload.original_name and len(upload.original_name) <= 200
    assert upload.original_name.endswith(".pdf")
    stored = upload_root() / upload.storage_name
    assert stored.is_file() and stored.parent == upload_root()
    assert len(upload.storage_name) == 36  # 32 random hex + ".pdf": never the user's name


def test_long_filenames_keep_their_extension(ctx):
    upload = save_upload(_file(PDF, "x" * 500 + ".pdf"))
    assert upload.original_name.endswith(".pdf") and len(upload.original_name) <= 200


def test_uploads_live_outside_the_web_root(app):
    root = Path(app.config["UPLOAD_FOLDER"]).resolve()
    static = (PROJECT_DIR / "static").resolve()
    assert static not in root.parents and root != static


def test_stored_files_are_not_reachable_as_static_files(app, ctx, client):
    upload = save_upload(_file(PDF, "a.pdf"))
    ctx.commit()
    for path in (f"/static/{upload.storage_name}", f"/static/uploads/{upload.storage_name}"):
        assert client.get(path).status_code == 404
    assert client.get(f"/static/../instance/uploads/{upload.storage_name}").status_code == 404


def test_send_upload_headers(app, ctx):
    upload = save_upload(_file(PDF, "证明.pdf"))
    with app.test_request_context("/"):
        response = send_upload(upload)
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Content-Type"] == "application/pdf"
    assert response.headers["Content-Disposition"].startswith("attachment;")
    assert "no-store" in response.headers["Cache-Control"]


def _fulfilment_download(app, make_user):
    from tests.security import objects
    from tests.security.world import World

    staff = make_user(roles=("staff",))
    member = make_user(roles=("member",))
    admin = make_user(roles=("admin",))
    world = World(app, {"staff": staff, "member": member, "admin": admin})
    made = objects.fulfilment(world)
    client = app.test_client()
    client.post("/auth/login", data={"phone": member.phone, "password": PASSWORD})
    return client.get(f"/donations/fulfilments/{made['fulfilment_id']}/file")


def test_fulfilment_file_is_served_safely(app, make_user):
    response = _fulfilment_download(app, make_user)
    assert response.status_code == 200
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Content-Type"] == "application/pdf"
    assert response.get_data() == PDF
    assert "Content-Security-Policy" in response.headers


def test_fulfilment_pdf_is_served_as_attachment(app, make_user):
    response = _fulfilment_download(app, make_user)
    assert response.headers["Content-Disposition"].startswith("attachment")


def test_fake_pdf_is_refused_by_the_fulfilment_form(app, make_user):
    from memberplatform.donations.models import Campaign
    from tests.security import objects
    from tests.security.world import World

    staff = make_user(roles=("staff",))
    member = make_user(roles=("member",))
    admin = make_user(roles=("admin",))
    made = objects.donation(World(app, {"staff": staff, "member": member, "admin": admin}))
    client = _staff_client(app, make_user)
    response = client.post(
        f"/donations/manage/{made['campaign_id']}/fulfilments",
        data={
            "quantity": "1",
            "delivered_on": "2025-01-02",
            "note": "",
            "file": (io.BytesIO(HTML_AS_PDF), "proof.pdf", "application/pdf"),
        },
        content_type="multipart/form-data",
    )
    assert response.status_code == 422
    assert _uploads(app) == 0
    with app.app_context():
        assert db.session.get(Campaign, made["campaign_id"]).fulfilled_units == 0
