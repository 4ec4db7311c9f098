"""A roster member activates, logs in, switches language and logs out — in a real browser."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from memberplatform.auth.services import create_user
from memberplatform.extensions import db
from tests.e2e.conftest import screenshot

PASSWORD = "Spring-Return-2020"


def test_activate_login_switch_language_logout(live_server, page):
    with live_server.app.app_context():
        create_user("13812345678", "张三明", member_no="ZGC10001", enterprise="科学城软件有限公司")
        db.session.commit()

    page.goto(live_server("/"))
    expect(page.get_by_role("heading", name="工会会员服务平台")).to_be_visible()
    page.get_by_role("link", name="激活账号").first.click()
    expect(page).to_have_url(re.compile(r"/auth/activate$"))
    page.wait_for_load_state("load")  # htmx processes the form on DOMContentLoaded

    page.get_by_label("会员号").fill("ZGC10001")
    page.get_by_label("手机号").fill("13812345678")
    page.get_by_label("新密码").fill("short")
    page.get_by_label("再次输入密码").fill("short")
    page.get_by_role("button", name="激活").click()
    # htmx swaps only the form, with the message next to the field
    expect(page.get_by_text("密码至少 8 个字符。")).to_be_visible()

    expect(page.get_by_label("会员号")).to_have_value("ZGC10001")
    page.get_by_label("新密码").fill(PASSWORD)
    page.get_by_label("再次输入密码").fill(PASSWORD)
    expect(page.get_by_label("新密码")).to_have_value(PASSWORD)
    expect(page.get_by_label("再次输入密码")).to_have_value(PASSWORD)
    page.get_by_role("button", name="激活").click()
    try:
        expect(page).to_have_url(re.compile(r"/me$"))
    except AssertionError:
        screenshot(page, "foundation-activation-failure")
        raise
    expect(page.get_by_role("heading", name="您好，张三明")).to_be_visible()

    page.get_by_test_id("logout").click()
    expect(page.get_by_text("您已退出登录。")).to_be_visible()

    page.get_by_role("navigation").get_by_role("link", name="登录").click()
    page.get_by_label("手机号").fill("13812345678")
    page.get_by_label("密码", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="登录").click()
    expect(page).to_have_url(re.compile(r"/me$"))

    page.get_by_test_id("lang-en").click()
    expect(page.get_by_role("heading", name="Hello, 张三明")).to_be_visible()
    expect(page.get_by_role("link", name="My page")).to_be_visible()
    screenshot(page, "me-english")
    page.get_by_test_id("lang-zh_CN").click()
    expect(page.get_by_role("heading", name="您好，张三明")).to_be_visible()
    screenshot(page, "me")

    page.get_by_test_id("logout").click()
    page.goto(live_server("/me"))
    expect(page).to_have_url(re.compile(r"/auth/login"))
