"""A member donates points through the confirm dialog, sees the balance badge and the
progress bar update without a reload, and opens the certificate — in a real browser."""

from __future__ import annotations

import re
from datetime import timedelta

from playwright.sync_api import expect

from memberplatform.auth.services import create_user
from memberplatform.db import utcnow
from memberplatform.donations import services
from memberplatform.extensions import db
from memberplatform.points import services as points
from tests.e2e.conftest import screenshot, wait_until

PASSWORD = "Spring-Return-2020"


def test_donate_with_confirm_dialog_and_open_certificate(live_server, page):
    with live_server.app.app_context():
        staff = create_user("13700000009", "工会干事", password=PASSWORD, roles=("staff",))
        member = create_user("13812345678", "张三明", password=PASSWORD, member_no="ZGC10001")
        db.session.flush()
        points.earn(member, 1000, reason="grant", idempotency_key="e2e-grant")
        now = utcnow()
        campaign = services.create_campaign(
            staff,
            title="积分捐：为武汉科技大学附属普仁医院捐赠医用口罩",
            story="每 10 积分 = 1 只医用口罩。",
            beneficiary_name="武汉科技大学附属普仁医院",
            beneficiary_type="hospital",
            item_name="医用口罩",
            unit_label="只",
            points_per_unit=10,
            target_units=13000,
            min_units=None,
            max_units=500,
            opens_at=now - timedelta(days=1),
            closes_at=now + timedelta(days=30),
        )
        services.change_status(campaign.id, "open", staff)
        db.session.commit()
        campaign_id = campaign.id

    page.goto(live_server("/auth/login"))
    page.get_by_label("手机号").fill("13812345678")
    page.get_by_label("密码", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="登录").click()
    expect(page).to_have_url(re.compile(r"/me$"))

    page.goto(live_server("/donations"))
    page.get_by_role("link", name="积分捐：为武汉科技大学附属普仁医院捐赠医用口罩").click()
    expect(page.get_by_test_id("pledged")).to_have_text("0")
    badge = page.get_by_test_id("points-badge")
    expect(badge).to_contain_text("1000")

    # a bad amount is explained next to the field, without a reload
    page.get_by_label("捐赠数量").fill("600")
    page.get_by_test_id("donate-next").click()
    expect(page.get_by_text("每次最多捐 500 份。")).to_be_visible()
    # wait until htmx has initialised the swapped-in form
    wait_until(page, "() => document.getElementById('units')['htmx-internal-data'] !== undefined")

    page.get_by_label("捐赠数量").fill("30")
    expect(page.get_by_test_id("quote")).to_contain_text("300")  # live cost and balance after
    expect(page.get_by_test_id("quote")).to_contain_text("700")
    page.get_by_test_id("donate-next").click()
    dialog = page.get_by_test_id("confirm-dialog")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("30 只医用口罩")
    screenshot(page, "donations-confirm-dialog")
    page.evaluate("window.__noReload = true")
    dialog.get_by_test_id("confirm-donation").click()

    expect(page.get_by_test_id("donation-done")).to_be_visible()
    expect(page.get_by_test_id("pledged")).to_have_text("30")
    expect(page.get_by_test_id("donor-count")).to_have_text("1")
    expect(badge).to_contain_text("700")
    expect(page.get_by_test_id("donate-balance")).to_have_text("700")
    expect(page.get_by_test_id("progress")).to_contain_text("张*明")
    assert page.evaluate("window.__noReload") is True  # no page load happened
    screenshot(page, "donations-after-donation")

    page.get_by_test_id("certificate-link").click()
    certificate = page.get_by_test_id("certificate")
    expect(certificate).to_contain_text("张三明")
    expect(certificate).to_contain_text("300")
    number = page.get_by_test_id("certificate-no").inner_text()
    screenshot(page, "donations-certificate")

    # anyone can verify it, seeing only a masked name
    other = page.context.browser.new_context(locale="zh-CN").new_page()
    other.goto(live_server(f"/donations/verify/{number}"))
    expect(other.get_by_test_id("verification")).to_contain_text("该证书真实有效")
    expect(other.get_by_test_id("verification")).to_contain_text("张*明")
    other.context.close()

    with live_server.app.app_context():
        assert points.balance_of(member) == 700
        assert services.recent_donations(campaign_id)[0].units == 30
