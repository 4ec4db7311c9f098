"""Check in on /me, the badge changes without a reload, then load more history on /points."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from memberplatform.auth.services import create_user
from memberplatform.extensions import db
from memberplatform.points import services
from tests.conftest import PASSWORD
from tests.e2e.conftest import screenshot


def test_check_in_updates_badge_and_history_loads_more(live_server, page):
    with live_server.app.app_context():
        user = create_user("13812345678", "张三明", password=PASSWORD)
        for i in range(25):
            services.earn(user, 2, reason="grant", idempotency_key=f"seed:{i}", note=f"第{i}次")
        db.session.commit()

    page.goto(live_server("/auth/login"))
    page.get_by_label("手机号").fill("13812345678")
    page.get_by_label("密码", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="登录").click()
    expect(page).to_have_url(re.compile(r"/me$"))

    badge = page.get_by_test_id("points-badge")
    expect(badge).to_contain_text("50")
    page.evaluate("window.__sameDocument = true")  # survives only if no reload happens
    page.get_by_test_id("check-in").click()
    expect(page.get_by_text("签到成功：+5 积分。")).to_be_visible()
    expect(badge).to_contain_text("55")
    expect(page.get_by_test_id("me-balance")).to_have_text("55")
    assert page.evaluate("window.__sameDocument") is True
    screenshot(page, "points-me-after-check-in")

    badge.click()
    expect(page).to_have_url(re.compile(r"/points$"))
    rows = page.locator("tr.ledger-row")
    expect(rows).to_have_count(20)
    page.evaluate("window.__sameDocument = true")
    page.get_by_test_id("load-more").click()
    expect(rows).to_have_count(26)
    expect(page.get_by_test_id("load-more")).to_have_count(0)
    assert page.evaluate("window.__sameDocument") is True
    screenshot(page, "points-history")
