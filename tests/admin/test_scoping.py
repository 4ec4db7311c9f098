"""A staff user limited to branch A sees only branch A on every console list and export."""

from __future__ import annotations

import csv
import io

import pytest

from memberplatform.admin import services
from memberplatform.auth.models import User
from memberplatform.extensions import db
from tests.admin.conftest import login
from tests.conftest import HX


def text(response) -> str:
    return response.get_data(as_text=True)


@pytest.fixture
def scoped_client(app, world):
    # audit entries about both members, by an unscoped admin
    admin = login(app, world.admin)
    admin.post(f"/admin/members/{world.member_a.id}/tags", data={"tags": "甲会标签"})
    admin.post(f"/admin/members/{world.member_b.id}/tags", data={"tags": "乙会标签"})
    return login(app, world.scoped)


def test_home_figures_are_the_branchs(scoped_client, world):
    page = text(scoped_client.get(f"/admin?branch={world.branch_b.id}"))
    assert 'data-testid="figure-members">1<' in page
    assert "您只能看到软件园联合工会的会员" in page
    assert 'name="branch"' not in page


def test_members_list_and_search(scoped_client, world):
    for url in (
        "/admin/members",
        f"/admin/members?branch={world.branch_b.id}",
        "/admin/members?q=李四",
    ):
        page = text(scoped_client.get(url, headers=HX))
        assert "李四" not in page, url
    assert "张三明" in text(scoped_client.get("/admin/members"))


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/admin/members/{b}"),
        ("POST", "/admin/members/{b}/disable"),
        ("POST", "/admin/members/{b}/enable"),
        ("POST", "/admin/members/{b}/approve"),
        ("POST", "/admin/members/{b}/reset"),
        ("POST", "/admin/members/{b}/tags"),
        ("GET", "/admin/branches/{branch_b}"),
    ],
)
def test_other_branch_objects_are_404(scoped_client, world, method, path):
    url = path.format(b=world.member_b.id, branch_b=world.branch_b.id)
    assert scoped_client.open(url, method=method, data={"tags": "x"}).status_code == 404
    assert scoped_client.get(f"/admin/members/{world.member_a.id}").status_code == 200


def test_structure_lists(scoped_client, app, world):
    branches = text(scoped_client.get("/admin/branches"))
    assert "软件园联合工会" in branches and "科学城第一基层工会" not in branches
    enterprises = text(scoped_client.get("/admin/enterprises"))
    assert "软件公司" in enterprises and "医疗公司" not in enterprises
    with app.app_context():
        other = db.session.get(User, world.member_b.id).enterprise_id
    assert scoped_client.get(f"/admin/enterprises/{other}").status_code == 404


def test_audit_list_and_export(scoped_client):
    page = text(scoped_client.get("/admin/audit"))
    assert "甲会标签" in page and "乙会标签" not in page
    rows = scoped_client.get("/admin/audit.csv").get_data().decode("utf-8-sig")
    assert "甲会标签" in rows and "乙会标签" not in rows


def test_members_export(scoped_client, world):
    for url in (
        "/admin/exports/members.csv",
        f"/admin/exports/members.csv?branch={world.branch_b.id}",
    ):
        rows = list(csv.reader(io.StringIO(scoped_client.get(url).get_data().decode("utf-8-sig"))))
        branches = {row[4] for row in rows[1:]}
        assert branches == {"软件园联合工会"}, url
        assert world.member_b.phone not in {row[1] for row in rows}
    exports = text(scoped_client.get("/admin/exports"))
    assert 'name="branch"' not in exports


def test_scoped_staff_cannot_lift_or_change_their_limit(scoped_client, world):
    url = f"/admin/members/{world.scoped.id}/scope"
    assert scoped_client.post(url, data={"branch": ""}).status_code == 403


def test_service_level_scope(app, world):
    with app.app_context():
        scoped = db.session.get(User, world.scoped.id)
        scope = services.staff_branch_id(scoped)
        rows = list(services.member_rows(services.effective_branch(scope, world.branch_b.id)))
        assert {row[5] for row in rows} == {"软件园联合工会"}
