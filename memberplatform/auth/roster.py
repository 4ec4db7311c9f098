"""The member roster CSV: parsed and checked row by row (each row with its errors); the
checked rows are applied in bulk by `admin.services.apply_rows`."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field

import sqlalchemy as sa

from memberplatform.auth.models import User
from memberplatform.auth.services import (
    MEMBER_NO_RE,
    normalize_phone,
)
from memberplatform.core.errors import DomainError
from memberplatform.extensions import db
from memberplatform.web.i18n import lazy_gettext as _l

MAX_ROWS = 20_000

#: accepted header names (Chinese as staff export them, or English)
HEADERS = {
    "name": ("name", "姓名"),
    "phone": ("phone", "手机号", "手机", "电话"),
    "member_no": ("member_no", "member number", "会员号", "会员编号"),
    "enterprise": ("enterprise", "企业", "单位"),
    "branch": ("branch", "union branch", "基层工会", "工会"),
}


@dataclass
class RosterRow:
    line: int
    name: str = ""
    phone: str = ""
    member_no: str = ""
    enterprise: str = ""
    branch: str = ""
    errors: list[str] = field(default_factory=list)
    action: str = ""  # "create" or "update" once checked

    @property
    def ok(self) -> bool:
        return not self.errors


def _column_map(header: list[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    for index, raw in enumerate(header):
        key = raw.strip().lower()
        for column, names in HEADERS.items():
            if key in names:
                found[column] = index
    missing = [column for column in ("name", "phone", "member_no") if column not in found]
    if missing:
        raise DomainError(
            _l(
                "The first line must name the columns: name, phone, member_no, enterprise, "
                "branch (姓名, 手机号, 会员号, 企业, 基层工会)."
            ),
            field="file",
        )
    return found


def parse_roster(text: str) -> list[RosterRow]:
    """Every row with its errors; nothing is written."""
    reader = csv.reader(io.StringIO(text))
    try:
        header = next(reader)
    except StopIteration:
        raise DomainError(_l("The file is empty."), field="file") from None
    columns = _column_map(header)
    rows: list[RosterRow] = []
    for number, raw in enumerate(reader, start=2):
        if not any(cell.strip() for cell in raw):
            continue
        if len(rows) >= MAX_ROWS:
            raise DomainError(_l("A roster may have at most %(n)s rows.", n=MAX_ROWS), field="file")
        values = {c: (raw[i].strip() if i < len(raw) else "") for c, i in columns.items()}
        rows.append(RosterRow(line=number, **values))
    _check(rows)
    return rows


def _check(rows: list[RosterRow]) -> None:
    seen_phones: dict[str, int] = {}
    seen_numbers: dict[str, int] = {}
    for row in rows:
        if not row.name or len(row.name) > 50:
            row.errors.append(str(_l("Name is missing or too long.")))
        try:
            row.phone = normalize_phone(row.phone)
        except DomainError as error:
            row.errors.append(str(error.message))
        if not MEMBER_NO_RE.match(row.member_no):
            row.errors.append(str(_l("Member numbers are 4–32 letters or digits.")))
        if row.phone in seen_phones:
            row.errors.append(str(_l("Same phone as line %(line)s.", line=seen_phones[row.phone])))
        if row.member_no in seen_numbers:
            row.errors.append(
                str(_l("Same member number as line %(line)s.", line=seen_numbers[row.member_no]))
            )
        seen_phones.setdefault(row.phone, row.line)
        seen_numbers.setdefault(row.member_no, row.line)
    # Compare with existing accounts in bulk (one query per 500 rows, not one per row).
    numbers = [row.member_no for row in rows if row.member_no]
    existing_by_no: dict[str, tuple[int, str]] = {}
    existing_by_phone: dict[str, str | None] = {}
    for start in range(0, len(numbers), 500):
        chunk = numbers[start : start + 500]
        for user_id, member_no, phone in db.session.execute(
            sa.select(User.id, User.member_no, User.phone).where(User.member_no.in_(chunk))
        ):
            existing_by_no[member_no] = (user_id, phone)
    phones = [row.phone for row in rows if row.phone]
    for start in range(0, len(phones), 500):
        chunk = phones[start : start + 500]
        for member_no, phone in db.session.execute(
            sa.select(User.member_no, User.phone).where(User.phone.in_(chunk))
        ):
            existing_by_phone[phone] = member_no
    for row in rows:
        if row.errors:
            continue
        owner = existing_by_phone.get(row.phone, row.member_no)
        if row.phone in existing_by_phone and owner != row.member_no:
            row.errors.append(str(_l("This phone belongs to another member.")))
            continue
        row.action = "update" if row.member_no in existing_by_no else "create"
