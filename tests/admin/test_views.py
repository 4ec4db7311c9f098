"""Console pages over HTTP, as normal requests and as htmx requests."""

from __future__ import annotations

import csv
import io
import re

import pytest
import sqlalchemy as sa

from memberplatform.admin.models import PasswordReset, StaffScope
from memberplatform.audit.models import AuditEntry
from memberplatform.auth.models import User
from memberplatform.extensions import db
from tests.admin.conftest import login
from tests.conftest import HX, PASSWORD

PAGES = [
    "/admin",
    "/admin/members",
    "/admin/members?q=张",
    "/admin/roster",
    "/admin/branches",
    "/admin/enterprises",
    "/admin/audit",
    "/admin/exports",
]


def body(response) -> str:
    return response.get_data(as_text=True)


def audit_actions(app) -> list[str]:
    with app.app_context():
        return list(db.session.scalars(sa.select(AuditEntry.action).order_by(AuditEntry.id)))


@pytest.mark.parametrize("path", PAGES)
def test_pages_and_fragments(app, world, path):
    client = login(app, world.admin)
    page = client.get(path)
    assert page.status_code == 200 and body(page).lstrip().startswith("<!doctype html>")
    assert "HX-Request" in page.headers["Vary"]
    assert 'style="' not in body(page)  # the CSP forbids inline styles
    fragment = client.get(path, headers=HX)
    assert fragment.status_code == 200 and "<html" not in body(fragment)


def test_home_shows_figures_chart_and_branch_filter(app, world):
    client = login(app, world.admin)
    text = body(client.get("/admin"))
    assert "工作台" in text and 'data-testid="figure-members">2<' in text
    assert '<svg class="chart"' in text and text.count('class="chart-bar"') == 30
    assert "近 30 天每日激活人数" in text
    assert "这部分数据暂时无法显示" not in text  # every domain's panel rendered (savepoints)
    branch = body(client.get(f"/admin?branch={world.branch_b.id}", headers=HX))
    assert branch.strip().startswith('<section class="card" id="figures"')
    assert 'data-testid="figure-members">1<' in branch
    assert client.get("/admin?branch=nonsense").status_code == 200


def test_home_renders_registered_panels_and_survives_a_broken_one(app, world, monkeypatch):
    from memberplatform.core import registry

    def good():
        return {"value": 42}

    def broken():
        raise RuntimeError("panel bug")

    monkeypatch.setattr(
        registry,
        "admin_panels",
        [
            registry.Panel("test.good", 1, "admin/_home_card.html", lambda: {"members_served": 42}),
            registry.Panel("test.broken", 2, "admin/_home_card.html", broken),
        ],
    )
    text = body(login(app, world.admin).get("/admin"))
    assert ">42<" in text and "这部分数据暂时无法显示" in text


def test_active_search_by_name_phone_and_member_number(app, world):
    client = login(app, world.staff)
    for q in ("张三", world.member_a.phone[-6:], "zgc10001"):
        fragment = body(client.get("/admin/members", query_string={"q": q}, headers=HX))
        assert fragment.strip().startswith('<section id="member-results"')
        assert "张三明" in fragment and "李四" not in fragment, q
    assert "没有符合条件的账号" in body(client.get("/admin/members?q=%25_"))
    pending = body(client.get("/admin/members?status=pending"))
    assert "没有符合条件的账号" in pending


def test_member_list_paginates(app, world):
    with app.app_context():
        db.session.execute(
            sa.insert(User),
            [
                {"phone": f"1361000{i:04d}", "name": f"批量{i}", "status": "active"}
                for i in range(45)
            ],
        )
        db.session.commit()
    client = login(app, world.staff)
    first = body(client.get("/admin/members"))
    assert "第 1 页，共 3 页" in first and 'rel="next"' in first
    assert "第 3 页，共 3 页" in body(client.get("/admin/members?page=3"))


def test_member_page_shows_profile_balance_and_links(app, world):
    from memberplatform.points import services as points

    with app.app_context():
        points.earn(world.member_a.id, 30, reason="grant", idempotency_key="t1")
        db.session.commit()
    text = body(login(app, world.staff).get(f"/admin/members/{world.member_a.id}"))
    assert world.member_a.phone in text and "ZGC10001" in text and "软件园联合工会" in text
    assert 'data-testid="member-balance">30<' in text
    assert "保存角色" not in text  # staff do not edit roles
    assert login(app, world.staff).get("/admin/members/99999").status_code == 404


def test_disable_and_enable_over_htmx_and_plain(app, world):
    client = login(app, world.staff)
    url = f"/admin/members/{world.member_a.id}"
    fragment = client.post(url + "/disable", headers=HX)
    assert fragment.status_code == 200
    assert body(fragment).strip().startswith('<section class="card" id="account"')
    assert "账号已停用" in body(fragment)
    member = app.test_client()
    assert (
        member.post(
            "/auth/login", data={"phone": world.member_a.phone, "password": PASSWORD}
        ).status_code
        == 422
    )
    again = client.post(url + "/disable", headers=HX)
    assert again.status_code == 422 and "该账号已停用" in body(again)
    plain = client.post(url + "/enable")
    assert plain.status_code == 303 and plain.headers["Location"] == url
    assert "账号已启用" in body(client.get(url))
    assert audit_actions(app) == ["user.disable", "user.enable"]


def test_admin_cannot_disable_themself(app, world):
    client = login(app, world.admin)
    response = client.post(f"/admin/members/{world.admin.id}/disable")
    assert response.status_code == 422 and "不能停用自己的账号" in body(response)
    with app.app_context():
        assert db.session.get(User, world.admin.id).status == "active"


def test_last_admin_keeps_admin_role_over_http(app, world):
    client = login(app, world.admin)
    url = f"/admin/members/{world.admin.id}/roles"
    response = client.post(url, data={"roles": ["staff"]}, headers=HX)
    assert response.status_code == 422
    assert "这是最后一位在用的管理员" in body(response) and "<html" not in body(response)
    ok = client.post(
        f"/admin/members/{world.member_a.id}/roles", data={"roles": ["member", "lawyer"]}
    )
    assert ok.status_code == 303
    with app.app_context():
        assert db.session.get(User, world.member_a.id).roles == {"member", "lawyer"}


def test_tags_and_scope(app, world):
    client = login(app, world.admin)
    tags = client.post(
        f"/admin/members/{world.member_a.id}/tags",
        data={"tags": "returned-to-work，骨干"},
        headers=HX,
    )
    assert tags.status_code == 200 and "已复工" in body(tags) and "骨干" in body(tags)
    bad = client.post(f"/admin/members/{world.member_a.id}/tags", data={"tags": "a b"})
    assert bad.status_code == 422 and "不能含空格" in body(bad)
    assert re.search(r'<input checked[^>]*value="member"', body(bad))  # other forms unbound
    scope = client.post(
        f"/admin/members/{world.staff.id}/scope", data={"branch": str(world.branch_b.id)}
    )
    assert scope.status_code == 303
    with app.app_context():
        assert db.session.get(StaffScope, world.staff.id).branch_id == world.branch_b.id
    assert (
        client.post(f"/admin/members/{world.staff.id}/scope", data={"branch": "999"}).status_code
        == 404
    )
    refused = client.post(f"/admin/members/{world.member_a.id}/scope", data={"branch": ""})
    assert refused.status_code == 422


def test_approve_pending_registration(app, world, make_user):
    pending = make_user(status="pending", name="待审")
    client = login(app, world.staff)
    assert "待审核：1 人" in body(client.get("/admin/members"))
    response = client.post(f"/admin/members/{pending.id}/approve", headers=HX)
    assert response.status_code == 200 and "注册已通过审核" in body(response)
    assert (
        app.test_client()
        .post("/auth/login", data={"phone": pending.phone, "password": PASSWORD})
        .status_code
        == 303
    )


def test_reset_link_flow(app, world):
    staff = login(app, world.staff)
    response = staff.post(f"/admin/members/{world.member_a.id}/reset", headers=HX)
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    link = re.search(r'value="(http://[^"]+/account/reset/[^"]+)"', body(response)).group(1)
    path = link.split("localhost", 1)[1]
    member = app.test_client()
    page = member.get(path)
    assert page.status_code == 200 and "设置新密码" in body(page)
    assert "张*明" in body(page) and page.headers["Referrer-Policy"] == "no-referrer"
    short = member.post(path, data={"password": "short", "confirm": "short"}, headers=HX)
    assert short.status_code == 422 and "<html" not in body(short)
    done = member.post(path, data={"password": "New-Union-Pass-9", "confirm": "New-Union-Pass-9"})
    assert done.status_code == 303 and done.headers["Location"] == "/auth/login"
    assert (
        member.post(
            "/auth/login", data={"phone": world.member_a.phone, "password": "New-Union-Pass-9"}
        ).status_code
        == 303
    )
    used = app.test_client().get(path)
    assert used.status_code == 404 and "该链接无效、已使用或已过期" in body(used)
    assert app.test_client().get("/account/reset/nonsense").status_code == 404
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(PasswordReset.id))) == 1
    assert audit_actions(app) == ["user.password_reset", "user.password_reset_used"]


def test_branches_and_enterprises(app, world):
    admin = login(app, world.admin)
    text = body(admin.get("/admin/branches"))
    assert "软件园联合工会" in text and "添加基层工会" in text
    created = admin.post("/admin/branches", data={"name": "数字医疗基层工会"})
    assert created.status_code == 303
    duplicate = admin.post("/admin/branches", data={"name": "数字医疗基层工会"}, headers=HX)
    assert duplicate.status_code == 422 and "该名称已被使用" in body(duplicate)
    renamed = admin.post(
        f"/admin/branches/{world.branch_b.id}", data={"name": "科学城第二基层工会"}
    )
    assert renamed.status_code == 303
    assert "科学城第二基层工会" in body(admin.get("/admin/branches"))
    assert admin.get("/admin/branches/9999").status_code == 404
    assert admin.post("/admin/enterprises", data={"name": "新材料有限公司"}).status_code == 303
    search = body(admin.get("/admin/enterprises?q=新材料", headers=HX))
    assert "新材料有限公司" in search and "软件公司" not in search
    staff = login(app, world.staff)
    assert "添加基层工会" not in body(staff.get("/admin/branches"))
    assert staff.post("/admin/branches", data={"name": "x"}).status_code == 403
    assert staff.post(f"/admin/branches/{world.branch_a.id}", data={"name": "x"}).status_code == 403
    assert audit_actions(app) == [
        "branch.create",
        "branch.rename",
        "enterprise.create",
    ]


def test_audit_filters_and_no_way_to_change_entries(app, world):
    admin = login(app, world.admin)
    admin.post(f"/admin/members/{world.member_a.id}/disable")
    admin.post(f"/admin/members/{world.member_b.id}/tags", data={"tags": "x"})
    admin.post("/admin/branches", data={"name": "审计工会"})
    text = body(admin.get("/admin/audit"))
    assert "停用账号" in text and "修改标签" in text and "新增基层工会" in text
    only_branch = body(admin.get("/admin/audit?type=branch", headers=HX))
    assert "新增基层工会" in only_branch and "停用账号" not in only_branch
    by_actor = body(admin.get("/admin/audit", query_string={"actor": "管理员"}))
    assert "停用账号" in by_actor
    nobody = body(admin.get("/admin/audit", query_string={"actor": "没有这个人"}))
    assert "没有符合条件的记录" in nobody
    future = body(admin.get("/admin/audit?since=2999-01-01"))
    assert "没有符合条件的记录" in future
    today = body(admin.get("/admin/audit?since=2000-01-01&until=2999-12-31&type=user"))
    assert "停用账号" in today
    branch_b = body(admin.get(f"/admin/audit?branch={world.branch_b.id}"))
    assert "修改标签" in branch_b and "停用账号" not in branch_b  # member_b is in branch B
    assert f"/admin/audit.csv?branch={world.branch_b.id}" in branch_b
    with app.app_context():
        entry_id = db.session.scalar(sa.select(sa.func.min(AuditEntry.id)))
    # no route edits or deletes an entry: every method but GET is refused
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        assert admin.open("/admin/audit", method=method).status_code == 405
        assert admin.open(f"/admin/audit/{entry_id}", method=method).status_code == 404
    rules = [r for r in app.url_map.iter_rules() if r.rule.startswith("/admin/audit")]
    assert {r.rule for r in rules} == {"/admin/audit", "/admin/audit.csv"}
    assert all(r.methods <= {"GET", "HEAD", "OPTIONS"} for r in rules)
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(AuditEntry.id))) == 3


def read_csv(response) -> list[list[str]]:
    raw = response.get_data()
    assert raw.startswith(b"\xef\xbb\xbf")
    return list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))


def test_members_export_is_formula_safe_and_reimportable(app, world, make_user):
    make_user(name='=HYPERLINK("http://evil")', member_no="EVIL0001", branch=world.branch_a.name)
    make_user(name="+1 加", member_no="EVIL0002", enterprise="@公司")
    client = login(app, world.staff)
    response = client.get("/admin/exports/members.csv")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    rows = read_csv(response)
    assert rows[0][:5] == ["姓名", "手机号", "会员号", "企业", "基层工会"]
    names = {row[0] for row in rows[1:]}
    assert '\'=HYPERLINK("http://evil")' in names and "'+1 加" in names
    assert any(row[3] == "'@公司" for row in rows[1:])
    assert len(rows) == 1 + 7
    # the file is a roster the console can read back
    from memberplatform.auth.roster import parse_roster

    with app.app_context():
        parsed = parse_roster(response.get_data().decode("utf-8-sig"))
    assert {row.member_no for row in parsed if row.member_no} >= {"ZGC10001", "EVIL0001"}
    filtered = read_csv(client.get(f"/admin/exports/members.csv?branch={world.branch_b.id}"))
    assert [row[2] for row in filtered[1:]] == ["ZGC10002"]
    assert "export.members" in audit_actions(app)


def test_audit_export_is_formula_safe(app, world, make_user):
    client = login(app, world.admin)
    client.post("/admin/branches", data={"name": "=cmd|' /C calc'!A0"})
    rows = read_csv(client.get("/admin/audit.csv"))
    assert rows[0][0] == "编号"
    assert any("'=cmd" in cell or "name: =cmd" in cell for row in rows[1:] for cell in row)
    assert all(not cell.startswith(("=", "+", "-", "@")) for row in rows[1:] for cell in row)
    typed = read_csv(client.get("/admin/audit.csv?type=nothing"))
    assert len(typed) == 1


def test_exports_page_lists_registered_exports_by_role(app, world, monkeypatch):
    from memberplatform.core import registry

    monkeypatch.setattr(
        registry,
        "exports",
        [
            *registry.exports,
            registry.Export("Admins only", "admin.export_audit", ("admin",)),
            registry.Export("Missing", "nowhere.export"),
        ],
    )
    staff = body(login(app, world.staff).get("/admin/exports"))
    assert "会员与账号" in staff and "审计日志" in staff
    assert "Admins only" not in staff and "Missing" not in staff
    admin = body(login(app, world.admin).get(f"/admin/exports?branch={world.branch_a.id}"))
    assert "Admins only" in admin
    assert f"/admin/exports/members.csv?branch={world.branch_a.id}" in admin


def test_impact_page_is_public_and_anonymous(app, world, make_user):
    make_user(password=None, name="未激活")
    response = app.test_client().get("/impact")
    text = body(response)
    assert response.status_code == 200 and "我们的成果" in text
    assert 'data-testid="impact-members">2<' in text
    assert "张三明" not in text and world.member_a.phone not in text
    home = body(app.test_client().get("/"))
    assert "服务会员" in home and "/impact" in home
