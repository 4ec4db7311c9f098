"""Template helpers every page calls many times, each answered from what it already knows.

A full page calls ``url_for`` ~20 times and the CSRF token 3–4 times. A URL depends
only on its endpoint, its values and where the app is mounted, so templates' ``url_for``
keeps the URLs it has built (per process, at most ``MAX_URLS``); one with an option
(``_external``, ``_anchor``…), a relative endpoint or a value that is not a plain
string or number is built by Flask each time. The CSRF token is signed once per request
by Flask-WTF and kept on ``g``; later calls in the same page read it from there.
Signing it costs more than the rest of a small page's helpers together, and the same
session's token signed moments ago is as good (Flask-WTF accepts it for
``WTF_CSRF_TIME_LIMIT``, an hour): a worker reuses a session's signed token for
``CSRF_REUSE_SECONDS``, then signs it afresh.
"""

from __future__ import annotations

import time
from collections import ChainMap
from collections.abc import KeysView, MutableMapping
from types import BuiltinFunctionType, FunctionType, MethodType
from typing import Any

from flask import Flask, session
from flask.globals import _cv_app, _cv_request
from flask.templating import Environment
from flask_wtf.csrf import generate_csrf
from jinja2 import Template
from jinja2.runtime import Context, Macro, new_context
from markupsafe import Markup, escape

#: URLs a worker keeps (a page has a few dozen distinct ones; ids make more)
MAX_URLS = 4096
#: how long a signed CSRF token is handed out again (a minute of its hour's validity)
CSRF_REUSE_SECONDS = 60
#: sessions whose signed token a worker keeps
MAX_SIGNED_TOKENS = 10_000
_PLAIN = (str, int)


def template_url_for(endpoint: str, /, **values: Any) -> str:
    """Flask's ``url_for`` for templates, keeping what it built."""
    app = _cv_app.get().app  # the context variables: a proxy read costs more than a call
    if endpoint[0] == ".":
        return app.url_for(endpoint, **values)
    for name, value in values.items():
        if name[0] == "_" or type(value) not in _PLAIN:
            return app.url_for(endpoint, **values)
    root = _cv_request.get().request.script_root
    if not values:
        key: tuple[Any, ...] = (endpoint, root)
    elif len(values) == 1:
        key = (endpoint, root, *values.items())
    else:
        key = (endpoint, root, *sorted(values.items()))
    built = app.extensions["template_urls"]
    url = built.get(key)
    if url is None:
        url = app.url_for(endpoint, **values)
        if len(built) >= MAX_URLS:
            built.clear()
        built[key] = url
    return url


def csrf_token_value() -> str:
    """The request's signed CSRF token, kept on ``g`` where Flask-WTF's forms find it:
    the one signed for this session in the last ``CSRF_REUSE_SECONDS``, or a new one."""
    app_ctx = _cv_app.get()
    app = app_ctx.app
    field = app.config.get("WTF_CSRF_FIELD_NAME", "csrf_token")
    token = app_ctx.g.__dict__.get(field)
    if token is not None:
        return token
    raw = session.get(field)
    signed = app.extensions["csrf_signed"]
    now = time.monotonic()
    if isinstance(raw, str):
        found = signed.get(raw)
        if found is not None and now - found[1] < CSRF_REUSE_SECONDS:
            setattr(app_ctx.g, field, found[0])
            return found[0]
    token = generate_csrf()  # also makes the session's raw token when it has none
    if len(signed) >= MAX_SIGNED_TOKENS:
        signed.clear()
    signed[session[field]] = (token, now)
    return token


class TemplateContext(Context):
    """Jinja's template context, calling a plain function or macro without looking for
    ``pass_context`` and its kin on it first.

    Every call in a template (``_()``, ``url_for``, a macro: 60 on a member's page) goes
    through :meth:`Context.call`, which asks each callable and its ``__call__`` for a
    ``jinja_pass_arg`` marker. A function without attributes (the markers are one), a
    built-in or a macro has none: it is called as Jinja would call it, directly. Every
    other callable goes through Jinja's own ``call``."""

    def call(__self, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        kind = type(__obj)
        if (
            (kind is FunctionType and not __obj.__dict__)
            or kind is BuiltinFunctionType
            or kind is Macro
            or (kind is MethodType and not getattr(__obj.__func__, "__dict__", True))
        ):
            if kwargs:  # the loop's and block's variables, for context functions only
                kwargs.pop("_block_vars", None)
                kwargs.pop("_loop_vars", None)
            try:
                return __obj(*args, **kwargs)
            except StopIteration:
                return __self.environment.undefined(
                    "value was undefined because a callable raised a StopIteration exception"
                )
        return super().call(__obj, *args, **kwargs)


class TemplateGlobals(ChainMap):
    """A template's globals (its own over the environment's) as Jinja keeps them, whose
    ``keys()`` is a plain set of names: Jinja subtracts them from the importing page's
    on every ``{% from … import %}``, and a ``ChainMap``'s own view answers that one
    name at a time in Python (34 globals)."""

    def keys(self) -> KeysView[str]:
        return dict.fromkeys(self).keys()

    def merged(self, variables: MutableMapping[str, Any] | None) -> dict[str, Any]:
        """One dict of the globals and ``variables`` over them, as Jinja's
        ``new_context`` makes it (``dict(globals, **variables)``), copied map by map
        instead of name by name through ``ChainMap.__getitem__``."""
        merged: dict[str, Any] = {}
        for mapping in reversed(self.maps):
            merged.update(mapping)
        if variables:
            merged.update(variables)
        return merged


def output_escape(value: Any, /) -> str:
    """What ``{{ … }}`` writes in an autoescaped template: ``Markup`` as it is, a whole
    number as its digits, anything else through MarkupSafe's ``escape``.

    Jinja writes ``escape(value)``, which for ``Markup`` (every ``_()``, macro and
    header a page writes) calls its ``__html__`` and builds a copy through
    ``Markup.__new__``, which calls ``__html__`` again: four calls to write a string
    unchanged. What it writes is joined into the page, so a plain ``str`` does."""
    kind = type(value)
    if kind is Markup:
        return value
    if kind is int:
        return str(value)
    return escape(value)


class PageTemplate(Template):
    """Jinja's template, with :func:`output_escape` for what it writes and its context
    made from :meth:`TemplateGlobals.merged`."""

    @classmethod
    def _from_namespace(
        cls,
        environment: Any,
        namespace: MutableMapping[str, Any],
        globals: MutableMapping[str, Any],
    ) -> Template:
        # the compiled module's ``escape`` is only what ``{{ … }}`` writes with
        if namespace.get("escape") is escape:
            namespace["escape"] = output_escape
        return super()._from_namespace(environment, namespace, globals)

    def new_context(
        self,
        vars: dict[str, Any] | None = None,
        shared: bool = False,
        locals: MutableMapping[str, Any] | None = None,
    ) -> Context:
        if shared or type(self.globals) is not TemplateGlobals:
            return super().new_context(vars, shared, locals)
        parent = self.globals.merged(vars)  # what Jinja's ``new_context`` would copy
        return new_context(
            self.environment, self.name, self.blocks, parent, True, self.globals, locals
        )


class TemplateEnvironment(Environment):
    """Flask's Jinja environment, with :class:`TemplateContext` and
    :class:`TemplateGlobals`."""

    context_class = TemplateContext
    template_class = PageTemplate

    def make_globals(self, d: MutableMapping[str, Any] | None) -> TemplateGlobals:
        return TemplateGlobals({} if d is None else d, self.globals)


def register(app: Flask) -> None:
    app.extensions["template_urls"] = {}
    app.extensions["csrf_signed"] = {}  # the session's raw token -> (signed, when)
    if not any(app.url_default_functions.values()):  # nothing adds values at build time
        app.jinja_env.globals["url_for"] = template_url_for
