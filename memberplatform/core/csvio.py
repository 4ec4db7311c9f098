"""CSV in and out: Excel-friendly encodings, formula-injection-safe cells, streaming."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from typing import Any

from flask import Response, stream_with_context

from memberplatform.db import needs_transaction

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


class CsvDecodeError(ValueError):
    pass


def decode_upload(data: bytes) -> str:
    """Decode an uploaded CSV: UTF-8 (with or without BOM) or GBK/GB18030 from Excel."""
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise CsvDecodeError("not UTF-8 or GBK")


def safe_cell(value: Any) -> str:
    """Render a value for a CSV cell so spreadsheet software never runs it as a formula."""
    if value is None:
        return ""
    text = str(value)
    if text.startswith(FORMULA_PREFIXES):
        return "'" + text
    return text


def _line(row: Iterable[Any]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer).writerow([safe_cell(cell) for cell in row])
    return buffer.getvalue()


def iter_csv(header: Iterable[str], rows: Iterable[Iterable[Any]]) -> Iterator[str]:
    yield "\ufeff" + _line(header)
    for row in rows:
        yield _line(row)


def csv_response(filename: str, header: Iterable[str], rows: Iterable[Iterable[Any]]) -> Response:
    """A streamed UTF-8-with-BOM CSV download; ``rows`` should be a lazy iterator (its
    query runs in a transaction: PostgreSQL streams it through a server-side cursor)."""
    needs_transaction()
    response = Response(
        stream_with_context(iter_csv(header, rows)), mimetype="text/csv; charset=utf-8"
    )
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
