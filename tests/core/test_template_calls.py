"""What the platform's Flask and Jinja work out once instead of on every call: whether
a view or hook is a coroutine function (MemberPlatform.ensure_sync), how a template
calls a plain function or macro (web.templating.TemplateContext), which globals an
imported template lacks (TemplateGlobals)."""

from __future__ import annotations

import flask.app
from flask.templating import _default_template_ctx_processor
from jinja2 import DictLoader, pass_context
from jinja2.runtime import _PassArg

from memberplatform.web.templating import TemplateEnvironment
from tests.core.counting import count_calls


def test_flask_asks_once_per_function_whether_it_is_a_coroutine(client, monkeypatch):
    asked = count_calls(monkeypatch, flask.app, "iscoroutinefunction")
    assert client.get("/healthz").status_code == 200
    first = len(asked)
    assert client.get("/healthz").status_code == 200
    assert first > 0 and len(asked) == first  # the view's and hooks' answers were kept


def test_a_blueprints_page_runs_flasks_default_context_processor_once(app):
    assert _default_template_ctx_processor in app.template_context_processors[None]
    for name in app.blueprints:
        assert _default_template_ctx_processor not in app.template_context_processors.get(name, [])


def test_templates_call_plain_functions_and_macros_directly(app, monkeypatch):
    """Jinja asks each callable for a ``pass_context`` marker; a function without
    attributes, a built-in or a macro is called without asking, with the same result:
    loop variables are not passed on, a StopIteration is an undefined value."""
    asked = []
    original = _PassArg.from_obj

    def counting(cls, obj):
        asked.append(obj)
        return original(obj)

    monkeypatch.setattr(_PassArg, "from_obj", classmethod(counting))

    def plain(value):
        return f"p{value}"

    def stop():
        raise StopIteration

    @pass_context
    def who(context):
        return context["name"]

    source = (
        "{% macro boxed(x) %}[{{ x }}]{% endmacro %}"
        "{{ plain(1) }}{{ boxed(2) }}{{ who() }}{{ stop() }}{{ ', '.join(['a', 'b']) }}"
        "{% for i in [3] %}{{ plain(i) }}{{ who() }}{% endfor %}"
    )
    with app.app_context():
        html = app.jinja_env.from_string(source).render(plain=plain, stop=stop, who=who, name="W")
    assert html == "p1[2]Wa, bp3W"
    assert plain not in asked and stop not in asked  # called directly
    assert who in asked  # a context function still gets its context


def test_an_imported_template_sees_the_globals_the_importing_one_has(app):
    environment = TemplateEnvironment(
        app,
        loader=DictLoader(
            {
                "macros.html": "{% macro show() %}{{ extra }}{% endmacro %}",
                "page.html": "{% from 'macros.html' import show %}{{ show() }}",
            }
        ),
    )
    with app.app_context():
        assert environment.get_template("page.html", globals={"extra": "E"}).render() == "E"
        assert environment.get_template("macros.html").module.show() == ""  # its own: none


def test_a_locales_catalogue_is_looked_up_once_per_app(app, client, monkeypatch):
    """Flask-Babel hands out one catalogue object per locale: the app keeps it, so a
    request's first message does not look it up again; each language still gets its
    own catalogue."""
    from memberplatform.web import i18n

    looked_up = count_calls(monkeypatch, i18n, "get_translations")
    chinese = [client.get("/").get_data(as_text=True) for _ in range(2)]
    english = client.get("/", headers={"Accept-Language": "en"}).get_data(as_text=True)
    again = client.get("/").get_data(as_text=True)
    assert len(looked_up) == 2  # zh_CN's and en's, once each
    assert "首页" in chinese[0] and chinese[0] == chinese[1] and "Home" in english
    assert "首页" in again


def test_what_a_template_writes_is_escaped_as_jinja_would(app):
    """``{{ … }}`` writes through ``output_escape``: Markup unchanged, a whole number as
    its digits, anything else through MarkupSafe's ``escape`` — the same text Jinja's
    own ``escape`` writes, for every kind of value."""
    from jinja2 import Environment
    from markupsafe import Markup

    from memberplatform.web.i18n import lazy_gettext
    from memberplatform.web.templating import output_escape

    class Html:
        def __html__(self):
            return "<i>safe</i>"

    values = {
        "text": "<a href='x'>&\"",
        "markup": Markup("<b>bold</b>"),
        "number": -42,
        "flag": True,
        "nothing": None,
        "ratio": 1.5,
        "html": Html(),
        "lazy": lazy_gettext("Home"),
        "items": ["<x>", 1],
    }
    source = (
        "".join(f"{{{{ {name} }}}}|" for name in values)
        + "{% set s %}{{ text }}{% endset %}{{ s }}"
    )
    jinja = Environment(autoescape=True).from_string(source)
    with app.test_request_context(headers={"Accept-Language": "en"}):
        ours = app.jinja_env.from_string(source)
        assert ours.root_render_func.__globals__["escape"] is output_escape
        assert ours.render(values) == jinja.render(values)
        assert "&lt;a href=&#39;x&#39;&gt;&amp;&#34;|<b>bold</b>|-42|True|None|1.5|" in ours.render(
            values
        )


def test_a_templates_context_is_made_without_reading_its_globals_one_by_one(app, monkeypatch):
    """A page's context is its globals with the values it is given over them, copied
    map by map (``TemplateGlobals.merged``); a global added later is still seen, as
    with Jinja's ``ChainMap``, and every template is kept in a plain dict."""
    import collections

    read = count_calls(monkeypatch, collections.ChainMap, "__getitem__")
    with app.test_request_context():
        template = app.jinja_env.from_string(
            "{{ LOCALES|length }} {{ later }} {{ has_endpoint('home.index') }}"
        )
        app.jinja_env.globals["later"] = "L"
        try:
            assert template.render() == "2 L True"
            assert template.render(LOCALES=[1, 2, 3], later="V").startswith("3 V ")
        finally:
            del app.jinja_env.globals["later"]
    assert read == []
    assert type(app.jinja_env.cache) is dict


def test_lazy_strings_are_translated_from_the_requests_catalogue(app, monkeypatch):
    """``_l()`` strings are translated when used, in the language of the request using
    them, from the catalogue the request already holds (Flask-Babel's own ``gettext``
    looks it up again on every use)."""
    import flask_babel

    from memberplatform.web import i18n

    looked_up = count_calls(monkeypatch, flask_babel, "get_translations")
    looked_up_here = count_calls(monkeypatch, i18n, "get_translations")
    home = i18n.lazy_gettext("Home")
    for language, expected in (("zh-CN", "首页"), ("en", "Home")):
        with app.test_request_context(headers={"Accept-Language": language}):
            assert [str(home) for _ in range(3)] == [expected] * 3
            assert i18n.gettext("Home") == expected
    assert len(looked_up) + len(looked_up_here) <= 2  # per language at most, not per use
    with app.test_request_context(headers={"Accept-Language": "en"}):
        assert i18n.gettext("%(n)s points", n=5) == flask_babel.gettext("%(n)s points", n=5)


def test_a_message_follows_a_change_of_language_within_the_request(app):
    """``_()`` answers a message from the request's own store while the language is
    the one it was made for; after ``flask_babel.refresh`` (the language switch) the
    next message is in the new language."""
    import flask_babel
    from flask import session

    template = app.jinja_env.from_string("{{ _('Home') }}|{{ _('Log in') }}")
    with app.test_request_context(headers={"Accept-Language": "en"}):
        assert template.render() == "Home|Log in"
        assert template.render() == "Home|Log in"
        session["locale"] = "zh_CN"
        flask_babel.refresh()
        assert template.render() == "首页|登录"
