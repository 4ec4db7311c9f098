"""Domain errors raised by service functions and turned into messages by views."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """A business rule refused the operation.

    ``message`` is a lazy translatable string (``lazy_gettext``) so the view
    shows it in the reader's language; ``field`` names the form field it
    belongs next to, if any.
    """

    status_code = 422

    def __init__(self, message: Any, *, field: str | None = None) -> None:
        super().__init__(str(message))
        self.message = message
        self.field = field


class NotFound(DomainError):
    status_code = 404


class Forbidden(DomainError):
    status_code = 403
