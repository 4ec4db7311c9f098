"""A member searches the catalogue, enrols, completes the lessons in place, sees the
certificate and the points badge change — in a real browser."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from memberplatform.auth.services import create_user
from memberplatform.courses import services
from memberplatform.extensions import db
from tests.e2e.conftest import screenshot

PASSWORD = "Spring-Return-2020"


def test_search_enrol_complete_certificate_and_points(live_server, page):
    with live_server.app.app_context():
        member = create_user("13812345678", "张三明", password=PASSWORD, member_no="ZGC10001")
        staff = create_user("13700000009", "工会干事", password=PASSWORD, roles=("staff",))
        course = services.create_course(
            staff,
            title="健康管理师（三级）线上学习",
            teacher="科学城职业技能培训中心",
            category="职业技能",
            status="published",
            capacity=30,
            points_reward=50,
        )
        for n, title in enumerate(["健康管理概论", "健康风险评估"], start=1):
            services.save_lesson(staff, course, title=title, position=n, body=f"第{n}课内容")
        services.create_course(staff, title="复工复产防疫知识小班课", status="published")
        db.session.commit()
        assert member.id

    page.goto(live_server("/auth/login"))
    page.get_by_label("手机号").fill("13812345678")
    page.get_by_label("密码", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="登录").click()
    expect(page).to_have_url(re.compile(r"/me$"))
    badge = page.get_by_test_id("points-badge")
    expect(badge).to_contain_text("0")

    page.goto(live_server("/courses"))
    expect(page.get_by_role("link", name="复工复产防疫知识小班课")).to_be_visible()
    search = page.get_by_label("搜索课程")
    search.fill("健康")  # typed with an IME: the keyup that commits the text triggers the search
    search.press("End")
    # htmx active search: the results update in place and the URL follows
    expect(page.get_by_role("link", name="复工复产防疫知识小班课")).to_have_count(0)
    expect(page).to_have_url(re.compile(r"q=%E5%81%A5%E5%BA%B7"))
    expect(page.get_by_text("剩余 30 / 30 个名额")).to_be_visible()
    screenshot(page, "courses-catalogue")
    page.get_by_role("link", name="健康管理师（三级）线上学习").click()

    page.get_by_role("button", name="报名").click()
    expect(page.get_by_text("报名成功，祝学习愉快！")).to_be_visible()
    expect(page.get_by_text("进度：已完成 0 / 2 课")).to_be_visible()
    page.get_by_test_id("mark-done-1").click()
    expect(page.get_by_text("进度：已完成 1 / 2 课")).to_be_visible()
    expect(badge).to_contain_text("0")
    page.get_by_test_id("mark-done-2").click()
    expect(page.get_by_text("恭喜您完成了本课程！")).to_be_visible()
    # the badge refreshed itself on the points-changed event
    expect(badge).to_contain_text("50")
    screenshot(page, "courses-completed")

    page.get_by_test_id("certificate-link").click()
    expect(page.get_by_role("heading", name="结业证书")).to_be_visible()
    expect(page.get_by_test_id("certificate-holder")).to_have_text("张三明")
    verify_url = page.get_by_test_id("verify-url").inner_text()
    screenshot(page, "courses-certificate")
    page.goto(verify_url)
    expect(page.get_by_text("该结业证书真实有效。")).to_be_visible()
    expect(page.get_by_text("张*明")).to_be_visible()

    page.goto(live_server("/me"))
    expect(page.get_by_role("heading", name="我的课程")).to_be_visible()
    expect(page.get_by_role("link", name="证书")).to_be_visible()
