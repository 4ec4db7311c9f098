"""Offset pagination for staff lists (member-facing histories use keyset "load more")."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from memberplatform.extensions import db


@dataclass
class Page:
    items: list[Any]
    number: int
    per_page: int
    total: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))

    @property
    def has_prev(self) -> bool:
        return self.number > 1

    @property
    def has_next(self) -> bool:
        return self.number < self.pages


def page_number(raw: Any) -> int:
    try:
        return max(1, min(int(raw), 100_000))
    except (TypeError, ValueError):
        return 1


def paginate(query: sa.Select, page: Any = 1, per_page: int = 20, *, scalars: bool = True) -> Page:
    """Run ``query`` for one page; the total comes from a COUNT over the same query."""
    number = page_number(page)
    total = db.session.scalar(
        sa.select(sa.func.count()).select_from(query.order_by(None).subquery())
    )
    paged = query.limit(per_page).offset((number - 1) * per_page)
    items = list(db.session.scalars(paged) if scalars else db.session.execute(paged))
    return Page(items=items, number=number, per_page=per_page, total=total or 0)
