"""A member orders a legal service with an attachment; a lawyer claims and answers it;
the member sees the answer and its notification, rates it and closes the request."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from memberplatform.auth.services import create_user
from memberplatform.extensions import db
from memberplatform.legal import services
from tests.e2e.conftest import screenshot

PASSWORD = "Spring-Return-2020"
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def log_in(page, url, phone):
    page.goto(url("/auth/login"))
    page.get_by_label("手机号").fill(phone)
    page.get_by_label("密码", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="登录").click()
    expect(page).to_have_url(re.compile(r"/me$"))


def test_order_claim_answer_rate_close(live_server, new_page, tmp_path):
    with live_server.app.app_context():
        create_user("13812345678", "张三明", password=PASSWORD, member_no="ZGC10001")
        admin = create_user("13600000009", "管理员", password=PASSWORD, roles=("admin",))
        create_user("13900000009", "王律师", password=PASSWORD, roles=("lawyer",))
        category = services.save_category(admin, None, name="工资与社保", name_en="Wages")
        services.save_item(
            admin,
            None,
            category_id=category.id,
            code="unpaid-wages",
            title="欠薪追讨",
            title_en="Unpaid wages",
            description="单位拖欠工资时的维权咨询。",
            prepare="工资条",
            sla_hours=8,
            fields=[
                {
                    "name": "amount_owed",
                    "label_zh": "拖欠金额（元）",
                    "type": "number",
                    "required": True,
                }
            ],
        )
        db.session.commit()
    contract = tmp_path / "工资条.pdf"
    contract.write_bytes(PDF)

    member = new_page()
    log_in(member, live_server, "13812345678")
    member.goto(live_server("/legal"))
    screenshot(member, "legal-menu")
    member.get_by_test_id("order-unpaid-wages").click()
    member.get_by_role("button", name="提交咨询").click()
    expect(member.get_by_text("请描述您的问题。")).to_be_visible()  # htmx swapped the form
    member.get_by_label("您的问题").fill("公司从二月起停工，一直没有发工资，我该怎么办？")
    member.get_by_label("拖欠金额（元）").fill("12000")
    member.get_by_label("附件").set_input_files(str(contract))
    member.get_by_role("button", name="提交咨询").click()
    expect(member).to_have_url(re.compile(r"/legal/requests/\d+$"))
    expect(member.get_by_test_id("status")).to_have_text("等待律师受理")
    expect(member.get_by_role("heading", name=re.compile(r"咨询 FL-\d{4}-000001"))).to_be_visible()
    screenshot(member, "legal-request-submitted")

    lawyer = new_page()
    log_in(lawyer, live_server, "13900000009")
    lawyer.goto(live_server("/lawyer"))
    expect(lawyer.get_by_test_id("queue-row")).to_have_count(1)
    expect(lawyer.get_by_test_id("sla-clock")).to_be_visible()
    screenshot(lawyer, "legal-lawyer-queue")
    lawyer.get_by_role("button", name="受理").click()
    expect(lawyer).to_have_url(re.compile(r"/legal/requests/\d+$"))
    expect(lawyer.get_by_text("公司从二月起停工")).to_be_visible()
    expect(lawyer.get_by_role("link", name=re.compile(r"\.pdf$"))).to_be_visible()
    lawyer.get_by_label("您的回复").fill(
        "停工超过一个工资支付周期的，单位应按规定支付生活费；可先书面催告，再申请劳动仲裁。"
    )
    lawyer.get_by_role("button", name="发送解答").click()
    expect(lawyer.get_by_test_id("status")).to_have_text("已答复")

    member.goto(live_server("/notifications"))
    notice = member.get_by_text(re.compile(r"律师已答复您的法律咨询 FL-"))
    expect(notice).to_be_visible()
    screenshot(member, "legal-notification")
    member.go_back()
    member.reload()
    expect(member.get_by_text("可先书面催告，再申请劳动仲裁")).to_be_visible()
    expect(member.get_by_test_id("status")).to_have_text("已答复")
    member.get_by_role("radio", name="5 星（满分 5 星）").check()
    member.get_by_label("评价（可选）").fill("回复很及时。")
    member.get_by_role("button", name="提交评价").click()
    expect(member.get_by_text("★★★★★ — 回复很及时。")).to_be_visible()
    member.get_by_text("关闭咨询").click()
    member.get_by_test_id("close-request").click()
    expect(member.get_by_test_id("status")).to_have_text("已关闭")
    screenshot(member, "legal-request-closed")
