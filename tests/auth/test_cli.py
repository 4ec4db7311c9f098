"""Account commands: create-user, import-roster, seed-demo, backup, check-integrity."""

from __future__ import annotations

import sqlite3

import sqlalchemy as sa

from memberplatform.auth.models import User
from memberplatform.extensions import db

ROSTER = (
    "姓名,手机号,会员号,企业,基层工会\n"
    "张三明,13812345678,ZGC20001,科学城软件有限公司,软件园联合工会\n"
    "李四,13812345679,ZGC20002,科学城软件有限公司,软件园联合工会\n"
    "坏行,12345,ZGC20003,,\n"
)


def test_create_user_command(app, runner):
    result = runner.invoke(
        args=[
            "create-user",
            "13700001111",
            "王干事",
            "--role",
            "staff",
            "--password",
            "Staff-Pass-2020",
        ]
    )
    assert result.exit_code == 0, result.output
    with app.app_context():
        user = db.session.scalar(sa.select(User).where(User.phone == "13700001111"))
        assert user.roles == {"staff"}


def test_import_roster_reports_bad_rows_and_updates_on_reimport(app, runner, tmp_path):
    path = tmp_path / "roster.csv"
    path.write_bytes(ROSTER.encode("gbk"))
    result = runner.invoke(args=["import-roster", str(path)])
    assert result.exit_code == 0, result.output
    assert "created 2, updated 0, skipped 1" in result.output
    assert "line 4" in result.output
    path.write_bytes(ROSTER.replace("李四", "李四新").encode("utf-8-sig"))
    again = runner.invoke(args=["import-roster", str(path)])
    assert "created 0, updated 2, skipped 1" in again.output
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(User.id))) == 2
        renamed = db.session.scalar(sa.select(User).where(User.member_no == "ZGC20002"))
        assert renamed.name == "李四新" and renamed.password_hash is None


def test_import_roster_applies_a_large_roster_in_bulk(app, runner, tmp_path):
    """The command applies rows as the console does (``admin.services.apply_rows``): a
    few statements per 1,000 rows, not several per member (the returning workers'
    roster has thousands), with the enterprises and the branch created once."""
    from memberplatform.auth.models import Enterprise, UnionBranch
    from tests.querycount import count_queries

    lines = ["姓名,手机号,会员号,企业,基层工会"]
    lines += [f"会员{n},1391111{n:04d},BULK{n:04d},企业{n % 3},科学城联合工会" for n in range(600)]
    path = tmp_path / "roster.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with app.app_context():
        engine = db.engine
    with count_queries(engine) as statements:
        result = runner.invoke(args=["import-roster", str(path)])
    assert result.exit_code == 0, result.output
    assert "created 600, updated 0, skipped 0" in result.output
    assert len(statements) < 40, len(statements)
    again = runner.invoke(args=["import-roster", str(path)])
    assert "created 0, updated 600, skipped 0" in again.output
    with app.app_context():
        members = db.session.scalars(sa.select(User).where(User.member_no.like("BULK%"))).all()
        assert len(members) == 600 and all(user.roles == {"member"} for user in members)
        assert db.session.scalar(sa.select(sa.func.count(Enterprise.id))) == 3
        assert db.session.scalar(sa.select(sa.func.count(UnionBranch.id))) == 1


def test_import_roster_wrong_header(runner, tmp_path):
    path = tmp_path / "roster.csv"
    path.write_text("foo,bar\n1,2\n")
    result = runner.invoke(args=["import-roster", str(path)])
    assert result.exit_code != 0
    assert "第一行必须是列名" in result.output


def test_seed_demo_is_idempotent(app, runner):
    first = runner.invoke(args=["seed-demo", "--password", "Demo-Pass-2020"])
    assert first.exit_code == 0, first.output
    with app.app_context():
        count = db.session.scalar(sa.select(sa.func.count(User.id)))
    second = runner.invoke(args=["seed-demo", "--password", "Demo-Pass-2020"])
    assert second.exit_code == 0, second.output
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(User.id))) == count
        admin = db.session.scalar(sa.select(User).where(User.phone == "13600000000"))
        assert "admin" in admin.roles
    client = app.test_client()
    ok = client.post("/auth/login", data={"phone": "13800000001", "password": "Demo-Pass-2020"})
    assert ok.status_code == 303


def test_seed_demo_generates_a_password(runner):
    result = runner.invoke(args=["seed-demo"])
    assert result.exit_code == 0
    assert "(generated)" in result.output


def test_check_integrity_passes_on_demo_data(runner):
    runner.invoke(args=["seed-demo", "--password", "Demo-Pass-2020"])
    result = runner.invoke(args=["check-integrity"])
    assert result.exit_code == 0, result.output
    assert "OK" in result.output


def test_backup(app, runner, tmp_path, engine_name):
    runner.invoke(args=["seed-demo", "--password", "Demo-Pass-2020"])
    result = runner.invoke(args=["backup", "--dest", str(tmp_path / "b")])
    if engine_name == "postgresql":
        assert result.exit_code != 0 and "pg_dump" in result.output
        return
    assert result.exit_code == 0, result.output
    backup_file = result.output.strip().splitlines()[-1]
    with sqlite3.connect(backup_file) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("SELECT count(*) FROM users").fetchone()[0] >= 55
