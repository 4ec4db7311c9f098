"""Donation services: donate, bad input, idempotency, the rush, cancellation and refunds,
editing rules, fulfilment — on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
import sqlalchemy as sa

from memberplatform.auth.models import User, UserRole
from memberplatform.core.errors import DomainError
from memberplatform.db import utcnow
from memberplatform.donations import services
from memberplatform.donations.models import Campaign, Donation
from memberplatform.extensions import db
from memberplatform.notifications.models import Notification
from memberplatform.points import services as points
from memberplatform.points.models import LedgerEntry
from memberplatform.points.services import InsufficientPoints
from tests.concurrency import integrity_problems, run_together
from tests.donations.conftest import campaign_values, key


def _campaign(campaign_id: int) -> Campaign:
    return db.session.get(Campaign, campaign_id, populate_existing=True)


def test_donate_debits_ledger_and_adds_units(app, member, make_campaign):
    cid = make_campaign()
    with app.app_context():
        result = services.donate(member, cid, 7, idempotency_key=key())
        db.session.commit()
        donation = result.donation
        assert result.created and donation.units == 7 and donation.points == 70
        assert donation.wall_name == "张*明"
        assert donation.certificate_no.startswith("JZ")
        campaign = _campaign(cid)
        assert (campaign.pledged_units, campaign.donor_count, campaign.donation_count) == (7, 1, 1)
        assert points.balance_of(member) == 930
        entry = db.session.get(LedgerEntry, donation.ledger_entry_id)
        assert (entry.amount, entry.reason, entry.ref_type, entry.ref_id) == (
            -70,
            "donation",
            "donation",
            donation.id,
        )
        # a second donation by the same member is one more donation, not one more donor
        services.donate(member, cid, 3, idempotency_key=key(), show_on_wall=False)
        db.session.commit()
        campaign = _campaign(cid)
        assert (campaign.pledged_units, campaign.donor_count, campaign.donation_count) == (10, 1, 2)
        assert services.recent_donations(cid)[0].wall_name is None
    assert integrity_problems(app) == []


def test_idempotent_double_submit(app, member, make_campaign):
    cid = make_campaign()
    form_key = key()
    with app.app_context():
        first = services.donate(member, cid, 5, idempotency_key=form_key)
        db.session.commit()
        again = services.donate(member, cid, 5, idempotency_key=form_key)
        db.session.commit()
        assert again.donation.id == first.donation.id and not again.created
        assert points.balance_of(member) == 950
        assert _campaign(cid).pledged_units == 5
    # the same form sent twice at the same moment also counts once
    second_key = key()
    results = run_together(
        app, 8, lambda i: services.donate(member.id, cid, 5, idempotency_key=second_key)
    )
    assert all(isinstance(r, services.DonationResult) for r in results), results
    assert sum(r.created for r in results) == 1
    with app.app_context():
        assert points.balance_of(member) == 900
        assert _campaign(cid).pledged_units == 10
    assert integrity_problems(app) == []


def test_another_members_form_key_is_refused(app, member, make_user, give_points, make_campaign):
    cid = make_campaign()
    other = make_user()
    give_points(other, 100)
    form_key = key()
    with app.app_context():
        services.donate(member, cid, 1, idempotency_key=form_key)
        db.session.commit()
        with pytest.raises(DomainError):
            services.donate(other, cid, 1, idempotency_key=form_key)
        db.session.rollback()
        assert points.balance_of(other) == 100


@pytest.mark.parametrize(
    ("units", "message"),
    [
        (0, "至少捐 1 份。"),
        (-3, "至少捐 1 份。"),
        ("5", "请输入整数数量。"),
        (None, "请输入整数数量。"),
        (2.5, "请输入整数数量。"),
        (True, "请输入整数数量。"),
        (21, "每次最多捐 20 份。"),
        (1, "每次至少捐 2 份。"),
    ],
)
def test_bad_units_change_nothing(app, member, make_campaign, units, message):
    cid = make_campaign(min_units=2, max_units=20)
    with app.app_context():
        with pytest.raises(DomainError) as error:
            services.donate(member, cid, units, idempotency_key=key())
        db.session.rollback()
        assert str(error.value) == message and error.value.field == "units"
        assert points.balance_of(member) == 1000
        assert _campaign(cid).pledged_units == 0
        assert db.session.scalar(sa.select(sa.func.count(Donation.id))) == 0


def test_more_than_remaining_is_refused_with_what_remains(app, member, make_campaign):
    cid = make_campaign(target_units=10)
    with app.app_context():
        services.donate(member, cid, 8, idempotency_key=key())
        db.session.commit()
        with pytest.raises(DomainError) as error:
            services.donate(member, cid, 3, idempotency_key=key())
        db.session.rollback()
        assert "仅剩 2 份" in str(error.value)
        services.donate(member, cid, 2, idempotency_key=key())
        db.session.commit()
        with pytest.raises(DomainError) as error:
            services.donate(member, cid, 1, idempotency_key=key())
        assert "已达成目标" in str(error.value)


def test_more_points_than_balance_is_refused_and_nothing_is_written(
    app, make_user, give_points, make_campaign
):
    poor = make_user()
    give_points(poor, 25)
    cid = make_campaign()
    with app.app_context():
        with pytest.raises(InsufficientPoints) as error:
            services.donate(poor, cid, 3, idempotency_key=key())
        # the service undid its own writes (savepoint): the transaction is still usable
        assert db.session.scalar(sa.select(sa.func.count(Donation.id))) == 0
        db.session.rollback()
        assert error.value.field == "units"
        assert points.balance_of(poor) == 25
        assert _campaign(cid).pledged_units == 0
    assert integrity_problems(app) == []


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("draft", "该活动尚未开始。"),
        ("upcoming", "该活动尚未开始。"),
        ("ended", "该活动已结束。"),
        ("closed", "该活动已截止。"),
        ("cancelled", "该活动已取消。"),
    ],
)
def test_campaign_not_taking_donations(app, member, staff, make_campaign, setup, message):
    now = utcnow()
    if setup == "draft":
        cid = make_campaign(status="draft")
    elif setup == "upcoming":
        cid = make_campaign(opens_at=now + timedelta(days=1), closes_at=now + timedelta(days=2))
    elif setup == "ended":
        cid = make_campaign()
    else:
        cid = make_campaign()
    with app.app_context():
        if setup == "closed":
            services.change_status(cid, "close", staff)
        if setup == "cancelled":
            services.cancel_campaign(cid, staff, "物资已由其他渠道解决")
        db.session.commit()
        later = now + timedelta(days=31) if setup == "ended" else None
        with pytest.raises(DomainError) as error:
            services.donate(member, cid, 1, idempotency_key=key(), now=later)
        db.session.rollback()
        assert str(error.value) == message
        assert points.balance_of(member) == 1000


def test_rush_200_threads_for_500_units(app, make_campaign):
    """200 members at once, 5 units each, 500 units left: exactly 100 get in."""
    cid = make_campaign(target_units=500)
    with app.app_context():
        first = db.session.scalar(sa.select(sa.func.coalesce(sa.func.max(User.id), 0)))
        db.session.execute(
            sa.insert(User),
            [{"phone": f"1370{i:07d}", "name": f"会员{i}"} for i in range(200)],
        )
        ids = list(db.session.scalars(sa.select(User.id).where(User.id > first).order_by(User.id)))
        db.session.execute(sa.insert(UserRole), [{"user_id": i, "role": "member"} for i in ids])
        for user_id in ids:
            points.earn(user_id, 100, reason="grant", idempotency_key=f"rush-grant:{user_id}")
        db.session.commit()
    assert len(ids) == 200

    results = run_together(
        app, 200, lambda i: services.donate(ids[i], cid, 5, idempotency_key=f"rush-{i:04d}")
    )
    unexpected = [r for r in results if isinstance(r, Exception) and not isinstance(r, DomainError)]
    assert unexpected == []
    winners = [ids[i] for i, r in enumerate(results) if isinstance(r, services.DonationResult)]
    assert len(winners) == 100
    with app.app_context():
        campaign = _campaign(cid)
        assert campaign.pledged_units == campaign.target_units == 500
        assert campaign.donor_count == campaign.donation_count == 100
        balances = dict(
            db.session.execute(
                sa.select(LedgerEntry.account_id, sa.func.sum(LedgerEntry.amount)).group_by(
                    LedgerEntry.account_id
                )
            ).all()
        )
        assert sorted(balances.values()).count(50) == 100
        assert sorted(balances.values()).count(100) == 100
        for user_id in winners[:10]:
            assert points.balance_of(user_id) == 50
        assert (
            db.session.scalar(
                sa.select(sa.func.count(LedgerEntry.id)).where(LedgerEntry.reason == "donation")
            )
            == 100
        )
    assert integrity_problems(app) == []


def _donors(app, make_user, give_points, cid, count=5):
    users = []
    for _ in range(count):
        user = make_user()
        give_points(user, 100)
        users.append(user)
    with app.app_context():
        for n, user in enumerate(users, start=1):
            services.donate(user, cid, n, idempotency_key=key())
        db.session.commit()
    return users


def test_cancellation_refunds_every_donor_once(app, staff, make_user, give_points, make_campaign):
    cid = make_campaign()
    users = _donors(app, make_user, give_points, cid)
    with app.app_context():
        with pytest.raises(DomainError):
            services.cancel_campaign(cid, staff, "  ")
        db.session.rollback()
        assert services.cancel_campaign(cid, staff, "医院已不再需要") == 5
        db.session.commit()
        assert services.cancel_campaign(cid, staff, "again") == 0  # a re-run refunds nobody twice
        db.session.commit()
        for user in users:
            assert points.balance_of(user) == 100
        refunds = db.session.scalars(
            sa.select(LedgerEntry).where(LedgerEntry.reason == "donation_refund")
        ).all()
        assert len(refunds) == 5 and all(e.kind == "refund" for e in refunds)
        assert (
            db.session.scalar(
                sa.select(sa.func.count(Notification.id)).where(
                    Notification.kind == "donations.refunded"
                )
            )
            == 5
        )
        assert _campaign(cid).status == "cancelled"
    assert integrity_problems(app) == []


def test_interrupted_refund_run_is_completed_once(
    app, staff, make_user, give_points, make_campaign, monkeypatch
):
    cid = make_campaign()
    users = _donors(app, make_user, give_points, cid, count=7)
    with app.app_context():
        # the first batch is committed, then the run stops (e.g. the process was killed)
        assert services.cancel_campaign(cid, staff, "活动取消", limit=2) == 2
        db.session.commit()
    problems = integrity_problems(app)
    assert any("not refunded" in violation for _, violation in problems)
    with app.app_context():
        # a crash after the points moved but before the donation was marked:
        # the refund key derived from the donation stops a second credit
        donation = db.session.scalars(
            sa.select(Donation).where(Donation.refunded_at.is_not(None)).order_by(Donation.id)
        ).first()
        donation.refunded_at = None
        donation.refund_entry_id = None
        db.session.commit()

    # the CLI run dies in its second batch ...
    real_refund = points.refund
    calls = {"n": 0}

    def dying_refund(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 4:
            raise RuntimeError("killed")
        return real_refund(*args, **kwargs)

    monkeypatch.setattr(services.points, "refund", dying_refund)
    result = app.test_cli_runner().invoke(args=["donations-refund", str(cid), "--batch", "3"])
    assert result.exit_code != 0
    monkeypatch.setattr(services.points, "refund", real_refund)
    # ... and is simply run again
    result = app.test_cli_runner().invoke(args=["donations-refund", str(cid)])
    assert result.exit_code == 0, result.output
    result = app.test_cli_runner().invoke(args=["donations-refund", str(cid)])
    assert result.exit_code == 0 and "0 donation(s) refunded now" in result.output
    with app.app_context():
        assert services.cancel_campaign(cid, staff, "again") == 0
        for user in users:
            assert points.balance_of(user) == 100
        refunds = db.session.scalars(
            sa.select(LedgerEntry.ref_id).where(LedgerEntry.kind == "refund")
        ).all()
        assert len(refunds) == len(set(refunds)) == 7
        assert (
            db.session.scalar(
                sa.select(sa.func.count(Notification.id)).where(
                    Notification.kind == "donations.refunded"
                )
            )
            == 7
        )
    assert integrity_problems(app) == []


def test_refund_cli_refuses_an_open_campaign(app, make_campaign):
    cid = make_campaign()
    result = app.test_cli_runner().invoke(args=["donations-refund", str(cid)])
    assert result.exit_code != 0 and "已取消" in result.output
    result = app.test_cli_runner().invoke(args=["donations-refund", "9999"])
    assert result.exit_code != 0


def test_cancel_while_members_donate(app, staff, make_user, give_points, make_campaign):
    """Donations racing a cancellation: whoever got in is refunded, nobody is charged after."""
    cid = make_campaign(target_units=1000)
    users = []
    for _ in range(20):
        user = make_user()
        users.append(user.id)
    with app.app_context():
        for user_id in users:
            points.earn(user_id, 50, reason="grant", idempotency_key=f"g{user_id}")
        db.session.commit()

    def work(i: int):
        if i == 20:
            return services.cancel_campaign(cid, staff.id, "取消")
        return services.donate(users[i], cid, 5, idempotency_key=f"race-{i}")

    results = run_together(app, 21, work)
    assert [r for r in results if isinstance(r, Exception) and not isinstance(r, DomainError)] == []
    with app.app_context():
        for user_id in users:
            assert points.balance_of(user_id) == 50
    assert integrity_problems(app) == []


def test_editing_freezes_item_and_rate_once_donated(app, staff, member, make_campaign):
    cid = make_campaign()
    with app.app_context():
        values = campaign_values(title="新标题", points_per_unit=20)
        services.update_campaign(cid, staff, **values)  # no donations yet: allowed
        db.session.commit()
        services.donate(member, cid, 4, idempotency_key=key())
        db.session.commit()
        with pytest.raises(DomainError) as error:
            services.update_campaign(cid, staff, **campaign_values(points_per_unit=10))
        assert error.value.field == "points_per_unit"
        db.session.rollback()
        with pytest.raises(DomainError) as error:
            services.update_campaign(
                cid, staff, **campaign_values(points_per_unit=20, item_name="N95口罩")
            )
        assert error.value.field == "item_name"
        db.session.rollback()
        with pytest.raises(DomainError) as error:
            services.update_campaign(
                cid, staff, **campaign_values(points_per_unit=20, target_units=3)
            )
        assert error.value.field == "target_units"
        db.session.rollback()
        services.update_campaign(
            cid, staff, **campaign_values(points_per_unit=20, title="改个标题", target_units=200)
        )
        db.session.commit()
        campaign = _campaign(cid)
        assert (campaign.title, campaign.target_units) == ("改个标题", 200)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"title": " "}, "title"),
        ({"points_per_unit": 0}, "points_per_unit"),
        ({"target_units": -1}, "target_units"),
        ({"min_units": 5, "max_units": 2}, "max_units"),
        ({"min_units": 500}, "min_units"),
        ({"closes_at": utcnow() - timedelta(days=5)}, "closes_at"),
    ],
)
def test_campaign_validation(ctx, staff, overrides, field):
    with pytest.raises(DomainError) as error:
        services.create_campaign(staff, **campaign_values(**overrides))
    assert error.value.field == field


def test_status_transitions_and_fulfilment(app, staff, member, make_campaign):
    cid = make_campaign(target_units=50)
    with app.app_context():
        services.donate(member, cid, 30, idempotency_key=key())
        db.session.commit()
        with pytest.raises(DomainError):
            services.change_status(cid, "fulfil", staff)  # still open
        db.session.rollback()
        services.change_status(cid, "close", staff)
        db.session.commit()
        with pytest.raises(DomainError):
            services.change_status(cid, "fulfil", staff)  # nothing delivered yet
        db.session.rollback()
        with pytest.raises(DomainError) as error:
            services.record_fulfilment(cid, staff, quantity=31, delivered_on=date(2020, 3, 1))
        assert "只有 30 份" in str(error.value)
        db.session.rollback()
        services.record_fulfilment(
            cid, staff, quantity=20, delivered_on=date(2020, 3, 1), note="第一批"
        )
        services.record_fulfilment(cid, staff, quantity=10, delivered_on=date(2020, 3, 5))
        services.change_status(cid, "fulfil", staff)
        db.session.commit()
        campaign = _campaign(cid)
        assert (campaign.status, campaign.fulfilled_units) == ("fulfilled", 30)
        assert (
            db.session.scalar(
                sa.select(sa.func.count(Notification.id)).where(
                    Notification.kind == "donations.delivered"
                )
            )
            == 1
        )
        with pytest.raises(DomainError):
            services.cancel_campaign(cid, staff, "太晚了")
        db.session.rollback()
        from memberplatform.audit.models import AuditEntry

        actions = db.session.scalars(sa.select(AuditEntry.action).order_by(AuditEntry.id)).all()
        assert "donations.campaign.close" in actions and "donations.campaign.fulfil" in actions
        assert actions.count("donations.fulfilment.create") == 2
    assert integrity_problems(app) == []


def test_points_history_explains_donations(app, member, make_campaign):
    cid = make_campaign()
    with app.app_context(), app.test_request_context(method="POST"):
        result = services.donate(member, cid, 2, idempotency_key=key())
        db.session.commit()
        assert str(points.REASONS["donation"]) == "积分捐"
        link = points.REF_LINKS["donation"](result.donation.id)
        assert link == f"/donations/my/{result.donation.id}"


def test_seed_demo_is_idempotent_and_consistent(app, runner):
    assert runner.invoke(args=["seed-demo", "--password", "Demo-Pass-2020"]).exit_code == 0
    with app.app_context():
        counts = (
            db.session.scalar(sa.select(sa.func.count(Donation.id))),
            db.session.scalar(sa.select(sa.func.count(LedgerEntry.id))),
        )
        mask = db.session.scalar(
            sa.select(Campaign).where(Campaign.beneficiary_name == "武汉科技大学附属普仁医院")
        )
        assert mask.target_units == 13000 and mask.points_per_unit == 10
        assert 0 < mask.pledged_units < 13000 and mask.status == "open"
        past = db.session.scalar(sa.select(Campaign).where(Campaign.status == "fulfilled"))
        assert past.fulfilled_units == past.pledged_units > 0
    assert runner.invoke(args=["seed-demo", "--password", "Demo-Pass-2020"]).exit_code == 0
    with app.app_context():
        assert counts == (
            db.session.scalar(sa.select(sa.func.count(Donation.id))),
            db.session.scalar(sa.select(sa.func.count(LedgerEntry.id))),
        )
    result = runner.invoke(args=["check-integrity"])
    assert result.exit_code == 0, result.output
