"""A member claims a health kit and shows the code; staff open the QR's verification
URL and hand the kit over; the member's page then says "picked up" — in a real browser."""

from __future__ import annotations

import re
from datetime import timedelta

from playwright.sync_api import expect

from memberplatform.auth.services import create_user
from memberplatform.db import utcnow
from memberplatform.extensions import db
from memberplatform.kits import services
from tests.e2e.conftest import screenshot

PASSWORD = "Spring-Return-2020"


def _log_in(page, live_server, phone: str) -> None:
    page.goto(live_server("/auth/login"))
    page.get_by_label("手机号").fill(phone)
    page.get_by_label("密码", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="登录").click()
    expect(page).to_have_url(re.compile(r"/me$"))


def test_claim_show_code_verify_and_pick_up(live_server, new_page):
    with live_server.app.app_context():
        staff = create_user("13700000000", "工会干事", password=PASSWORD, roles=("staff",))
        create_user("13812345678", "张三明", password=PASSWORD, member_no="ZGC10001")
        db.session.commit()
        point = services.save_point(
            staff.id, None, name="中关村软件园", address="西北旺东路10号", hours="9:00–17:30"
        )
        city = services.save_point(
            staff.id, None, name="科学城服务中心", address="丰豪东路9号", hours=""
        )
        kit = services.save_kit_type(
            staff.id,
            None,
            name="健康防护包",
            description="口罩和消毒液",
            contents="医用口罩 ×20\n消毒液 ×1",
            opens_at=utcnow() - timedelta(days=1),
            closes_at=utcnow() + timedelta(days=30),
            points_cost=0,
            required_tag=None,
            enterprise_ids=[],
            branch_ids=[],
            delivery_allowed=False,
            active=True,
        )
        services.adjust_stock(staff.id, kit.id, point.id, 600, "首批到货")
        services.adjust_stock(staff.id, kit.id, city.id, 400, "首批到货")
        db.session.commit()

    member = new_page()
    _log_in(member, live_server, "13812345678")
    member.get_by_role("navigation").get_by_role("link", name="健康防护包").click()
    expect(member.get_by_text("剩余 600 份")).to_be_visible()
    member.get_by_role("link", name="申领", exact=True).click()
    member.get_by_role("button", name="申领").click()  # no point chosen yet
    expect(member.get_by_text("请选择领取点。")).to_be_visible()
    member.get_by_label(re.compile("中关村软件园")).check()
    member.get_by_role("button", name="申领").click()
    expect(member).to_have_url(re.compile(r"/kits/claims/\d+$"))
    expect(member.get_by_test_id("claim-status")).to_have_text("已预约")
    code = member.get_by_test_id("pickup-code").inner_text().strip()
    assert re.fullmatch(r"[23456789ABCDEFGHJKMNPQRSTUVWXYZ]{8}", code)
    qr = member.get_by_test_id("qr").locator("svg")
    expect(qr).to_be_visible()
    assert qr.bounding_box()["width"] > 100
    screenshot(member, "kits-claim-code")

    desk = new_page()
    _log_in(desk, live_server, "13700000000")
    desk.goto(live_server(f"/staff/pickup/{code}"))  # what the phone camera opens
    expect(desk.get_by_text("张*明")).to_be_visible()
    expect(desk.get_by_text("138****5678")).to_be_visible()
    desk.get_by_role("button", name="确认发放（标记为已领取）").click()
    expect(desk.get_by_text("已发放：该物资已标记为已领取。")).to_be_visible()
    expect(desk.get_by_test_id("claim-status")).to_have_text("已领取")
    screenshot(desk, "kits-staff-verified")

    desk.goto(live_server(f"/staff/pickup/{code}"))  # a second scan
    expect(desk.get_by_test_id("verify-notice")).to_contain_text("核验人：工会干事")
    expect(desk.get_by_role("button", name="确认发放（标记为已领取）")).to_have_count(0)

    member.reload()
    expect(member.get_by_test_id("claim-status")).to_have_text("已领取")
    expect(member.get_by_text(re.compile("在中关村软件园领取"))).to_be_visible()
    screenshot(member, "kits-claim-picked-up")
