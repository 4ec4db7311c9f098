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


def paginate(
    query: sa.Select,
    page: Any = 1,
    per_page: int = 20,
    *,
    scalars: bool = True,
    total: int | None = None,
) -> Page:
    """Run ``query`` for one page, with the total in the same statement.

    ``total``: the number of rows, when the caller has counted them already (from an
    index): the page is then read alone, and an ordered index gives its rows without
    reading all the others, as the window count would.

    The total is a ``count(*) OVER ()`` column next to each row (computed before
    LIMIT/OFFSET), so a page is one statement; only an empty page (no rows, or a page
    number past the end) asks with a separate COUNT. A query with DISTINCT or GROUP BY
    counts with a COUNT over the same query, as the window would count other rows;
    so does a query of several columns (``scalars=False``), whose rows keep their shape.
    """
    number = page_number(page)
    offset = (number - 1) * per_page
    if total is not None:
        items: list[Any] = []
        if total > offset:
            paged = query.limit(per_page).offset(offset)
            items = list(db.session.scalars(paged) if scalars else db.session.execute(paged))
        return Page(items=items, number=number, per_page=per_page, total=total)
    # Rows (not scalars) keep their shape; DISTINCT/GROUP BY would make the window count
    # other rows than the page shows: both count with a separate COUNT.
    if not scalars or query._distinct or query._group_by_clauses:
        paged = query.limit(per_page).offset(offset)
        items = list(db.session.scalars(paged) if scalars else db.session.execute(paged))
        return Page(items=items, number=number, per_page=per_page, total=_count(query))
    counted = query.add_columns(sa.func.count().over().label("page_total"))
    rows = db.session.execute(counted.limit(per_page).offset(offset)).all()
    if not rows:  # nothing at all, or a page past the end
        return Page(items=[], number=number, per_page=per_page, total=_count(query))
    return Page(items=[row[0] for row in rows], number=number, per_page=per_page, total=rows[0][-1])


def _count(query: sa.Select) -> int:
    total = db.session.scalar(
        sa.select(sa.func.count()).select_from(query.order_by(None).subquery())
    )
    return total or 0
