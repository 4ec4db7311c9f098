"""An admin imports a roster, the new member activates, the admin grants points, and the
audit trail shows it all — in a real browser."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from memberplatform.auth.services import create_user, get_or_create_branch
from memberplatform.extensions import db
from tests.e2e.conftest import screenshot

PASSWORD = "Union-Console-2020"
MEMBER_PASSWORD = "Back-To-Work-2020"
ROSTER = (
    "姓名,手机号,会员号,企业,基层工会\n"
    "王新会员,13812340001,ZGC40001,科学城软件有限公司,软件园联合工会\n"
    "重复手机,13812340001,ZGC40002,科学城软件有限公司,软件园联合工会\n"
)


def log_in(page, live_server, phone: str, password: str) -> None:
    page.goto(live_server("/auth/login"))
    page.get_by_label("手机号").fill(phone)
    page.get_by_label("密码", exact=True).fill(password)
    page.get_by_role("button", name="登录").click()
    expect(page).to_have_url(re.compile(r"/me$"))


def test_import_activate_grant_and_audit(live_server, new_page, tmp_path):
    with live_server.app.app_context():
        create_user("13600000000", "管理员", roles=("admin",), password=PASSWORD)
        get_or_create_branch("软件园联合工会")
        db.session.commit()

    admin = new_page()
    log_in(admin, live_server, "13600000000", PASSWORD)
    admin.get_by_role("navigation", name="主导航").get_by_role("link", name="管理").click()
    expect(admin.get_by_role("heading", name="工作台")).to_be_visible()
    expect(admin.locator("svg.chart")).to_be_visible()
    admin.get_by_role("navigation", name="工作台").get_by_role("link", name="导入名册").click()

    roster = tmp_path / "roster.csv"
    roster.write_bytes(ROSTER.encode("gbk"))  # as Excel saves it in China
    admin.get_by_label("名册文件（CSV）").set_input_files(str(roster))
    admin.get_by_role("button", name="检查文件").click()
    expect(admin).to_have_url(re.compile(r"/admin/roster/[0-9a-f]{64}$"))
    expect(admin.get_by_test_id("rows-create")).to_have_text("1")
    expect(admin.get_by_test_id("rows-bad")).to_have_text("1")
    expect(admin.get_by_test_id("bad-rows")).to_contain_text("与第 2 行手机号重复")
    screenshot(admin, "admin-roster-preview")
    admin.get_by_role("button", name="导入 1 行").click()
    expect(admin).to_have_url(re.compile(r"/admin/members$"))
    expect(admin.get_by_text("名册已导入：新增 1 人，更新 0 人，跳过 1 行。")).to_be_visible()
    admin.wait_for_load_state("load")  # the search is live once htmx has processed it

    # htmx active search: the results swap in place as the admin types
    admin.get_by_label("姓名、手机号或会员号").fill("ZGC40001")
    expect(admin.locator("#member-results")).to_contain_text("找到 1 个账号")
    expect(admin).to_have_url(re.compile(r"q=ZGC40001"))

    member = new_page()
    member.goto(live_server("/auth/activate"))
    member.get_by_label("会员号").fill("ZGC40001")
    member.get_by_label("手机号").fill("13812340001")
    member.get_by_label("新密码").fill(MEMBER_PASSWORD)
    member.get_by_label("再次输入密码").fill(MEMBER_PASSWORD)
    member.get_by_role("button", name="激活").click()
    expect(member).to_have_url(re.compile(r"/me$"))

    # the admin grants points on the points domain's grant page
    admin.goto(live_server("/points/grant"))
    admin.get_by_label("会员号或手机号").fill("ZGC40001")
    admin.get_by_label("积分", exact=True).fill("50")
    admin.get_by_label("原因").fill("复工慰问")
    admin.get_by_role("button", name="记录").click()
    expect(admin.locator(".flash-success")).to_be_visible()

    admin.goto(live_server("/admin/members?q=王新会员"))
    admin.get_by_role("link", name="王新会员").click()
    expect(admin.get_by_test_id("member-status")).to_have_text("正常")
    expect(admin.get_by_test_id("member-balance")).not_to_have_text("0")
    screenshot(admin, "admin-member")

    admin.get_by_role("navigation", name="工作台").get_by_role("link", name="审计日志").click()
    admin.wait_for_load_state("load")  # htmx processes the filters on DOMContentLoaded
    table = admin.get_by_test_id("audit-table")
    expect(table).to_contain_text("发放积分")
    expect(table).to_contain_text("复工慰问")
    expect(table).to_contain_text("导入名册")
    admin.get_by_label("对象").select_option("roster")
    expect(table).not_to_contain_text("发放积分")
    expect(table).to_contain_text("导入名册")
    screenshot(admin, "admin-audit")
    admin.get_by_role("navigation", name="工作台").get_by_role("link", name="概览").click()
    expect(admin.get_by_test_id("figure-activated")).to_have_text("1")
    screenshot(admin, "admin-home")
