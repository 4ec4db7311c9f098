"""Console operations without HTTP: roles, last admin, accounts, reset links, structure,
and the concurrent rushes — on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from memberplatform.admin import services
from memberplatform.admin.models import PasswordReset, StaffScope
from memberplatform.audit.models import AuditEntry
from memberplatform.auth.models import UnionBranch, User
from memberplatform.auth.services import authenticate
from memberplatform.core.errors import DomainError, Forbidden, NotFound
from memberplatform.db import utcnow
from memberplatform.extensions import db
from tests.admin.conftest import fresh
from tests.concurrency import integrity_problems, run_together

NEW_PASSWORD = "Fresh-Start-2020"


def get(user) -> User:
    return db.session.get(User, user.id)


def actions(object_id=None) -> list[str]:
    query = sa.select(AuditEntry.action).order_by(AuditEntry.id)
    if object_id is not None:
        query = query.where(AuditEntry.object_id == str(object_id))
    return list(db.session.scalars(query))


# --- scope ------------------------------------------------------------------------------


def test_scope_of_staff_and_admin(ctx, world):
    assert services.staff_branch_id(get(world.scoped)) == world.branch_a.id
    assert services.staff_branch_id(get(world.staff)) is None
    assert services.staff_branch_id(get(world.admin)) is None
    assert services.load_member(world.member_a.id, world.branch_a.id).id == world.member_a.id
    with pytest.raises(NotFound):
        services.load_member(world.member_b.id, world.branch_a.id)
    with pytest.raises(NotFound):
        services.load_member(999_999, None)


def test_staff_manage_members_only(ctx, world):
    staff = get(world.staff)
    assert services.can_manage(staff, get(world.member_a))
    assert not services.can_manage(staff, get(world.scoped))
    assert not services.can_manage(staff, get(world.admin))
    assert services.can_manage(get(world.admin), get(world.staff))


# --- roles and the last admin -------------------------------------------------------------


def test_change_roles_is_audited_and_admin_only(ctx, world):
    admin = get(world.admin)
    assert services.change_roles(admin, get(world.member_a), ["member", "lawyer"])
    ctx.commit()
    assert fresh(world.member_a.id).roles == {"member", "lawyer"}
    entry = ctx.scalar(sa.select(AuditEntry).where(AuditEntry.action == "user.roles"))
    assert entry.actor_id == admin.id
    assert entry.changes == {"roles": [["member"], ["lawyer", "member"]]}
    assert not services.change_roles(admin, get(world.member_a), ["member", "lawyer"])
    with pytest.raises(Forbidden):
        services.change_roles(get(world.staff), get(world.member_a), ["admin"])
    with pytest.raises(DomainError):
        services.change_roles(admin, get(world.member_a), [])
    with pytest.raises(DomainError):
        services.change_roles(admin, get(world.member_a), ["king"])


def test_last_admin_keeps_the_admin_role(ctx, world):
    admin = get(world.admin)
    with pytest.raises(DomainError, match="最后一位在用的管理员"):
        services.change_roles(admin, admin, ["staff"])
    ctx.rollback()
    services.change_roles(admin, get(world.staff), ["staff", "admin"])
    ctx.commit()
    services.change_roles(get(world.admin), get(world.admin), ["staff"])  # now allowed
    ctx.commit()
    assert fresh(world.admin.id).roles == {"staff"}


def test_removing_staff_role_lifts_the_branch_limit(ctx, world):
    services.change_roles(get(world.admin), get(world.scoped), ["member"])
    ctx.commit()
    assert ctx.get(StaffScope, world.scoped.id) is None


def test_disable_refuses_self_and_last_admin(ctx, world, make_user):
    admin = get(world.admin)
    with pytest.raises(DomainError, match="不能停用自己的账号"):
        services.disable_account(admin, admin)
    ctx.rollback()
    other = make_user(roles=("admin",))
    services.disable_account(get(other), get(world.admin))  # two admins: fine
    ctx.commit()
    # the remaining active admin cannot be disabled by a disabled one (nor by itself)
    with pytest.raises(DomainError):
        services.disable_account(get(world.admin), get(other))
    ctx.rollback()
    assert fresh(other.id).status == "active"


def test_disable_ends_sessions_and_enable_restores(ctx, world):
    staff = get(world.staff)
    token = get(world.member_a).session_token
    services.disable_account(staff, get(world.member_a))
    ctx.commit()
    user = fresh(world.member_a.id)
    assert user.status == "disabled" and user.session_token != token
    with pytest.raises(DomainError, match="该账号已停用"):
        services.disable_account(staff, user)
    ctx.rollback()
    services.enable_account(staff, fresh(world.member_a.id))
    ctx.commit()
    assert fresh(world.member_a.id).status == "active"
    with pytest.raises(DomainError):
        services.enable_account(staff, fresh(world.member_a.id))
    ctx.rollback()
    assert actions(world.member_a.id) == ["user.disable", "user.enable"]


def test_staff_cannot_touch_staff_or_admin_accounts(ctx, world):
    staff = get(world.staff)
    for target in (world.admin, world.scoped):
        with pytest.raises(Forbidden):
            services.disable_account(staff, get(target))
        with pytest.raises(Forbidden):
            services.issue_password_reset(staff, get(target))
        with pytest.raises(Forbidden):
            services.change_tags(staff, get(target), ["x"])


def test_tags(ctx, world):
    assert services.parse_tags("returned-to-work， 骨干 ,returned-to-work") == [
        "returned-to-work",
        "骨干",
    ]
    with pytest.raises(DomainError):
        services.parse_tags("has space")
    with pytest.raises(DomainError):
        services.parse_tags(",".join(f"t{i}" for i in range(30)))
    assert services.change_tags(get(world.staff), get(world.member_a), ["returned-to-work"])
    ctx.commit()
    assert fresh(world.member_a.id).tags == {"returned-to-work"}
    assert actions(world.member_a.id) == ["user.tags"]


def test_approve_pending_registration(ctx, world, make_user):
    pending = make_user(status="pending")
    services.approve_account(get(world.staff), get(pending))
    ctx.commit()
    assert fresh(pending.id).status == "active"
    with pytest.raises(DomainError):
        services.approve_account(get(world.staff), fresh(pending.id))
    ctx.rollback()
    assert actions(pending.id) == ["user.approve"]


def test_staff_scope_admin_only(ctx, world):
    admin = get(world.admin)
    services.set_staff_scope(admin, get(world.staff), ctx.get(UnionBranch, world.branch_b.id))
    ctx.commit()
    assert ctx.get(StaffScope, world.staff.id).branch_id == world.branch_b.id
    services.set_staff_scope(admin, get(world.staff), None)
    ctx.commit()
    assert ctx.get(StaffScope, world.staff.id) is None
    with pytest.raises(DomainError):
        services.set_staff_scope(admin, get(world.member_a), None)
    with pytest.raises(Forbidden):
        services.set_staff_scope(get(world.staff), get(world.scoped), None)
    assert actions(world.staff.id) == ["user.scope", "user.scope"]


# --- password reset links -----------------------------------------------------------------


def test_reset_link_works_once(ctx, world):
    issued = services.issue_password_reset(get(world.staff), get(world.member_a))
    ctx.commit()
    stored = ctx.scalar(sa.select(PasswordReset))
    assert stored.token_hash != issued.token and len(stored.token_hash) == 64
    with pytest.raises(DomainError):
        services.reset_password(issued.token, "short")
    ctx.rollback()
    services.reset_password(issued.token, NEW_PASSWORD)
    ctx.commit()
    assert authenticate(world.member_a.phone, NEW_PASSWORD) is not None
    with pytest.raises(NotFound):
        services.reset_password(issued.token, "Another-Pass-2021")
    ctx.rollback()
    assert actions(world.member_a.id) == ["user.password_reset", "user.password_reset_used"]


def test_new_link_revokes_old_and_expired_links_fail(ctx, world):
    first = services.issue_password_reset(get(world.staff), get(world.member_a))
    second = services.issue_password_reset(get(world.staff), get(world.member_a))
    ctx.commit()
    with pytest.raises(NotFound):
        services.open_reset(first.token)
    services.open_reset(second.token)
    ctx.execute(
        sa.update(PasswordReset).values(
            created_at=utcnow() - timedelta(days=5), expires_at=utcnow() - timedelta(seconds=1)
        )
    )
    ctx.commit()
    with pytest.raises(NotFound):
        services.reset_password(second.token, NEW_PASSWORD)
    with pytest.raises(NotFound):
        services.open_reset("not-a-token")


def test_reset_link_activates_a_roster_member(ctx, world, make_user):
    roster = make_user(password=None, member_no="ZGC10009")
    issued = services.issue_password_reset(get(world.staff), get(roster))
    ctx.commit()
    services.reset_password(issued.token, NEW_PASSWORD)
    ctx.commit()
    assert fresh(roster.id).activated_at is not None


def test_disabled_account_gets_no_link(ctx, world):
    services.disable_account(get(world.staff), get(world.member_a))
    ctx.commit()
    with pytest.raises(DomainError):
        services.issue_password_reset(get(world.staff), fresh(world.member_a.id))


# --- union structure -------------------------------------------------------------------


def test_branch_create_rename_unique(ctx, world):
    admin = get(world.admin)
    branch = services.create_branch(admin, "  数字医疗  基层工会 ")
    ctx.commit()
    assert branch.name == "数字医疗 基层工会"
    with pytest.raises(DomainError, match="该名称已被使用"):
        services.create_branch(admin, "软件园联合工会")
    ctx.rollback()
    with pytest.raises(DomainError):
        services.rename_branch(admin, ctx.get(UnionBranch, branch.id), "科学城第一基层工会")
    ctx.rollback()
    services.rename_branch(admin, ctx.get(UnionBranch, branch.id), "数字医疗工会")
    ctx.commit()
    with pytest.raises(DomainError):
        services.create_branch(admin, "")
    with pytest.raises(Forbidden):
        services.create_branch(get(world.staff), "别的工会")
    assert actions(branch.id) == ["branch.create", "branch.rename"]
    enterprise = services.create_enterprise(admin, "新企业")
    services.rename_enterprise(admin, enterprise, "新企业有限公司")
    ctx.commit()
    assert actions(enterprise.id)[-2:] == ["enterprise.create", "enterprise.rename"]


# --- figures -------------------------------------------------------------------------------


def test_member_figures_and_trend(ctx, world, make_user):
    make_user(status="pending")
    make_user(password=None)
    figures = services.member_figures(None)
    assert figures == {
        "members": 4,
        "active": 3,
        "activated": 3,
        "pending": 1,
        "disabled": 0,
    }
    assert services.member_figures(world.branch_a.id)["members"] == 1
    trend = services.activation_trend(None)
    assert len(trend) == 30 and trend[-1][1] == 3 and sum(n for _, n in trend) == 3
    assert services.activation_trend(world.branch_b.id)[-1][1] == 1


# --- rushes --------------------------------------------------------------------------------


def test_rush_two_admins_demote_each_other(app, world, make_user):
    """Both admins remove each other's admin role at once: exactly one stays admin."""
    other = make_user(roles=("admin",))
    pair = [(world.admin.id, other.id), (other.id, world.admin.id)]

    def demote(i):
        actor_id, target_id = pair[i % 2]
        return services.change_roles(get_id(actor_id), get_id(target_id), ["staff"])

    results = run_together(app, 2, demote)
    # the loser is refused: as the last admin, or (if it ran second) as no admin any more
    assert sum(r is True for r in results) == 1, results
    assert sum(isinstance(r, DomainError) for r in results) == 1, results
    with app.app_context():
        admins = db.session.scalar(sa.text("SELECT count(*) FROM user_roles WHERE role = 'admin'"))
        assert admins == 1
    assert integrity_problems(app) == []


def test_rush_two_admins_disable_each_other(app, world, make_user):
    other = make_user(roles=("admin",))
    pair = [(world.admin.id, other.id), (other.id, world.admin.id)]

    def disable(i):
        actor_id, target_id = pair[i % 2]
        return services.disable_account(get_id(actor_id), get_id(target_id))

    results = run_together(app, 2, disable)
    assert sum(isinstance(r, DomainError) for r in results) == 1, results
    assert not any(isinstance(r, Exception) and not isinstance(r, DomainError) for r in results)
    assert integrity_problems(app) == []


def test_rush_one_reset_link_used_by_many(app, world):
    with app.app_context():
        issued = services.issue_password_reset(get(world.staff), get(world.member_a))
        db.session.commit()
    results = run_together(
        app, 20, lambda i: services.reset_password(issued.token, f"Rush-Password-{i:03d}")
    )
    winners = [i for i, r in enumerate(results) if isinstance(r, User)]
    assert len(winners) == 1, results
    assert all(isinstance(r, NotFound) for r in results if not isinstance(r, User)), results
    with app.app_context():
        assert authenticate(world.member_a.phone, f"Rush-Password-{winners[0]:03d}") is not None
    assert integrity_problems(app) == []


def test_rush_same_branch_created_twice(app, world):
    results = run_together(
        app, 10, lambda i: services.create_branch(get_id(world.admin.id), "新建工会").id
    )
    assert sum(isinstance(r, int) for r in results) == 1, results
    assert sum(isinstance(r, DomainError) for r in results) == 9, results


def get_id(user_id: int) -> User:
    return db.session.get(User, user_id)


def test_rush_same_roster_confirmed_twice(app, world):
    """Two staff confirm the same upload at once: imports queue, nobody is duplicated."""
    text = "姓名,手机号,会员号,企业,基层工会\n" + "".join(
        f"会员{i},1391111{i:04d},RUSH{i:04d},,软件园联合工会\n" for i in range(2000)
    )
    with app.app_context():
        sha = services.store_roster(text.encode())
    results = run_together(app, 4, lambda i: services.import_roster(get_id(world.staff.id), sha))
    assert all(isinstance(r, dict) for r in results), results
    assert sorted(r["created"] for r in results) == [0, 0, 0, 2000]
    with app.app_context():
        count = db.session.scalar(
            sa.select(sa.func.count(User.id)).where(User.member_no.like("RUSH%"))
        )
        assert count == 2000
    assert integrity_problems(app) == []
