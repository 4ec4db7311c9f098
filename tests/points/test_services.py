"""The points ledger: operations, idempotency, expiry order, concurrency — on both engines."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from memberplatform.extensions import db
from memberplatform.points import services
from memberplatform.points.models import LedgerEntry, PointsLot
from memberplatform.points.services import InsufficientPoints, InvalidAmount
from tests.concurrency import integrity_problems, run_together


@pytest.fixture
def member(make_user):
    return make_user()


def test_earn_and_spend(ctx, member):
    services.earn(member, 50, reason="grant", idempotency_key="e1")
    entry = services.spend(member, 20, reason="donation", idempotency_key="s1")
    ctx.commit()
    assert entry.amount == -20 and entry.balance_after == 30 and entry.kind == "spend"
    assert services.balance_of(member) == 30


def test_spend_more_than_balance_is_refused_and_changes_nothing(ctx, member):
    services.earn(member, 5, reason="grant", idempotency_key="e1")
    ctx.commit()
    with pytest.raises(InsufficientPoints) as error:
        services.spend(member, 6, reason="donation", idempotency_key="s1")
    ctx.rollback()
    assert error.value.balance == 5 and error.value.needed == 6
    assert services.balance_of(member) == 5
    assert ctx.scalar(sa.select(sa.func.count(LedgerEntry.id))) == 1


def test_spending_without_an_account_is_refused_and_opens_none(ctx, member):
    """A member who never earned has no account: a debit is refused as for a zero
    balance, and no empty account is written for it."""
    from memberplatform.points.models import PointsAccount

    with pytest.raises(InsufficientPoints) as error:
        services.spend(member, 1, reason="donation", idempotency_key="s1")
    assert error.value.balance == 0 and error.value.needed == 1
    assert ctx.scalar(sa.select(sa.func.count(PointsAccount.id))) == 0
    ctx.rollback()
    assert services.balance_of(member) == 0


@pytest.mark.parametrize("amount", [0, -1, 1.5, "10", True, 10**9])
def test_bad_amounts(ctx, member, amount):
    with pytest.raises(InvalidAmount):
        services.earn(member, amount, reason="grant", idempotency_key="x")


def test_same_key_twice_writes_one_entry(ctx, member):
    first = services.earn(member, 10, reason="grant", idempotency_key="same")
    second = services.earn(member, 10, reason="grant", idempotency_key="same")
    ctx.commit()
    assert first.id == second.id
    assert services.balance_of(member) == 10
    spent = services.spend(member, 3, reason="x", idempotency_key="spend-once")
    again = services.spend(member, 3, reason="x", idempotency_key="spend-once")
    ctx.commit()
    assert spent.id == again.id and services.balance_of(member) == 7


def test_spending_uses_soonest_expiring_points_first(ctx, member):
    now = datetime.now(UTC)
    services.earn(
        member, 10, reason="grant", idempotency_key="late", expires_at=now + timedelta(days=300)
    )
    services.earn(
        member, 10, reason="grant", idempotency_key="soon", expires_at=now + timedelta(days=10)
    )
    services.spend(member, 15, reason="x", idempotency_key="s")
    ctx.commit()
    lots = {lot.expires_at.date(): lot.remaining for lot in ctx.scalars(sa.select(PointsLot))}
    assert lots[(now + timedelta(days=10)).date()] == 0
    assert lots[(now + timedelta(days=300)).date()] == 5


def test_default_expiry_is_end_of_next_year_in_shanghai(app):
    with app.app_context():
        # 2020-03-01 local: expires at 2022-01-01 00:00 Asia/Shanghai = 2021-12-31 16:00 UTC
        earned = datetime(2020, 3, 1, 4, 0, tzinfo=UTC)
        assert services.default_expiry(earned) == datetime(2021, 12, 31, 16, 0, tzinfo=UTC)
        # 2020-12-31 17:00 UTC is already 2021-01-01 in Shanghai
        assert services.default_expiry(datetime(2020, 12, 31, 17, tzinfo=UTC)).year == 2022


def test_expiry_run_is_idempotent(ctx, member):
    now = datetime.now(UTC)
    services.earn(
        member, 10, reason="grant", idempotency_key="old", expires_at=now - timedelta(days=1)
    )
    services.earn(
        member, 7, reason="grant", idempotency_key="new", expires_at=now + timedelta(days=100)
    )
    services.spend(member, 4, reason="x", idempotency_key="s")  # takes from the old lot
    ctx.commit()
    assert services.users_with_due_lots(now) == [member.id]
    assert services.expire_account(member.id, now) == 6
    ctx.commit()
    assert services.expire_account(member.id, now) == 0
    ctx.commit()
    assert services.balance_of(member) == 7
    expired = ctx.scalars(sa.select(LedgerEntry).where(LedgerEntry.kind == "expire")).all()
    assert [e.amount for e in expired] == [-6]


def test_refund_restores_points_and_their_expiry_once(ctx, member):
    soon = datetime.now(UTC) + timedelta(days=20)
    services.earn(member, 10, reason="grant", idempotency_key="e", expires_at=soon)
    services.spend(member, 8, reason="donation", idempotency_key="d1")
    ctx.commit()
    refund = services.refund("d1", reason="refund", idempotency_key="r1")
    again = services.refund("d1", reason="refund", idempotency_key="r1")
    ctx.commit()
    assert refund.id == again.id and refund.amount == 8 and refund.kind == "refund"
    assert services.balance_of(member) == 10
    assert services.expiring_before(member, soon + timedelta(days=1)) == [(soon, 10)]


def test_adjust_needs_a_reason_and_is_audited(ctx, member, make_user):
    from memberplatform.audit.models import AuditEntry
    from memberplatform.core.errors import DomainError

    staff = make_user(roles=("staff",))
    with pytest.raises(DomainError):
        services.adjust(member, 5, actor=staff, note=" ", idempotency_key="a0")
    services.adjust(member, 5, actor=staff, note="missed check-in", idempotency_key="a1")
    services.adjust(member, -2, actor=staff, note="double grant", idempotency_key="a2")
    ctx.commit()
    assert services.balance_of(member) == 3
    actions = ctx.scalars(sa.select(AuditEntry.action)).all()
    assert actions == ["points.adjust", "points.adjust"]


def test_fifty_threads_spend_from_ten_points(app, member):
    with app.app_context():
        services.earn(member, 10, reason="grant", idempotency_key="seed")
        db.session.commit()
    results = run_together(
        app, 50, lambda i: services.spend(member.id, 1, reason="x", idempotency_key=f"t{i}")
    )
    unexpected = [
        r for r in results if isinstance(r, Exception) and not isinstance(r, InsufficientPoints)
    ]
    assert unexpected == []
    assert sum(isinstance(r, LedgerEntry) for r in results) == 10
    assert sum(isinstance(r, InsufficientPoints) for r in results) == 40
    with app.app_context():
        assert services.balance_of(member) == 0
    assert integrity_problems(app) == []


def test_same_key_from_many_threads_spends_once(app, member):
    with app.app_context():
        services.earn(member, 10, reason="grant", idempotency_key="seed")
        db.session.commit()
    results = run_together(
        app, 20, lambda i: services.spend(member.id, 3, reason="x", idempotency_key="click")
    )
    assert all(isinstance(r, LedgerEntry) for r in results), results
    assert len({r.id for r in results}) == 1
    with app.app_context():
        assert services.balance_of(member) == 7
    assert integrity_problems(app) == []


def test_activation_bonus_once(app, client, make_user):
    make_user(password=None, member_no="ZGC30001", phone="13822223333")
    data = {
        "member_no": "ZGC30001",
        "phone": "13822223333",
        "password": "Return-To-Work-1",
        "confirm": "Return-To-Work-1",
    }
    assert client.post("/auth/activate", data=data).status_code == 303
    with app.app_context():
        from memberplatform.auth.models import User

        user = db.session.scalar(sa.select(User).where(User.phone == "13822223333"))
        assert services.balance_of(user) == 100
    assert integrity_problems(app) == []
