"""Locale choice, time display and the template helpers every page uses."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from types import SimpleNamespace
from zoneinfo import ZoneInfo

from babel import Locale
from babel.numbers import format_decimal
from flask import Flask, current_app, request, url_for
from flask.globals import _cv_app, _cv_request
from flask_babel import format_datetime, format_number, get_locale, get_timezone, get_translations
from flask_babel.speaklater import LazyString
from flask_login import current_user
from markupsafe import Markup

from memberplatform.core.masking import mask_name, mask_phone
from memberplatform.security.privacy import phone_for_viewer
from memberplatform.web.templating import csrf_token_value

LOCALES = {"zh_CN": "中文", "en": "English"}


def select_locale() -> str:
    """This browser session's choice, then the user's saved one, then Accept-Language.

    Login copies the account's saved language into the session ("" when it has none)
    and ``/lang`` sets both, so a signed-in request finds it in the session: a fragment
    that shows no user data (the progress bar) need not load the user for it."""
    request_context = _cv_request.get(None)  # not the proxies: every request asks
    if request_context is None:  # CLI and background work use the default
        return current_app.config["BABEL_DEFAULT_LOCALE"]
    chosen = request_context.session.get("locale")
    if chosen in LOCALES:
        return chosen
    signed_in = chosen is None and current_user and current_user.is_authenticated
    if signed_in and current_user.locale in LOCALES:  # a session restored by remember-me
        return current_user.locale
    best = request.accept_languages.best_match(["zh_CN", "zh", "en"])
    if best == "en":
        return "en"
    return current_app.config["BABEL_DEFAULT_LOCALE"]


@cache
def _locale(identifier: str) -> Locale:
    return Locale.parse(identifier)


def locale_for_request() -> Locale:
    """Flask-Babel's locale selector: :func:`select_locale` as a shared ``Locale``
    (Flask-Babel would parse the identifier into a new one on every request)."""
    return _locale(select_locale())


#: the all-digit patterns the pages use, as strftime formats: Babel's formatter costs
#: ~30 µs a call and a list page shows dozens of times; digits read the same in every
#: language. Any other pattern (month names, ``medium``) goes through Babel.
_DIGITS_ONLY = {
    "date": "%Y-%m-%d",
    "short": "%Y-%m-%d %H:%M",
    "yyyy-MM-dd": "%Y-%m-%d",
    "yyyy-MM-dd HH:mm": "%Y-%m-%d %H:%M",
    "yyyy-MM-dd HH:mm:ss": "%Y-%m-%d %H:%M:%S",
}


def current_locale() -> Locale:
    """Flask-Babel's ``get_locale()``, read straight from where it keeps the request's
    once it has chosen it (its own look-up resolves ``g`` and the extension each call;
    a page asks for every figure and badge it shows). The first time in a request it
    chooses it as Flask-Babel does, with :func:`locale_for_request` (the app's
    selector), and keeps it where Flask-Babel would."""
    app_ctx = _cv_app.get(None)
    if app_ctx is None:
        return get_locale()
    babel_context = app_ctx.g.__dict__.get("_flask_babel")
    locale = getattr(babel_context, "babel_locale", None)
    if locale is not None:
        return locale
    babel = app_ctx.app.extensions.get("babel")
    if babel is None or babel.locale_selector is not locale_for_request:
        return get_locale()
    if babel_context is None:
        babel_context = app_ctx.g._flask_babel = SimpleNamespace()
    babel_context.babel_locale = locale = locale_for_request()  # a Locale: not re-parsed
    return locale


def local_datetime(value: datetime | None, format: str = "medium") -> str:
    """A UTC datetime shown in the configured time zone (Asia/Shanghai)."""
    if value is None:
        return ""
    digits = _DIGITS_ONLY.get(format)
    if digits is not None:
        if value.tzinfo is None:  # as Flask-Babel reads a naive datetime: UTC
            value = value.replace(tzinfo=UTC)
        return value.astimezone(_zone(get_timezone().zone)).strftime(digits)
    return format_datetime(value, format)


@cache
def _zone(name: str) -> ZoneInfo:
    """The standard library's zone of Flask-Babel's (pytz's) name: pytz converts a
    time in Python, ``zoneinfo`` in C, to the same wall-clock time."""
    return ZoneInfo(name)


def _has_endpoint(endpoint: str) -> bool:
    return endpoint in current_app.view_functions


def _optional_url(endpoint: str, **values: object) -> str | None:
    return url_for(endpoint, **values) if _has_endpoint(endpoint) else None


def request_translations():
    """The current request's catalogue, looked up once per locale instead of per message.

    Flask-Babel resolves ``g``, the domain, the locale and a cache key on every
    ``_()`` call, and a page has dozens. The catalogue is kept on ``g`` with the
    locale it was found for, so a locale change (``flask_babel.refresh``) is followed;
    Flask-Babel hands out the same catalogue object per locale, so the app keeps it
    per locale too and a request's first message skips that look-up as well.
    """
    app_ctx = _cv_app.get(None)
    if app_ctx is None:
        return get_translations()
    g = app_ctx.g
    locale = current_locale()
    cached = g.__dict__.get("_mp_translations")
    if cached is not None and cached[0] is locale:
        return cached[1]
    known = app_ctx.app.extensions.setdefault("translations_by_locale", {})
    translations = known.get(locale)
    if translations is None:  # Flask-Babel's catalogue for the locale: the same object
        translations = known[locale] = get_translations()  # every time, looked up once
    g._mp_translations = (locale, translations)
    return translations


def gettext(string: str, /, **variables: object) -> str:
    """Flask-Babel's ``gettext`` (translated, then %-formatted with ``variables``), from
    the catalogue :func:`request_translations` keeps: Flask-Babel's own resolves the
    context, the extension, the domain and the locale on every call."""
    text = request_translations().ugettext(string)
    return text % variables if variables else text


def lazy_gettext(string: str, /, **variables: object) -> LazyString:
    """Flask-Babel's ``lazy_gettext`` (a string translated each time it is used, in the
    language of the request using it), translated by :func:`gettext`."""
    return LazyString(gettext, string, **variables)


def template_gettext(string: str, /, **variables: object) -> Markup:
    """``_()`` in templates, as Jinja's "newstyle" gettext does it in an autoescaped
    template (translated, marked safe, then %-formatted with escaped values), without
    its two context look-ups and three calls through the template context per message
    (a page has 20–50). Every template is HTML, so autoescaping is always on.

    A message without values is the same ``Markup`` every time, kept per catalogue;
    the request keeps the catalogue's with the locale it is for on ``g``, and a message
    already known is answered from there while the request's locale is that one."""
    if not variables:
        app_ctx = _cv_app.get(None)
        if app_ctx is not None:
            known_to_g = app_ctx.g.__dict__
            found = known_to_g.get("_mp_markup")
            # the request's locale, where current_locale() reads it once it is chosen
            locale = getattr(known_to_g.get("_flask_babel"), "babel_locale", None)
            if found is not None and found[0] is locale:
                markup = found[1].get(string)
                if markup is not None:
                    return markup
        translations = request_translations()
        known = translations.__dict__.setdefault("_mp_markup", {})
        if app_ctx is not None:
            app_ctx.g._mp_markup = (current_locale(), known)
        markup = known.get(string)
        if markup is None:
            markup = known[string] = _markup(translations.ugettext(string), {})
        return markup
    return _markup(request_translations().ugettext(string), variables)


def _markup(message: str, variables: dict[str, object]) -> Markup:
    # our catalogue's text, trusted as Jinja trusts it; the values are escaped by %
    return Markup(message) % variables  # noqa: S704  # nosec B704


def number_format(value: object) -> str:
    """Flask-Babel's ``numberformat``; a whole number in a locale that writes them as
    Python's ``{:,}`` does (zh_CN, en: "1,234,567") is formatted by Python, the same
    text without Babel's pattern engine (pages show dozens of figures)."""
    if type(value) is int and _groups_like_python(current_locale()):
        return f"{value:,}"
    return format_number(value)


@cache
def _groups_like_python(locale: Locale) -> bool:
    """Whether Babel writes whole numbers in ``locale`` exactly as ``{:,}`` does."""
    samples = (-1_234_567, -1, 0, 7, 999, 1_000, 12_345, 123_456_789_012)
    return all(format_decimal(n, locale=locale) == f"{n:,}" for n in samples)


def register_template_helpers(app: Flask) -> None:
    app.jinja_env.install_gettext_callables(
        gettext=lambda s: request_translations().ugettext(s),
        ngettext=lambda s, p, n: request_translations().ungettext(s, p, n),
        newstyle=True,
        pgettext=lambda c, s: request_translations().upgettext(c, s),
        npgettext=lambda c, s, p, n: request_translations().unpgettext(c, s, p, n),
    )
    app.jinja_env.globals["_"] = template_gettext
    app.jinja_env.filters["localtime"] = local_datetime
    app.jinja_env.filters["numberformat"] = number_format
    app.jinja_env.filters["mask_name"] = mask_name
    app.jinja_env.filters["mask_phone"] = mask_phone
    app.jinja_env.globals["phone_for_viewer"] = phone_for_viewer
    app.jinja_env.globals["has_endpoint"] = _has_endpoint
    app.jinja_env.globals["optional_url"] = _optional_url
    app.jinja_env.globals["LOCALES"] = LOCALES

    @app.context_processor
    def _context() -> dict[str, object]:
        locale = current_locale()
        chinese = locale is None or locale.language == "zh"
        return {
            "current_locale": "zh_CN" if chinese else "en",
            "html_lang": "zh-CN" if chinese else "en",
            "csrf_token_value": csrf_token_value,
        }
