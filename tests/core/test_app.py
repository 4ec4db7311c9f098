"""App factory, configuration, /healthz, headers, error pages, i18n."""

from __future__ import annotations

import os
import stat

import pytest

from memberplatform import create_app, settings
from memberplatform.auth.models import User
from memberplatform.extensions import db
from tests.conftest import TEST_CONFIG


def test_config_defaults_to_sqlite_in_instance(monkeypatch, tmp_path):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("SECRET_KEY", raising=False)
    config = settings.from_environment(str(tmp_path))
    assert config["DATABASE_URL"] == f"sqlite:///{tmp_path / 'memberplatform.sqlite3'}"
    assert config["BABEL_DEFAULT_LOCALE"] == "zh_CN"
    assert config["BABEL_DEFAULT_TIMEZONE"] == "Asia/Shanghai"
    assert config["RATELIMIT_STORAGE_URI"] == "swept-memory://"
    assert config["SESSION_COOKIE_SECURE"] is False


def test_secret_key_generated_once_and_kept_private(monkeypatch, tmp_path):
    monkeypatch.delenv("SECRET_KEY", raising=False)
    first = settings.from_environment(str(tmp_path))["SECRET_KEY"]
    second = settings.from_environment(str(tmp_path))["SECRET_KEY"]
    assert first == second and len(first) >= 64
    mode = stat.S_IMODE(os.stat(tmp_path / "secret_key").st_mode)
    assert mode == 0o600


def test_environment_overrides(monkeypatch, tmp_path):
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg://u@h/db")
    monkeypatch.setenv("SECRET_KEY", "from-env")
    monkeypatch.setenv("SESSION_COOKIE_SECURE", "true")
    monkeypatch.setenv("RATELIMIT_STORAGE_URI", "redis://127.0.0.1:6379/1")
    config = settings.from_environment(str(tmp_path))
    assert config["DATABASE_URL"] == "postgresql+psycopg://u@h/db"
    assert config["SECRET_KEY"] == "from-env"
    assert config["SESSION_COOKIE_SECURE"] is True
    assert config["RATELIMIT_STORAGE_URI"] == "redis://127.0.0.1:6379/1"


def test_production_password_hash_meets_asvs():
    method = settings.from_environment("/tmp")["PASSWORD_HASH_METHOD"]
    name, n, r, p = method.split(":")
    assert name == "scrypt" and int(n) >= 2**17 and int(r) >= 8 and int(p) >= 1


def test_healthz_ok(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json == {"status": "ok", "database": "ok"}


@pytest.mark.parametrize(
    "url",
    ["postgresql+psycopg://nobody@127.0.0.1:1/none", "sqlite:////proc/no-such-dir/x.db"],
)
def test_healthz_503_when_database_down(url):
    app = create_app({**TEST_CONFIG, "DATABASE_URL": url})
    response = app.test_client().get("/healthz")
    assert response.status_code == 503
    assert response.json["status"] == "error"


def test_security_headers(client):
    response = client.get("/")
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "strict-origin-when-cross-origin"


def test_hsts_only_over_https(app):
    client = app.test_client()
    assert "Strict-Transport-Security" not in client.get("/").headers
    secure = client.get("/", base_url="https://localhost")
    assert "max-age" in secure.headers["Strict-Transport-Security"]


def test_security_headers_on_every_kind_of_response_unless_it_has_its_own(app_factory, hx):
    """Added to the response's header list at the WSGI level (web.security), so files,
    errors and fragments carry them, and a response's own policy is kept; HSTS follows
    the scheme ProxyFix (the outermost layer) takes from the proxy."""
    app = app_factory(PROXY_COUNT=1)

    @app.get("/own-policy-test")
    def own_policy():
        return "ok", {"Referrer-Policy": "no-referrer"}

    client = app.test_client()
    responses = [
        client.get("/static/css/app.css"),
        client.post("/healthz"),  # 405
        client.get("/no-such-page"),
        client.get("/points/badge", headers=hx),  # a fragment's 401
        client.get("/own-policy-test"),
    ]
    for response in responses:
        assert response.headers["X-Frame-Options"] == "DENY"
        assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
        assert len(response.headers.getlist("Referrer-Policy")) == 1
        assert "Strict-Transport-Security" not in response.headers
    assert responses[-1].headers["Referrer-Policy"] == "no-referrer"
    forwarded = client.get("/", headers={"X-Forwarded-Proto": "https"})
    assert forwarded.headers["Strict-Transport-Security"].startswith("max-age=31536000")


def test_vary_names_are_added_once(app):
    from flask import Response

    from memberplatform.web import add_vary

    response = Response("x")
    add_vary(response, "Cookie")
    add_vary(response, "HX-Request")
    add_vary(response, "cookie")
    assert response.headers["Vary"] == "Cookie, HX-Request"


def test_404_page_is_localized(client):
    response = client.get("/no-such-page")
    assert response.status_code == 404
    assert "页面不存在" in response.get_data(as_text=True)
    english = client.get("/no-such-page", headers={"Accept-Language": "en"})
    assert "Page not found" in english.get_data(as_text=True)


def test_500_shows_no_traceback(app):
    @app.get("/boom-test")
    def boom():
        raise RuntimeError("secret internal detail")

    response = app.test_client().get("/boom-test")
    assert response.status_code == 500
    body = response.get_data(as_text=True)
    assert "出错了" in body
    assert "secret internal detail" not in body and "Traceback" not in body


def test_405_page(client):
    response = client.get("/auth/logout")
    assert response.status_code == 405
    assert "POST" in response.headers["Allow"]


def test_main_navigation_follows_roles_language_and_page(app, make_user, auth, client):
    import re

    def links(text):
        nav = re.search(r'<nav class="main-nav".*?</nav>', text, re.S).group(0)
        return re.findall(r'<a href="([^"]+)"( aria-current="page")?>([^<]+)</a>', nav)

    anonymous = links(client.get("/kits").get_data(as_text=True))
    assert ("/kits", ' aria-current="page"', "健康防护包") in anonymous
    assert not {"我的", "律师工作台", "领取核验", "管理"} & {label for _, _, label in anonymous}
    english = links(client.get("/", headers={"Accept-Language": "en"}).get_data(as_text=True))
    assert ("/", ' aria-current="page"', "Home") in english
    auth.login(make_user(roles=("member", "lawyer")))
    member = {label for _, _, label in links(client.get("/").get_data(as_text=True))}
    assert {"我的", "积分", "律师工作台"} <= member and not {"领取核验", "管理"} & member
    auth.logout()
    auth.login(make_user(roles=("admin",)))
    admin = {label for _, _, label in links(client.get("/").get_data(as_text=True))}
    assert {"律师工作台", "领取核验", "管理"} <= admin  # admin holds every role


def test_chinese_by_default_english_on_request(client):
    assert "首页" in client.get("/").get_data(as_text=True)
    english = client.get("/", headers={"Accept-Language": "en-US,en;q=0.9"})
    assert ">Home<" in english.get_data(as_text=True)
    assert 'lang="en"' in english.get_data(as_text=True)


def test_language_switch_is_remembered(client, make_user, auth):
    response = client.post("/lang", data={"locale": "en", "next": "/"})
    assert response.status_code == 303
    assert ">Home<" in client.get("/").get_data(as_text=True)
    client.post("/lang", data={"locale": "zh_CN", "next": "/"})
    assert "首页" in client.get("/").get_data(as_text=True)


def test_language_switch_saved_on_user(client, make_user, auth):
    user = make_user()
    auth.login(user)
    client.post("/lang", data={"locale": "en", "next": "/me"})
    auth.logout()
    fresh = client.application.test_client()
    fresh.post("/auth/login", data={"phone": user.phone, "password": "Correct-Horse-42"})
    assert "My account" in fresh.get("/me").get_data(as_text=True)


def test_login_brings_the_saved_language_into_the_session(client, make_user, auth, app):
    """Requests read the language from the session (no user load for it); a session
    without one (restored by remember-me) still follows the account."""
    user = make_user()
    with app.app_context():
        db.session.get(User, user.id).locale = "en"
        db.session.commit()
    auth.login(user)
    with client.session_transaction() as sess:
        assert sess["locale"] == "en"
        del sess["locale"]
    assert "My account" in client.get("/me").get_data(as_text=True)


@pytest.mark.parametrize("locale", ["zh_CN", "en"])
def test_digit_dates_read_as_babel_writes_them(app, locale):
    from datetime import UTC, datetime, timedelta

    from flask_babel import format_datetime

    from memberplatform.web.i18n import _DIGITS_ONLY, local_datetime

    moments = [datetime(2026, 1, 1, 15, 59, 59, tzinfo=UTC), datetime(2020, 2, 29, 23, 0)]
    moments.append(datetime(2026, 11, 28, 8, 5, tzinfo=UTC) - timedelta(microseconds=1))
    babel = {"date": "yyyy-MM-dd", "short": "yyyy-MM-dd HH:mm"}
    with app.test_request_context("/", headers={"Accept-Language": locale}):
        for moment in moments:
            for name in _DIGITS_ONLY:
                expected = format_datetime(moment, babel.get(name, name))
                assert local_datetime(moment, name) == expected, (moment, name)
        assert local_datetime(moments[0], "short") == "2026-01-01 23:59"  # Asia/Shanghai
        assert local_datetime(None, "short") == ""


@pytest.mark.parametrize("locale", ["zh_CN", "en"])
def test_numbers_read_as_babel_writes_them(app, locale):
    from flask import render_template_string
    from flask_babel import format_number

    from memberplatform.web.i18n import _groups_like_python, number_format

    values = [-1_234_567, -5, 0, 3, 999, 1_000, 3_382, 1_000_000, 10**15, 2.5, 1234.5678]
    with app.test_request_context("/", headers={"Accept-Language": locale}):
        for value in values:
            assert number_format(value) == format_number(value), value
        assert render_template_string("{{ n|numberformat }}", n=1_234_567) == "1,234,567"
    assert _groups_like_python(locale)
    assert not _groups_like_python("de")  # 1.234.567: Babel writes it


def test_template_messages_are_escaped_and_formatted_as_jinja_does(app):
    from flask import render_template_string

    with app.test_request_context("/", headers={"Accept-Language": "en"}):
        html = render_template_string(
            '{{ _("Hello %(name)s", name=name) }}|{{ _("100%%") }}|{{ _("Home") }}',
            name="<b>x</b>",
        )
    assert html == "Hello &lt;b&gt;x&lt;/b&gt;|100%|Home"


def test_remembered_template_messages_follow_the_language(app):
    from flask import render_template_string

    seen = []
    for language in ("en", "zh-CN", "en", "zh-CN"):
        with app.test_request_context("/", headers={"Accept-Language": language}):
            seen.append(render_template_string('{{ _("Home") }}|{{ _("100%%") }}'))
    assert seen == ["Home|100%", "首页|100%"] * 2


def test_template_urls_are_flasks_for_every_mount_point(app):
    from flask import render_template_string, url_for

    calls = (
        ("static", {"filename": "css/app.css"}),
        ("home.me", {}),
        ("kits.kit", {"kit_id": 7}),
        ("kits.kit", {"kit_id": 7, "page": 2}),
        ("home.me", {"_external": True}),
        ("home.me", {"_anchor": "top"}),
    )
    for root in ("", "/union", ""):
        with app.test_request_context("/", base_url=f"http://union.example{root}/"):
            for endpoint, values in calls:
                rendered = render_template_string(
                    "{{ url_for(endpoint, **values) }}", endpoint=endpoint, values=values
                )
                assert rendered == url_for(endpoint, **values), (root, endpoint, values)
                assert rendered.startswith(("http://union.example" + root, root + "/"))
    assert ("home.me", "/union") in app.extensions["template_urls"]


def test_language_switch_rejects_offsite_next(client):
    response = client.post("/lang", data={"locale": "en", "next": "//evil.example/"})
    assert response.headers["Location"] == "/"


def test_every_message_has_a_chinese_translation():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "scripts" / "i18n.py"
    spec = importlib.util.spec_from_file_location("i18n_script", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.missing() == []


def test_catalogues_agree_on_shared_messages():
    """Flask-Babel merges every domain's catalogue: a message translated two ways would
    silently change another domain's page, so a shared message must read the same."""
    from pathlib import Path

    from babel.messages.pofile import read_po

    root = Path(__file__).resolve().parents[2] / "memberplatform"
    seen: dict[str, dict[str, str]] = {}
    for po in root.glob("**/translations/zh/LC_MESSAGES/messages.po"):
        with po.open("rb") as handle:
            for message in read_po(handle):
                if message.id and isinstance(message.id, str) and message.string:
                    seen.setdefault(message.id, {})[str(po.relative_to(root))] = message.string
    conflicts = {mid: where for mid, where in seen.items() if len(set(where.values())) > 1}
    assert conflicts == {}


def test_masking_helpers():
    from memberplatform.core.masking import mask_name, mask_phone

    assert mask_name("张三明") == "张*明"
    assert mask_name("张三") == "张*"
    assert mask_name("欧阳建国") == "欧**国"
    assert mask_phone("13812345678") == "138****5678"


def test_csv_cells_are_formula_safe():
    from memberplatform.core.csvio import decode_upload, iter_csv

    lines = "".join(iter_csv(["a", "b"], [["=1+1", "@SUM(A1)"], ["-2", "ok"]]))
    assert lines.startswith("\ufeff")
    assert "'=1+1" in lines and "'@SUM(A1)" in lines and "'-2" in lines
    assert decode_upload("姓名".encode("gbk")) == "姓名"
    assert decode_upload("\ufeff姓名".encode()) == "姓名"


def test_warm_up_compiles_every_template_before_the_fork(app, monkeypatch):
    """gunicorn preloads ``wsgi.py``, which warms the app up: afterwards no page needs
    to read a template again (the loader is not asked)."""
    from memberplatform import warm_up

    warm_up(app)

    def refuse(*args, **kwargs):
        raise AssertionError("template read after warm_up")

    monkeypatch.setattr(app.jinja_env.loader, "get_source", refuse)
    client = app.test_client()
    assert client.get("/").status_code == 200
    assert client.get("/auth/login").status_code == 200
    assert client.get("/no-such-page").status_code == 404
