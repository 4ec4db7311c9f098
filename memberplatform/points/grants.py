"""Bulk grants from a CSV: a preview of every row, then confirm. Re-uploading the
same file grants nothing twice (each row's idempotency key is the file's hash + line)."""

from __future__ import annotations

import csv
import hashlib
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from flask import current_app

from memberplatform.auth.models import User
from memberplatform.core.csvio import CsvDecodeError, decode_upload
from memberplatform.core.errors import DomainError
from memberplatform.extensions import db
from memberplatform.points import services
from memberplatform.points.models import LedgerEntry
from memberplatform.web.i18n import lazy_gettext as _l

MAX_ROWS = 20_000
MEMBER_HEADERS = ("member_no", "会员号", "phone", "手机号")
POINTS_HEADERS = ("points", "积分", "amount")
NOTE_HEADERS = ("note", "reason", "备注", "原因")


@dataclass
class GrantRow:
    line: int
    member: str
    raw_points: str
    note: str
    user_id: int | None = None
    name: str = ""
    points: int = 0
    errors: list[str] = field(default_factory=list)
    done: bool = False  # already granted by an earlier upload of this file

    @property
    def ok(self) -> bool:
        return not self.errors


@dataclass
class GrantBatch:
    digest: str
    rows: list[GrantRow]

    @property
    def good(self) -> list[GrantRow]:
        return [row for row in self.rows if row.ok and not row.done]

    @property
    def total(self) -> int:
        return sum(row.points for row in self.good)


def _folder() -> Path:
    folder = Path(current_app.config["UPLOAD_FOLDER"]) / "grants"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def store(data: bytes, owner_id: int) -> str:
    """Keep the uploaded file between preview and confirm (for its uploader only);
    returns its SHA-256."""
    digest = hashlib.sha256(data).hexdigest()
    (_folder() / f"{owner_id}-{digest}.csv").write_bytes(data)
    return digest


def load(digest: str, owner_id: int) -> bytes:
    if len(digest) != 64 or not all(c in "0123456789abcdef" for c in digest):
        raise DomainError(_l("This upload has expired; please upload the file again."))
    path = _folder() / f"{owner_id}-{digest}.csv"
    if not path.exists():
        raise DomainError(_l("This upload has expired; please upload the file again."))
    return path.read_bytes()


def _column(header: list[str], names: tuple[str, ...]) -> int | None:
    for index, value in enumerate(header):
        if value.strip().lower() in names:
            return index
    return None


def key_for(digest: str, line: int) -> str:
    return f"bulkgrant:{digest[:32]}:{line}"


def parse(data: bytes) -> GrantBatch:
    """Check every row (nothing is written)."""
    try:
        text = decode_upload(data)
    except CsvDecodeError:
        raise DomainError(
            _l("The file is not UTF-8 or GBK text. Save it from Excel as CSV."), field="file"
        ) from None
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if not header:
        raise DomainError(_l("The file is empty."), field="file")
    member_col = _column(header, MEMBER_HEADERS)
    points_col = _column(header, POINTS_HEADERS)
    note_col = _column(header, NOTE_HEADERS)
    if member_col is None or points_col is None or note_col is None:
        raise DomainError(
            _l(
                "The first line must name the columns: member_no (or phone), points, note "
                "(会员号或手机号, 积分, 备注)."
            ),
            field="file",
        )
    digest = hashlib.sha256(data).hexdigest()
    rows: list[GrantRow] = []
    for line, raw in enumerate(reader, start=2):
        if not any(cell.strip() for cell in raw):
            continue
        if len(rows) >= MAX_ROWS:
            raise DomainError(
                _l("A file may have at most %(n)s rows; split it into several files.", n=MAX_ROWS),
                field="file",
            )

        def cell(index: int, row: list[str] = raw) -> str:
            return row[index].strip() if index < len(row) else ""

        rows.append(GrantRow(line, cell(member_col), cell(points_col), cell(note_col)))
    if not rows:
        raise DomainError(_l("The file has no rows to grant."), field="file")
    _check(digest, rows)
    return GrantBatch(digest, rows)


def _check(digest: str, rows: list[GrantRow]) -> None:
    wanted = {row.member for row in rows if row.member}
    found: dict[str, tuple[int, str]] = {}
    values = list(wanted)
    for start in range(0, len(values), 500):
        chunk = values[start : start + 500]
        for user_id, member_no, phone, name in db.session.execute(
            sa.select(User.id, User.member_no, User.phone, User.name).where(
                sa.or_(User.member_no.in_(chunk), User.phone.in_(chunk)), User.status == "active"
            )
        ):
            for value in (member_no, phone):
                if value in wanted:
                    found[value] = (user_id, name)
    keys = [key_for(digest, row.line) for row in rows]
    done: set[str] = set()
    for start in range(0, len(keys), 500):
        done.update(
            db.session.scalars(
                sa.select(LedgerEntry.idempotency_key).where(
                    LedgerEntry.idempotency_key.in_(keys[start : start + 500])
                )
            )
        )
    for row in rows:
        if row.member not in found:
            row.errors.append(str(_l("No active member with this member number or phone.")))
        else:
            row.user_id, row.name = found[row.member]
        try:
            points = int(row.raw_points)
        except ValueError:
            points = 0
        if not 0 < points <= services.MAX_AMOUNT or row.raw_points.strip() != str(points):
            row.errors.append(
                str(_l("Points must be a whole number from 1 to %(max)s.", max=services.MAX_AMOUNT))
            )
        else:
            row.points = points
        if not row.note:
            row.errors.append(str(_l("Give a reason for the grant.")))
        row.done = key_for(digest, row.line) in done


def apply(batch: GrantBatch, actor: Any) -> int:
    """Grant every good row not granted before; returns how many were granted."""
    count = 0
    for row in batch.good:
        services.grant(
            row.user_id,
            row.points,
            actor=actor,
            note=row.note,
            idempotency_key=key_for(batch.digest, row.line),
        )
        count += 1
    return count
