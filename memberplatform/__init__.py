"""memberplatform — the trade-union member service platform (工会会员服务平台)."""

from __future__ import annotations

import os
from collections.abc import Callable
from importlib import import_module
from importlib.util import find_spec
from pathlib import Path
from typing import Any, ClassVar

from flask import Flask
from flask.templating import _default_template_ctx_processor

from memberplatform import settings
from memberplatform.extensions import babel, csrf, htmx, limiter, login_manager
from memberplatform.extensions import db as _db
from memberplatform.web.templating import TemplateEnvironment

#: Domain packages, in the order their blueprints and demo data are registered.
DOMAINS = (
    "auth",
    "home",
    "notifications",
    "points",
    "donations",
    "kits",
    "courses",
    "legal",
    "admin",
)

PACKAGE_DIR = Path(__file__).resolve().parent
PROJECT_DIR = PACKAGE_DIR.parent


#: callables whose sync form a worker keeps (views, hooks, handlers: a few hundred)
MAX_SYNC_CALLABLES = 1024


class MemberPlatform(Flask):
    """Flask, working out once per function what it works out on every call, with the
    Jinja environment of :mod:`memberplatform.web.templating`.

    Flask asks ``inspect.iscoroutinefunction`` of the view and of each hook a request
    runs (``ensure_sync``: 8 to 13 calls a page, ~3 µs each); the answer never changes
    for a function, so it is kept. A callable made per request (``after_this_request``)
    only fills the store up to ``MAX_SYNC_CALLABLES``, then it starts again."""

    jinja_environment = TemplateEnvironment
    #: every template is a file of ``templates/``: all kept, in a plain dict (Jinja's
    #: default keeps 400 in an LRU cache that moves each one it hands out to the end
    #: of a list, under a lock: eight times a page)
    jinja_options: ClassVar[dict[str, Any]] = {"cache_size": -1}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._sync_callables: dict[Callable[..., Any], Callable[..., Any]] = {}

    def ensure_sync(self, func: Callable[..., Any]) -> Callable[..., Any]:
        known = self._sync_callables
        try:
            return known[func]
        except KeyError:
            pass
        except TypeError:  # an unhashable callable
            return super().ensure_sync(func)
        if len(known) >= MAX_SYNC_CALLABLES:
            known.clear()
        sync = known[func] = super().ensure_sync(func)
        return sync


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    app = MemberPlatform(
        __name__,
        instance_relative_config=True,
        template_folder=str(PROJECT_DIR / "templates"),
        static_folder=str(PROJECT_DIR / "static"),
    )
    os.makedirs(app.instance_path, exist_ok=True)
    app.config.from_mapping(settings.from_environment(app.instance_path))
    if test_config:
        app.config.from_mapping(test_config)
    app.config["BABEL_TRANSLATION_DIRECTORIES"] = ";".join(translation_directories())

    from memberplatform.web.sessions import ThrottledRefreshSessionInterface

    app.session_interface = ThrottledRefreshSessionInterface()
    register_extensions(app)
    register_blueprints(app)
    from memberplatform.web import templating

    templating.register(app)  # after the blueprints: it checks their URL defaults
    register_errorhandlers(app)
    register_commands(app)
    if app.config.get("PROXY_COUNT"):  # outermost: every layer inside sees the client's
        from werkzeug.middleware.proxy_fix import ProxyFix

        count = app.config["PROXY_COUNT"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=count, x_proto=count, x_host=count)
    return app


def warm_up(app: Flask) -> None:
    """Compile every template and load every catalogue now, once.

    gunicorn preloads the app in its master (``gunicorn.conf.py``), so the workers it
    forks, and those that replace them after ``max_requests``, start with all of it
    in place instead of paying for it on their first requests (~0.7 s of templates).
    """
    from flask_babel import get_locale, get_translations

    from memberplatform.web.forms import _catalogue
    from memberplatform.web.i18n import LOCALES

    for name in app.jinja_env.list_templates(extensions=("html",)):
        app.jinja_env.get_template(name)
    for locale in LOCALES:
        language = "en" if locale == "en" else "zh-CN"
        with app.test_request_context(headers={"Accept-Language": language}):
            get_translations()
            _catalogue(str(get_locale()))


def translation_directories() -> list[str]:
    """Each domain keeps its own catalogue next to its code; Flask-Babel merges them."""
    found = [str(PACKAGE_DIR / "translations")]
    found += [
        str(PACKAGE_DIR / name / "translations")
        for name in DOMAINS
        if (PACKAGE_DIR / name / "translations").is_dir()
    ]
    return found


def register_extensions(app: Flask) -> None:
    import memberplatform.models  # noqa: F401  (every model on the metadata)
    from memberplatform.security import limits  # noqa: F401  # the swept-memory:// storage
    from memberplatform.web import chrome, i18n, navigation, security

    _db.init_app(app)
    csrf.init_app(app)
    htmx.init_app(app)
    limiter.init_app(app)
    babel.init_app(app, locale_selector=i18n.locale_for_request)
    i18n.register_template_helpers(app)
    navigation.register(app)
    chrome.register(app)
    security.register_security_headers(app)

    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.session_protection = "basic"
    login_manager.login_message = None
    login_manager.user_loader(_load_user)
    login_manager.unauthorized_handler(_unauthorized)


def _load_user(user_id: str):
    from memberplatform.auth.identity import load_signed_in

    return load_signed_in(user_id)


def _unauthorized():
    from flask import request, url_for

    from memberplatform.web import hx_redirect

    target = url_for("auth.login", next=request.full_path if request.method == "GET" else None)
    if request.headers.get("HX-Request") == "true":
        response = hx_redirect(target)
        response.status_code = 401
        return response
    from flask import redirect

    return redirect(target)


def register_blueprints(app: Flask) -> None:
    for name in DOMAINS:
        views = import_module(f"memberplatform.{name}.views")
        for blueprint in getattr(views, "blueprints", [views.bp]):
            app.register_blueprint(blueprint)
    from memberplatform.security.limits import apply_write_limits, skip_for_reads

    apply_write_limits(app)  # per-user limits on the writes a bot would hammer
    skip_for_reads(app)
    # Every blueprint carries Flask's default context processor (request, session, g)
    # and a registered one is copied to the app under its name: a blueprint's page
    # would run it twice. The app's own, which runs for every template, is enough.
    for name in app.blueprints:
        processors = app.template_context_processors.get(name)
        if processors and _default_template_ctx_processor in processors:
            processors.remove(_default_template_ctx_processor)


def register_errorhandlers(app: Flask) -> None:
    from memberplatform.web.errors import register_errorhandlers as register

    register(app)


def register_commands(app: Flask) -> None:
    from memberplatform import cli
    from memberplatform.security import cli as security_cli

    for command in [*cli.commands, *security_cli.commands]:
        app.cli.add_command(command)
    for name in DOMAINS:
        if find_spec(f"memberplatform.{name}.cli") is not None:
            module = import_module(f"memberplatform.{name}.cli")
            for command in module.commands:
                app.cli.add_command(command)
