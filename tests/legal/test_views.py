"""Legal pages through HTTP: normal and htmx requests, bad input, files, CSV, the menu editor."""

from __future__ import annotations

import io

import sqlalchemy as sa

from memberplatform.audit.models import AuditEntry
from memberplatform.extensions import db
from memberplatform.legal import services
from memberplatform.legal.models import LegalRequest, MenuItem, RequestAttachment
from memberplatform.notifications.models import Notification
from tests.conftest import HX, PASSWORD
from tests.legal.conftest import PDF, claimed, pdf_file, req, submit, user
from tests.querycount import count_queries


def login(app, u):
    client = app.test_client()
    response = client.post("/auth/login", data={"phone": u.phone, "password": PASSWORD})
    assert response.status_code == 303
    return client


def form(question="公司拖欠工资怎么办？", files=(), **extra):
    data = {"question": question, "f_amount_owed": "8000", "other_party": "", **extra}
    if files:
        data["attachments"] = [(io.BytesIO(content), name) for name, content in files]
    return data


def test_menu_page_lists_items_hotline_and_sessions(app, world, client):
    from datetime import timedelta

    from memberplatform.db import utcnow

    with app.app_context():
        services.save_hotline(
            world.admin.id,
            None,
            name="职工维权服务热线",
            number="12351",
            hours="工作日 9:00–17:00",
            active=True,
        )
        services.save_session(
            world.admin.id,
            None,
            title="复工法律直播",
            speaker="王律师",
            starts_at=utcnow() + timedelta(days=1),
            duration_minutes=60,
            venue="直播间",
            description="",
        )
        db.session.commit()
    body = client.get("/legal").get_data(as_text=True)
    assert "欠薪追讨" in body and "8 个工作小时内答复" in body
    assert "12351" in body and "复工法律直播" in body
    assert (
        client.get("/legal", headers={"Accept-Language": "en"})
        .get_data(as_text=True)
        .count("Unpaid wages")
    )
    home = client.get("/").get_data(as_text=True)
    assert "12351" in home and "复工法律直播" in home  # the home panel


def test_the_menu_hotlines_and_sessions_are_kept_a_moment_per_language(
    app_factory, world, monkeypatch
):
    """With the short cache on (production), each worker renders the public part of
    /legal once per PROGRESS_CACHE_SECONDS and language: a new hotline shows after
    that; the member's own buttons beside it are not kept."""
    from memberplatform.core import cache
    from tests.querycount import count_queries

    app = app_factory(PROGRESS_CACHE_SECONDS=60)
    with app.app_context():
        engine = db.engine
    client = app.test_client()
    with count_queries(engine) as first:
        page = client.get("/legal").get_data(as_text=True)
    assert "欠薪追讨" in page and "我的法律咨询" not in page
    with app.app_context():
        services.save_hotline(
            world.admin.id, None, name="职工维权服务热线", number="12351", hours="9:00", active=True
        )
        db.session.commit()
    with count_queries(engine) as second:
        page = client.get("/legal").get_data(as_text=True)
    assert first and not second  # the menu (2), hotlines, sessions: read once
    assert "欠薪追讨" in page and "12351" not in page
    english = client.get("/legal", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert "Unpaid wages" in english and "12351" in english  # its own language's copy
    member = login(app, world.member).get("/legal").get_data(as_text=True)
    assert "我的法律咨询" in member and "12351" not in member
    later = cache.time.monotonic() + 61
    monkeypatch.setattr(cache.time, "monotonic", lambda: later)
    assert "12351" in client.get("/legal").get_data(as_text=True)


def test_member_orders_with_attachment(app, world):
    client = login(app, world.member)
    page = client.get(f"/legal/{world.item_id}/request").get_data(as_text=True)
    assert "拖欠金额（元）" in page and "最后发薪日期" in page
    response = client.post(
        f"/legal/{world.item_id}/request",
        data=form(files=[("工资条.pdf", PDF)], on_behalf="y", enterprise_name="某某科技有限公司"),
        content_type="multipart/form-data",
    )
    assert response.status_code == 303
    detail = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "FL-" in detail and "等待律师受理" in detail and "某某科技有限公司" in detail
    assert ".pdf" in detail
    with app.app_context():
        r = db.session.scalars(sa.select(LegalRequest)).one()
        assert r.enterprise_name == "某某科技有限公司" and r.field_values["amount_owed"] == "8000"
        # the member's own view is not audited as a "view"
        assert not db.session.scalars(
            sa.select(AuditEntry).where(AuditEntry.action == "legal.request.view")
        ).all()


def test_htmx_submit_redirects_and_invalid_swaps_only_the_form(app, world):
    client = login(app, world.member)
    ok = client.post(f"/legal/{world.item_id}/request", data=form(), headers=HX)
    assert ok.status_code == 204 and ok.headers["HX-Redirect"].startswith("/legal/requests/")
    bad = client.post(
        f"/legal/{world.item_id}/request", data=form(question="", f_amount_owed="abc"), headers=HX
    )
    body = bad.get_data(as_text=True)
    assert bad.status_code == 422 and "<html" not in body
    assert "请描述您的问题。" in body and "请填写数字" in body


def test_bad_input_via_http_changes_nothing(app, world):
    client = login(app, world.member)
    cases = [
        form(question="x" * 50_000),
        form(f_amount_owed=""),
        form(on_behalf="y", enterprise_name=""),
        form(files=[("contract.pdf", b"plain text pretending")]),
        form(files=[(f"{i}.pdf", PDF) for i in range(4)]),
    ]
    messages = ["最多 5000 个字", "此项为必填项", "请填写企业名称", "", "最多上传 3 个附件"]
    for data, message in zip(cases, messages, strict=True):
        response = client.post(
            f"/legal/{world.item_id}/request", data=data, content_type="multipart/form-data"
        )
        assert response.status_code == 422
        assert message in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(LegalRequest.id))) == 0


def test_lawyer_claims_answers_member_rates_and_closes(app, world):
    request_id = submit(app, world, files=[])
    lawyer = login(app, world.lawyer)
    queue = lawyer.get("/lawyer").get_data(as_text=True)
    assert "欠薪追讨" in queue and "公司拖欠两个月工资" not in queue  # summary only
    fragment = lawyer.get("/lawyer", headers=HX).get_data(as_text=True)
    assert 'id="queue"' in fragment and "<html" not in fragment
    claim = lawyer.post(f"/lawyer/requests/{request_id}/claim", headers=HX)
    assert (
        claim.status_code == 204 and claim.headers["HX-Redirect"] == f"/legal/requests/{request_id}"
    )
    again = login(app, world.lawyer2).post(f"/lawyer/requests/{request_id}/claim")
    assert again.status_code == 422 and "已被其他律师受理" in again.get_data(as_text=True)

    page = lawyer.get(f"/legal/requests/{request_id}").get_data(as_text=True)
    assert "公司拖欠两个月工资" in page and "回复会员" in page
    empty = lawyer.post(f"/legal/requests/{request_id}/reply", data={"body": ""}, headers=HX)
    assert empty.status_code == 422 and "请填写解答" in empty.get_data(as_text=True)
    answered = lawyer.post(
        f"/legal/requests/{request_id}/reply",
        data={
            "body": "建议先书面催告，再申请劳动仲裁。",
            "action": "answer",
            "attachments": [(io.BytesIO(PDF), "仲裁申请书.pdf")],
        },
        content_type="multipart/form-data",
    )
    assert answered.status_code == 303
    note = lawyer.post(f"/legal/requests/{request_id}/notes", data={"note": "已核实工资条"})
    assert note.status_code == 303

    member = login(app, world.member)
    page = member.get(f"/legal/requests/{request_id}").get_data(as_text=True)
    assert "建议先书面催告" in page and "已答复" in page
    assert "已核实工资条" not in page  # internal note
    with app.app_context():
        assert db.session.scalar(
            sa.select(Notification.kind).where(
                Notification.user_id == world.member.id, Notification.kind == "legal.answered"
            )
        )
    bad_rating = member.post(f"/legal/requests/{request_id}/rate", data={"rating": "9"}, headers=HX)
    assert bad_rating.status_code == 422 and "<html" not in bad_rating.get_data(as_text=True)
    rated = member.post(
        f"/legal/requests/{request_id}/rate", data={"rating": "5", "comment": "很好"}
    )
    assert rated.status_code == 303
    closed = member.post(f"/legal/requests/{request_id}/close")
    assert closed.status_code == 303
    late = lawyer.post(
        f"/legal/requests/{request_id}/reply", data={"body": "补充", "action": "answer"}
    )
    assert late.status_code == 422 and "已关闭" in late.get_data(as_text=True)
    with app.app_context():
        r = req(request_id)
        assert r.status == "closed" and r.rating == 5 and r.rating_comment == "很好"
        views = db.session.scalars(
            sa.select(AuditEntry.actor_id).where(AuditEntry.action == "legal.request.view")
        ).all()
        assert views and set(views) == {world.lawyer.id}


def test_attachment_download_only_for_those_allowed(app, world):
    request_id = submit(app, world, files=[pdf_file()])
    with app.app_context():
        services.claim(user(world.lawyer), req(request_id))
        db.session.commit()
        attachment_id = db.session.scalar(sa.select(RequestAttachment.id))
    url = f"/legal/requests/{request_id}/files/{attachment_id}"
    for who in (world.member, world.lawyer, world.admin):
        response = login(app, who).get(url)
        assert response.status_code == 200, who.name
        assert response.headers["Content-Type"] == "application/pdf"
        assert response.headers["Content-Disposition"].startswith("attachment;")
        assert response.data == PDF
    for who in (world.other, world.lawyer2, world.staff):
        assert login(app, who).get(url).status_code == 404, who.name
    assert app.test_client().get(url).status_code == 302
    assert (
        login(app, world.member).get(f"/legal/requests/{request_id}/files/999").status_code == 404
    )
    with app.app_context():
        viewers = set(
            db.session.scalars(
                sa.select(AuditEntry.actor_id).where(AuditEntry.action == "legal.attachment.view")
            )
        )
        assert viewers == {world.lawyer.id, world.admin.id}


def test_member_cannot_post_to_another_members_thread(app, world):
    request_id = submit(app, world)
    other = login(app, world.other)
    for path in ("follow-up", "close", "rate"):
        response = other.post(
            f"/legal/requests/{request_id}/{path}", data={"body": "x", "rating": "5"}
        )
        assert response.status_code == 404
    with app.app_context():
        assert req(request_id).status == "submitted"


def test_conflict_shown_in_queue_and_claim_refused(app, world):
    request_id = submit(app, world, other_party="华信建筑劳务有限公司")
    admin = login(app, world.admin)
    added = admin.post(
        "/legal/admin/clients",
        data={"lawyer_id": world.lawyer.id, "enterprise_name": "华信建筑劳务有限公司"},
    )
    assert added.status_code == 303
    lawyer = login(app, world.lawyer)
    assert "利益冲突" in lawyer.get("/lawyer").get_data(as_text=True)
    refused = lawyer.post(f"/lawyer/requests/{request_id}/claim")
    assert refused.status_code == 422 and "利益冲突" in refused.get_data(as_text=True)


def test_admin_list_filters_figures_and_csv(app, world):
    plain = claimed(app, world, question='=HYPERLINK("http://evil")')
    submit(app, world, member=world.other)
    admin = login(app, world.admin)
    page = admin.get("/legal/admin").get_data(as_text=True)
    assert "咨询总数" in page and "首次回复用时中位数" in page
    filtered = admin.get("/legal/admin?status=assigned", headers=HX)
    assert filtered.status_code == 200 and "<html" not in filtered.get_data(as_text=True)
    assert filtered.get_data(as_text=True).count("/legal/requests/") == 1
    assert admin.get("/legal/admin?overdue=y").status_code == 200
    csv_plain = admin.get("/legal/admin/export.csv").get_data(as_text=True)
    assert csv_plain.startswith("\ufeff编号") and "HYPERLINK" not in csv_plain
    assert csv_plain.count("FL-") == 2
    with_text = admin.get("/legal/admin/export.csv?question=1").get_data(as_text=True)
    assert "'=HYPERLINK" in with_text and ",=HYPERLINK" not in with_text
    with app.app_context():
        exports = db.session.scalars(
            sa.select(AuditEntry.changes).where(AuditEntry.action == "legal.export")
        ).all()
        assert exports == [{"question": False}, {"question": True}]
        assert req(plain).status == "assigned"


def test_staff_edit_the_menu(app, world):
    staff = login(app, world.staff)
    assert staff.get("/legal/manage").status_code == 200
    bad = staff.post(
        "/legal/manage/items/new",
        data={
            "category_id": world.category_id,
            "code": "work-injury",
            "title": "工伤",
            "description": "工伤咨询",
            "sla_hours": "8",
            "fields": "[{bad json",
        },
        headers=HX,
    )
    assert bad.status_code == 422 and "不是有效的 JSON" in bad.get_data(as_text=True)
    ok = staff.post(
        "/legal/manage/items/new",
        data={
            "category_id": world.category_id,
            "code": "work-injury",
            "title": "工伤",
            "description": "工伤咨询",
            "sla_hours": "8",
            "fields": '[{"name": "injury_date", "label_zh": "受伤日期", '
            '"type": "date", "required": true}]',
            "lawyer_ids": [world.lawyer.id],
        },
    )
    assert ok.status_code == 303
    with app.app_context():
        item = db.session.scalar(sa.select(MenuItem).where(MenuItem.code == "work-injury"))
        assert item.fields[0]["name"] == "injury_date" and item.lawyer_ids == {world.lawyer.id}
        new_id = item.id
    assert "受伤日期" in login(app, world.member).get(f"/legal/{new_id}/request").get_data(
        as_text=True
    )
    # an item in use: delete refused, retire works, the menu hides it, its form is gone
    submit(app, world)
    staff.post(f"/legal/manage/items/{world.item_id}/delete")
    with app.app_context():
        assert db.session.get(MenuItem, world.item_id) is not None
    assert staff.post(f"/legal/manage/items/{world.item_id}/retire").status_code == 303
    assert "欠薪追讨" not in staff.get("/legal").get_data(as_text=True)
    assert login(app, world.member).get(f"/legal/{world.item_id}/request").status_code == 404
    # an unused item can be deleted
    assert staff.post(f"/legal/manage/items/{new_id}/delete").status_code == 303
    with app.app_context():
        assert db.session.get(MenuItem, new_id) is None
        assert db.session.scalar(
            sa.select(AuditEntry.id).where(AuditEntry.action == "legal.item.retired")
        )


def test_staff_edit_hotline_and_sessions(app, world):
    staff = login(app, world.staff)
    assert (
        staff.post(
            "/legal/manage/hotlines/new",
            data={"name": "法律援助", "number": "12348", "hours": "24 小时", "active": "y"},
        ).status_code
        == 303
    )
    bad = staff.post(
        "/legal/manage/hotlines/new", data={"name": "x", "number": "abc", "hours": "h"}
    )
    assert bad.status_code == 422
    assert (
        staff.post(
            "/legal/manage/sessions/new",
            data={
                "title": "工伤直播",
                "speaker": "王律师",
                "starts_at": "2099-01-05T15:00",
                "duration_minutes": "60",
            },
        ).status_code
        == 303
    )
    body = app.test_client().get("/legal").get_data(as_text=True)
    assert "12348" in body and "工伤直播" in body and "2099-01-05 15:00" in body


def test_unknown_ids_are_404(app, world):
    member = login(app, world.member)
    assert member.get("/legal/requests/999").status_code == 404
    assert member.get("/legal/999/request").status_code == 404
    assert login(app, world.lawyer).post("/lawyer/requests/999/claim").status_code == 404
    assert login(app, world.staff).get("/legal/manage/items/999").status_code == 404


def test_panels(app, world):
    request_id = submit(app, world)
    with app.app_context():
        number = req(request_id).number
    from memberplatform.core.registry import admin_panels, me_panels

    assert any(p.name == "legal" for p in me_panels) and any(
        p.name == "legal" for p in admin_panels
    )
    with app.test_request_context():
        from memberplatform.legal.hooks import _admin_panel, _me_panel

        assert _me_panel(user(world.member))["requests"][0][0].number == number
        assert _admin_panel()["figures"].total == 1


def test_a_lawyers_cases_page_by_due_date_with_the_counted_total(app, world):
    """The desk lists a lawyer's cases 20 at a time, by due date; the pager's total is
    the per-status count the desk shows (no count over every case again)."""
    ids = [claimed(app, world, question=f"第{n}个问题：公司拖欠工资怎么办？") for n in range(23)]
    with app.app_context():
        by_due = [
            number
            for (number,) in db.session.execute(
                sa.select(LegalRequest.number)
                .where(LegalRequest.id.in_(ids))
                .order_by(LegalRequest.due_at, LegalRequest.id)
            )
        ]
    lawyer = login(app, world.lawyer)

    def numbers(path):
        text = lawyer.get(path).get_data(as_text=True)
        return [n for n in by_due if f">{n}</a>" in text], text

    first, text = numbers("/lawyer")
    assert len(first) == 20 and "第 1 页，共 2 页" in text and "(23)" in text
    assert text.index(by_due[0]) < text.index(by_due[19])
    second, text = numbers("/lawyer?page=2")
    assert second == by_due[20:] and "第 2 页，共 2 页" in text
    assert numbers("/lawyer?status=assigned&page=2")[0] == by_due[20:]
    assert numbers("/lawyer?status=answered")[0] == []
    beyond, text = numbers("/lawyer?page=9")
    assert beyond == [] and "此列表中没有咨询" in text


def _lawyer_at_desk(app, world):
    """The lawyer signed in, with a case of their own and a request waiting, after a
    first look at the desk (page and queue block): their client and the engine."""
    claimed(app, world, question="公司拖欠两个月工资，怎么办？")
    submit(app, world, files=[])
    lawyer = login(app, world.lawyer)
    lawyer.get("/lawyer")
    lawyer.get("/lawyer", headers=HX)
    with app.app_context():
        return lawyer, db.engine


def test_the_queues_minute_poll_reads_the_queue_only(app, world):
    """The desk's queue refreshes itself every minute (``hx-trigger="every 60s"``): its
    block shows the waiting requests, so the poll does not count and page the
    lawyer's own cases as the full page does."""
    lawyer, engine = _lawyer_at_desk(app, world)
    with count_queries(engine) as polled:
        fragment = lawyer.get("/lawyer", headers=HX).get_data(as_text=True)
    with count_queries(engine) as full:
        page = lawyer.get("/lawyer").get_data(as_text=True)
    assert 'id="queue"' in fragment and "<html" not in fragment and "欠薪追讨" in fragment
    assert 'id="cases-title"' in page and 'id="cases-title"' not in fragment

    def own_cases(statements):
        return [sql for sql in statements if "legal_requests.lawyer_id =" in sql]

    assert own_cases(polled) == [] and len(own_cases(full)) == 2  # counts, page
    assert len(polled) == len(full) - 2


def test_the_desks_lists_read_neither_the_people_nor_the_questions(app, world):
    """The queue and the cases list show a request's number, item, status and clock:
    their statements join no ``users`` row (requester, lawyer) and read no question
    text or form values, which a desk of thousands of cases loaded and parsed per row."""
    lawyer, engine = _lawyer_at_desk(app, world)
    with count_queries(engine) as statements:
        page = lawyer.get("/lawyer").get_data(as_text=True)
    assert "欠薪追讨" in page and "公司拖欠两个月工资" not in page
    listed = [sql for sql in statements if "FROM legal_requests" in sql and "OFFSET" in sql]
    assert len(listed) == 2  # the queue's page and the cases' page
    for sql in listed:
        assert "legal_requests.question" not in sql
        assert "legal_requests.field_values" not in sql
        assert "users" not in sql.split("FROM", 1)[1]
