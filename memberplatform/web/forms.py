"""Form helpers shared by every domain."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

from babel import support
from flask import current_app
from flask_wtf import FlaskForm
from flask_wtf.csrf import _FlaskFormCSRF
from markupsafe import Markup, escape
from wtforms.i18n import messages_path

from memberplatform.core.errors import DomainError
from memberplatform.extensions import db
from memberplatform.web.i18n import current_locale
from memberplatform.web.templating import csrf_token_value


class _WTFormsMessages:
    """WTForms' own messages ("This field is required.") in the request's language.

    Flask-WTF reads WTForms' catalogue from disk on every request that builds a
    form; the catalogues never change while the process runs, so each is read once.
    """

    def gettext(self, string: str) -> str:
        return _catalogue(str(current_locale())).ugettext(string)

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        return _catalogue(str(current_locale())).ungettext(singular, plural, n)


@cache
def _catalogue(locale: str) -> support.Translations:
    return support.Translations.load(messages_path(), [locale], domain="wtforms")


_messages = _WTFormsMessages()


class _PageToken:
    """The form's CSRF token, fetched when the form is rendered: a form that is only
    validated (a claim that succeeds and redirects) signs none."""

    __slots__ = ("_token",)

    def __init__(self) -> None:
        self._token: str | None = None

    def __str__(self) -> str:
        if self._token is None:
            self._token = csrf_token_value()
        return self._token

    def __html__(self) -> Markup:
        return escape(str(self))

    def __eq__(self, other: object) -> bool:
        return str(self) == (str(other) if isinstance(other, _PageToken) else other)

    def __hash__(self) -> int:
        return hash(str(self))


class _CSRF(_FlaskFormCSRF):
    """Flask-WTF's CSRF field, given the token the page's other helpers give (signed
    for this session at most once a minute per worker, see ``web.templating``), when
    the form is rendered."""

    def generate_csrf_token(self, csrf_token_field: Any) -> Any:
        return _PageToken()


class Form(FlaskForm):
    """Every form's base: CSRF from Flask-WTF, WTForms' messages translated."""

    class Meta(FlaskForm.Meta):
        csrf_class = _CSRF

        def get_translations(self, form):
            if not current_app.config.get("WTF_I18N_ENABLED", True):
                return super().get_translations(form)
            return _messages


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
