"""Uploaded files: type checked by content, size-limited, stored outside ``static/``.

A domain keeps an ``uploads.id`` foreign key and serves the file through its own
view, which checks access first and then calls :func:`send_upload`.
"""

from __future__ import annotations

import hashlib
import secrets
import unicodedata
from datetime import datetime
from pathlib import Path

import sqlalchemy as sa
import sqlalchemy.orm as so
from flask import Response, current_app, send_file
from werkzeug.datastructures import FileStorage

from memberplatform.core.errors import DomainError
from memberplatform.db import Base, utcnow
from memberplatform.extensions import db
from memberplatform.web.i18n import lazy_gettext as _l

#: kind -> (content type, extension, magic-byte check)
KINDS = {
    "pdf": ("application/pdf", "pdf", lambda head: head.startswith(b"%PDF-")),
    "png": ("image/png", "png", lambda head: head.startswith(b"\x89PNG\r\n\x1a\n")),
    "jpeg": ("image/jpeg", "jpg", lambda head: head.startswith(b"\xff\xd8\xff")),
}
DOCUMENTS = ("pdf", "png", "jpeg")
IMAGES = ("png", "jpeg")


class Upload(Base):
    __tablename__ = "uploads"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    storage_name: so.Mapped[str] = so.mapped_column(sa.String(80), unique=True)
    original_name: so.Mapped[str] = so.mapped_column(sa.String(200))
    content_type: so.Mapped[str] = so.mapped_column(sa.String(60))
    size: so.Mapped[int]
    sha256: so.Mapped[str] = so.mapped_column(sa.String(64))
    uploaded_by: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("users.id"))
    created_at: so.Mapped[datetime] = so.mapped_column(default=utcnow)


def safe_stem(filename: str) -> str:
    """A display name kept from the upload: Unicode letters (工资条) stay, paths and
    control or shell-special characters go; the extension is set from the content."""
    name = filename.replace("\\", "/").rsplit("/", 1)[-1]
    stem = name.rsplit(".", 1)[0] if "." in name else name
    cleaned = "".join(
        ch if (ch.isalnum() or ch in "-_ ()（）") else "_"
        for ch in unicodedata.normalize("NFC", stem)
        if unicodedata.category(ch)[0] != "C"
    ).strip(" ._")
    return cleaned[:120] or "file"


def upload_root() -> Path:
    root = Path(current_app.config["UPLOAD_FOLDER"])
    root.mkdir(parents=True, exist_ok=True)
    return root


def save_upload(
    file: FileStorage,
    *,
    kinds: tuple[str, ...] = DOCUMENTS,
    max_bytes: int = 5 * 1024 * 1024,
    uploaded_by: int | None = None,
    field: str = "file",
) -> Upload:
    """Check and store one uploaded file; raises DomainError (next to ``field``) if refused."""
    data = file.read(max_bytes + 1)
    if not data:
        raise DomainError(_l("The file is empty."), field=field)
    if len(data) > max_bytes:
        raise DomainError(
            _l("Files may be at most %(mb)s MB.", mb=round(max_bytes / 1024 / 1024, 1)),
            field=field,
        )
    kind = next((k for k in kinds if KINDS[k][2](data[:16])), None)
    if kind is None:
        allowed = ", ".join(KINDS[k][1].upper() for k in kinds)
        raise DomainError(
            _l("This file type is not accepted. Allowed: %(types)s.", types=allowed), field=field
        )
    content_type, extension, _ = KINDS[kind]
    storage_name = f"{secrets.token_hex(16)}.{extension}"
    (upload_root() / storage_name).write_bytes(data)
    stem = safe_stem(file.filename or "")
    original = f"{stem}.{extension}"
    upload = Upload(
        storage_name=storage_name,
        original_name=original,
        content_type=content_type,
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        uploaded_by=uploaded_by,
    )
    db.session.add(upload)
    db.session.flush()
    return upload


def send_upload(upload: Upload, *, inline: bool = False) -> Response:
    """Serve a stored file (after the caller has checked access)."""
    response = send_file(
        upload_root() / upload.storage_name,
        mimetype=upload.content_type,
        as_attachment=not inline,
        download_name=upload.original_name,
        max_age=0,
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "private, no-store"
    return response
