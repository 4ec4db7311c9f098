"""Form helpers shared by every domain."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask_wtf import FlaskForm

from memberplatform.core.errors import DomainError
from memberplatform.extensions import db


def attach_error(form: FlaskForm, error: DomainError) -> None:
    """Show a service's refusal next to its field (or above the form)."""
    field = getattr(form, error.field, None) if error.field else None
    if field is not None:
        field.errors = [*field.errors, error.message]
    else:
        form.form_errors.append(error.message)


def perform(
    form: FlaskForm,
    operation: Callable[[], Any],
    *,
    on_refused: Callable[[DomainError], None] | None = None,
) -> bool:
    """Run ``operation()`` when ``form`` is submitted and valid; True when it succeeded.

    A refusal (DomainError) rolls the transaction back, is reported to ``on_refused``
    (e.g. an audit hook) and is shown next to its field; the view then re-renders the
    form with status 422. Every form view has this shape, so it lives here once.
    """
    if not form.validate_on_submit():
        return False
    try:
        operation()
    except DomainError as error:
        db.session.rollback()
        if on_refused is not None:
            on_refused(error)
        attach_error(form, error)
        return False
    return True
