"""Roster CSV through the console: upload, preview with per-row errors, confirm,
re-import, encodings, 10,000 rows with 50 bad ones, and branch limits."""

from __future__ import annotations

import io
import re
import time

import sqlalchemy as sa
import sqlalchemy.orm as so

from memberplatform.audit.models import AuditEntry
from memberplatform.auth.models import Enterprise, User
from memberplatform.extensions import db
from tests.admin.conftest import login

HEADER = "姓名,手机号,会员号,企业,基层工会\n"
ROSTER = (
    HEADER + "王五,13811110001,ZGC30001,科学城软件有限公司,软件园联合工会\n"
    "赵六,13811110002,ZGC30002,科学城软件有限公司,软件园联合工会\n"
    "重号,13811110002,ZGC30003,,软件园联合工会\n"  # duplicate phone
    "坏号,13811110004,!!,,软件园联合工会\n"  # bad member number
    "无会,13811110005,ZGC30005,,不存在的工会\n"  # unknown branch
)


def upload(client, data: bytes, name: str = "roster.csv", **headers):
    return client.post(
        "/admin/roster",
        data={"file": (io.BytesIO(data), name)},
        content_type="multipart/form-data",
        headers=headers,
    )


def preview_url(response) -> str:
    location = response.headers.get("Location") or response.headers.get("HX-Redirect")
    assert location and re.match(r"^/admin/roster/[0-9a-f]{64}$", location), location
    return location


def confirm(client, url: str, **headers):
    return client.post(
        "/admin/roster/confirm", data={"sha": url.rsplit("/", 1)[1]}, headers=headers
    )


def members(app) -> dict[str, User]:
    with app.app_context():
        return {
            u.member_no: u
            for u in db.session.scalars(
                sa.select(User)
                .options(so.selectinload(User.role_rows))
                .where(User.member_no.like("ZGC3%"))
            )
        }


def test_preview_confirm_and_reimport(app, world, tmp_path):
    client = login(app, world.staff)
    assert client.get("/admin/roster").status_code == 200
    response = upload(client, ROSTER.encode("gbk"))
    assert response.status_code == 303
    url = preview_url(response)
    page = client.get(url).get_data(as_text=True)
    assert 'data-testid="rows-create">2<' in page and 'data-testid="rows-bad">3<' in page
    assert "与第 3 行手机号重复" in page
    assert "会员号应为 4–32 位字母或数字" in page
    assert "未知的基层工会“不存在的工会”" in page
    assert members(app) == {}  # the preview writes nothing
    stored = list((tmp_path / "uploads" / "roster").glob("*.csv"))
    assert len(stored) == 1 and stored[0].name == url.rsplit("/", 1)[1] + ".csv"

    done = confirm(client, url)
    assert done.status_code == 303 and done.headers["Location"] == "/admin/members"
    assert "名册已导入：新增 2 人，更新 0 人，跳过 3 行" in client.get("/admin/members").get_data(
        as_text=True
    )
    imported = members(app)
    assert set(imported) == {"ZGC30001", "ZGC30002"}
    assert imported["ZGC30001"].password_hash is None and imported["ZGC30001"].roles == {"member"}
    assert not list((tmp_path / "uploads" / "roster").glob("*.csv"))  # removed after confirm
    assert confirm(client, url).status_code == 404  # the upload is gone

    # re-import (UTF-8 with BOM) updates instead of duplicating
    again = ROSTER.replace("赵六", "赵六新").replace(
        "科学城软件有限公司,软件园联合工会\n赵", "新公司,软件园联合工会\n赵"
    )
    url2 = preview_url(upload(client, again.encode("utf-8-sig")))
    assert 'data-testid="rows-update">2<' in client.get(url2).get_data(as_text=True)
    assert confirm(client, url2).status_code == 303
    imported = members(app)
    assert len(imported) == 2 and imported["ZGC30002"].name == "赵六新"
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).where(Enterprise.name == "新公司")) == 1
        entries = db.session.scalars(
            sa.select(AuditEntry).where(AuditEntry.action == "roster.import")
        ).all()
        assert [e.changes["created"] for e in entries] == [2, 0]
        assert [e.changes["updated"] for e in entries] == [0, 2]
        assert all(e.actor_id == world.staff.id for e in entries)


def test_plain_utf8_and_english_headers(app, world):
    client = login(app, world.admin)
    text = "name,phone,member_no,enterprise,branch\n孙七,13811110007,ZGC30007,,\n"
    url = preview_url(upload(client, text.encode("utf-8")))
    assert confirm(client, url).status_code == 303
    assert members(app)["ZGC30007"].branch_id is None


def test_bad_files_are_refused_next_to_the_field(app, world, hx):
    client = login(app, world.staff)
    cases = [
        (b"", "文件是空的"),
        (b"foo,bar\n1,2\n", "第一行必须是列名"),
        (b"\x89PNG\r\n\x1a\n\xff\xfe\xfa" * 10, "不是 UTF-8 或 GBK 编码的 CSV"),
    ]
    for data, message in cases:
        response = upload(client, data, **hx)
        text = response.get_data(as_text=True)
        assert response.status_code == 422, text
        assert message in text and "<html" not in text
    assert client.post("/admin/roster", data={}).status_code == 422


def test_no_importable_row(app, world):
    client = login(app, world.staff)
    url = preview_url(upload(client, (HEADER + "坏,1,2,,\n").encode()))
    assert "没有可导入的行" in client.get(url).get_data(as_text=True)
    response = confirm(client, url)
    assert response.status_code == 422 and "没有可导入的行" in response.get_data(as_text=True)


def test_unknown_or_malformed_upload_ids(app, world):
    client = login(app, world.staff)
    assert client.get("/admin/roster/" + "0" * 64).status_code == 404
    assert client.get("/admin/roster/..%2F..%2Fsecret").status_code == 404
    assert client.post("/admin/roster/confirm", data={"sha": "../../etc/passwd"}).status_code == 400


def test_scoped_staff_import_their_branch_only(app, world):
    client = login(app, world.scoped)
    text = (
        HEADER + "本会,13811110011,ZGC30011,,\n"  # no branch: theirs
        "本会二,13811110012,ZGC30012,,软件园联合工会\n"
        "外会,13811110013,ZGC30013,,科学城第一基层工会\n"  # another branch
        f"改外,{world.member_b.phone},ZGC10002,,软件园联合工会\n"  # member of branch B
    )
    url = preview_url(upload(client, text.encode()))
    page = client.get(url).get_data(as_text=True)
    assert page.count("只能导入本基层工会的会员") == 2
    assert confirm(client, url).status_code == 303
    imported = members(app)
    assert set(imported) == {"ZGC30011", "ZGC30012"}
    assert {u.branch_id for u in imported.values()} == {world.branch_a.id}
    with app.app_context():
        assert db.session.get(User, world.member_b.id).branch_id == world.branch_b.id


def test_ten_thousand_rows_with_fifty_bad(app, world):
    rows = [HEADER]
    for i in range(10_000):
        phone = f"1370{i:07d}"
        number = f"BIG{i:05d}"
        if i % 200 == 7:  # 50 bad rows: a broken phone number
            phone = "12345"
        rows.append(f"会员{i},{phone},{number},企业{i % 40},软件园联合工会\n")
    data = "".join(rows).encode("gbk")
    client = login(app, world.admin)
    started = time.perf_counter()
    url = preview_url(upload(client, data))
    page = client.get(url).get_data(as_text=True)
    assert 'data-testid="rows-create">9950<' in page and 'data-testid="rows-bad">50<' in page
    assert page.count("请输入 11 位手机号") == 50
    assert confirm(client, url).status_code == 303
    with app.app_context():
        count = db.session.scalar(
            sa.select(sa.func.count(User.id)).where(User.member_no.like("BIG%"))
        )
        assert count == 9950
    # re-import of the same file: all good rows become updates, nothing is duplicated
    url = preview_url(upload(client, data))
    assert 'data-testid="rows-update">9950<' in client.get(url).get_data(as_text=True)
    assert confirm(client, url).status_code == 303
    with app.app_context():
        assert (
            db.session.scalar(sa.select(sa.func.count(User.id)).where(User.member_no.like("BIG%")))
            == 9950
        )
    assert time.perf_counter() - started < 60
