"""Kit claims: eligibility, stock, cancel/re-claim, expiry, pickup, shipping — both engines."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from memberplatform.audit.models import AuditEntry
from memberplatform.core.errors import DomainError, NotFound
from memberplatform.db import utcnow
from memberplatform.extensions import db
from memberplatform.kits import services
from memberplatform.kits.cli import release_expired
from memberplatform.kits.models import KitClaim, KitType, PickupPoint
from memberplatform.notifications.models import Notification
from memberplatform.points import services as points
from tests.concurrency import integrity_problems, run_together
from tests.kits.conftest import make_kit, stock


@pytest.fixture
def member(make_user):
    return make_user(name="张三明", phone="13812345678")


def test_claim_reserves_one_unit_with_a_code(ctx, setup, member):
    claim = services.claim(member.id, setup.kit_id, setup.zgc)
    ctx.commit()
    assert claim.status == "reserved" and claim.mode == "pickup"
    assert services.CODE_RE.match(claim.pickup_code)
    assert claim.expires_at - claim.created_at == timedelta(days=3)
    row = stock(setup.kit_id, setup.zgc)
    assert (row.received, row.reserved, row.picked_up, row.available) == (5, 1, 0, 4)
    note = ctx.scalar(sa.select(Notification).where(Notification.user_id == member.id))
    assert note.kind == "kits.claimed" and note.params["code"] == claim.pickup_code
    assert note.link == f"/kits/claims/{claim.id}"


def test_claiming_twice_is_refused_and_changes_nothing(ctx, setup, member):
    first = services.claim(member.id, setup.kit_id, setup.zgc)
    ctx.commit()
    with pytest.raises(services.AlreadyClaimed) as error:
        services.claim(member.id, setup.kit_id, setup.city)
    ctx.rollback()
    assert error.value.claim.id == first.id
    assert stock(setup.kit_id, setup.city).available == 3
    assert ctx.scalar(sa.select(sa.func.count(KitClaim.id))) == 1


def test_same_form_sent_twice_returns_the_first_claim(ctx, setup, member):
    first = services.claim(member.id, setup.kit_id, setup.zgc, request_key="form-1")
    ctx.commit()
    again = services.claim(member.id, setup.kit_id, setup.zgc, request_key="form-1")
    ctx.commit()
    assert again.id == first.id
    assert stock(setup.kit_id, setup.zgc).reserved == 1


def test_database_refuses_a_second_live_claim(ctx, setup, member):
    """Even bypassing the service's check, the partial unique index says no."""
    services.claim(member.id, setup.kit_id, setup.zgc)
    ctx.commit()
    ctx.add(
        KitClaim(
            kit_type_id=setup.kit_id,
            point_id=setup.city,
            user_id=member.id,
            pickup_code="ABCDEFGH",
        )
    )
    with pytest.raises(sa.exc.IntegrityError):
        ctx.flush()
    ctx.rollback()


def test_stock_counters_are_checked_by_the_database(ctx, setup):
    with pytest.raises(sa.exc.IntegrityError):
        ctx.execute(sa.text("UPDATE kit_stocks SET available = available + 1"))
    ctx.rollback()


def test_point_without_stock_is_refused(ctx, setup, make_user):
    members = [make_user() for _ in range(4)]
    late = members.pop()
    for m in members:
        services.claim(m.id, setup.kit_id, setup.city)
    ctx.commit()
    with pytest.raises(services.OutOfStock):
        services.claim(late.id, setup.kit_id, setup.city)
    ctx.rollback()
    assert ctx.scalar(sa.select(sa.func.count(KitClaim.id)).where(KitClaim.user_id == late.id)) == 0
    assert stock(setup.kit_id, setup.city).available == 0
    assert services.claim(late.id, setup.kit_id, setup.zgc).status == "reserved"


def test_an_empty_shelf_is_all_a_claim_is_told_only_when_nothing_comes_first(ctx, setup, make_user):
    winners = [make_user() for _ in range(8)]
    late = make_user()
    kit = ctx.get(KitType, setup.kit_id)
    for n, member in enumerate(winners):
        services.claim(member.id, kit.id, setup.zgc if n < 5 else setup.city)
    ctx.commit()
    stocks = services.stocks_for([kit.id])[kit.id]
    none = (None, None)
    assert services.meets_empty_shelf(kit, services.member_of(late.id), stocks, none)
    mine = services.prior_claims(None, winners[0].id, kit.id)
    assert mine[1] is not None  # a winner is shown the claim, not the empty shelf
    assert not services.meets_empty_shelf(kit, services.member_of(winners[0].id), stocks, mine)
    kit.required_tag = "returned-to-work"  # a rule the member fails is told first
    assert not services.meets_empty_shelf(kit, services.member_of(late.id), stocks, none)
    kit.required_tag = None
    services.adjust_stock(setup.staff.id, kit.id, setup.city, 1, "补货")
    stocks = services.stocks_for([kit.id])[kit.id]
    assert not services.meets_empty_shelf(kit, services.member_of(late.id), stocks, none)


def test_closed_and_upcoming_kits_are_refused(ctx, setup, member):
    kit = ctx.get(KitType, setup.kit_id)
    kit.closes_at = utcnow() - timedelta(minutes=1)
    kit.opens_at = utcnow() - timedelta(days=2)
    ctx.commit()
    with pytest.raises(services.NotEligible, match="申领已于"):
        services.claim(member.id, setup.kit_id, setup.zgc)
    ctx.rollback()
    kit.opens_at, kit.closes_at = utcnow() + timedelta(days=1), utcnow() + timedelta(days=2)
    ctx.commit()
    with pytest.raises(services.NotEligible):
        services.claim(member.id, setup.kit_id, setup.zgc)
    ctx.rollback()
    assert stock(setup.kit_id, setup.zgc).available == 5


def test_eligibility_rules_explain_themselves(ctx, setup, make_user):
    from memberplatform.auth.services import get_or_create_enterprise

    firm = get_or_create_enterprise("中关村软件园云计算有限公司")
    ctx.commit()
    kit_id = make_kit(
        setup.staff.id,
        "新冠抗体检测试剂",
        required_tag="returned-to-work",
        enterprise_ids=[firm.id],
    )
    ctx.commit()
    kit = ctx.get(KitType, kit_id)
    outsider = make_user(enterprise="别的公司")
    insider = make_user(enterprise="中关村软件园云计算有限公司", tags=("returned-to-work",))
    untagged = make_user(enterprise="中关村软件园云计算有限公司")
    disabled = make_user(
        enterprise="中关村软件园云计算有限公司", tags=("returned-to-work",), status="disabled"
    )
    reasons = [str(r) for r in services.eligibility(kit, services.member_of(outsider.id)).reasons]
    assert len(reasons) == 2
    assert "中关村软件园云计算有限公司" in reasons[0] and "已返岗" in reasons[1]
    assert services.eligibility(kit, services.member_of(insider.id)).ok
    assert len(services.eligibility(kit, services.member_of(untagged.id)).reasons) == 1
    assert services.eligibility(kit, services.member_of(disabled.id)).reasons
    services.adjust_stock(setup.staff.id, kit_id, setup.city, 2, "到货")
    ctx.commit()
    with pytest.raises(services.NotEligible):
        services.claim(outsider.id, kit_id, setup.city)
    ctx.rollback()
    assert services.claim(insider.id, kit_id, setup.city).status == "reserved"


def test_cancel_returns_the_unit_and_allows_a_new_claim(ctx, setup, member):
    claim = services.claim(member.id, setup.kit_id, setup.zgc)
    ctx.commit()
    cancelled = services.cancel(member.id, claim.id)
    ctx.commit()
    assert cancelled.status == "cancelled" and cancelled.cancelled_at is not None
    assert stock(setup.kit_id, setup.zgc).available == 5
    with pytest.raises(DomainError):
        services.cancel(member.id, claim.id)  # only once
    ctx.rollback()
    again = services.claim(member.id, setup.kit_id, setup.city)
    ctx.commit()
    assert again.id != claim.id and again.pickup_code != claim.pickup_code
    assert stock(setup.kit_id, setup.city).reserved == 1


def test_cancel_someone_elses_claim_is_not_found(ctx, setup, member, make_user):
    other = make_user()
    claim = services.claim(member.id, setup.kit_id, setup.zgc)
    ctx.commit()
    with pytest.raises(NotFound):
        services.cancel(other.id, claim.id)


def test_points_cost_is_spent_and_refunded_on_cancel(ctx, setup, member):
    kit = ctx.get(KitType, setup.kit_id)
    kit.points_cost = 30
    points.earn(member.id, 50, reason="grant", idempotency_key="seed")
    ctx.commit()
    claim = services.claim(member.id, setup.kit_id, setup.zgc, request_key="k1")
    ctx.commit()
    assert claim.points_spent == 30 and points.balance_of(member.id) == 20
    services.cancel(member.id, claim.id)
    ctx.commit()
    assert points.balance_of(member.id) == 50
    second = services.claim(member.id, setup.kit_id, setup.zgc, request_key="k2")
    ctx.commit()
    assert second.points_spent == 30 and points.balance_of(member.id) == 20


def test_not_enough_points_changes_nothing(ctx, setup, member):
    kit = ctx.get(KitType, setup.kit_id)
    kit.points_cost = 30
    ctx.commit()
    with pytest.raises(points.InsufficientPoints):
        services.claim(member.id, setup.kit_id, setup.zgc)
    ctx.rollback()
    assert stock(setup.kit_id, setup.zgc).available == 5
    assert ctx.scalar(sa.select(sa.func.count(KitClaim.id))) == 0


def test_delivery_needs_an_address_and_is_shipped_once(ctx, setup, member):
    with pytest.raises(DomainError) as error:
        services.claim(member.id, setup.kit_id, setup.zgc, mode="delivery")
    assert error.value.field == "address"
    ctx.rollback()
    claim = services.claim(
        member.id, setup.kit_id, setup.zgc, mode="delivery", address="上地十街1号"
    )
    ctx.commit()
    assert claim.expires_at is None
    with pytest.raises(services.PickupRefused):
        services.mark_picked_up(claim.id, setup.staff.id)
    ctx.rollback()
    with pytest.raises(DomainError):
        services.mark_shipped(claim.id, setup.staff.id, " ")
    ctx.rollback()
    shipped = services.mark_shipped(claim.id, setup.staff.id, "顺丰 SF123")
    ctx.commit()
    assert shipped.status == "shipped" and shipped.tracking_note == "顺丰 SF123"
    with pytest.raises(services.PickupRefused):
        services.mark_shipped(claim.id, setup.staff.id, "again")
    ctx.rollback()
    row = stock(setup.kit_id, setup.zgc)
    assert (row.reserved, row.picked_up) == (0, 1)
    kinds = ctx.scalars(sa.select(Notification.kind).where(Notification.user_id == member.id))
    assert "kits.shipped" in list(kinds)


def test_pick_up_once_then_the_second_scan_says_when_and_by_whom(ctx, setup, member):
    claim = services.claim(member.id, setup.kit_id, setup.zgc)
    ctx.commit()
    picked = services.mark_picked_up(claim.id, setup.staff.id)
    ctx.commit()
    assert picked.status == "picked_up" and picked.picked_up_by == setup.staff.id
    with pytest.raises(services.PickupRefused) as error:
        services.mark_picked_up(claim.id, setup.staff.id)
    ctx.rollback()
    assert "王干事" in str(error.value.message)
    row = stock(setup.kit_id, setup.zgc)
    assert (row.reserved, row.picked_up, row.available) == (0, 1, 4)
    with pytest.raises(DomainError):
        services.cancel(member.id, claim.id)  # too late to cancel
    ctx.rollback()


def test_cancelled_and_expired_codes_are_refused(ctx, setup, member, make_user):
    other = make_user()
    claim = services.claim(member.id, setup.kit_id, setup.zgc)
    ctx.commit()
    services.cancel(member.id, claim.id)
    ctx.commit()
    with pytest.raises(services.PickupRefused, match="取消"):
        services.mark_picked_up(claim.id, setup.staff.id)
    ctx.rollback()
    late = services.claim(other.id, setup.kit_id, setup.zgc)
    ctx.commit()
    with pytest.raises(services.PickupRefused, match="过期"):
        services.mark_picked_up(late.id, setup.staff.id, now=utcnow() + timedelta(days=4))
    ctx.rollback()


@pytest.mark.parametrize("raw", ["", "ABC", "ABCDEFG0", "ABCDEFGHJ", "abcd-efgI", "测试"])
def test_malformed_codes(raw):
    with pytest.raises(DomainError):
        services.normalize_code(raw)


def test_codes_are_normalized():
    assert services.normalize_code(" abcd-efgh ") == "ABCDEFGH"


def test_expiry_releases_stock_notifies_and_is_idempotent(app, setup, make_user):
    member = make_user()
    keeper = make_user()
    with app.app_context():
        db.session.get(KitType, setup.kit_id).opens_at = utcnow() - timedelta(days=10)
        old = services.claim(member.id, setup.kit_id, setup.zgc, now=utcnow() - timedelta(days=4))
        soon = services.claim(
            keeper.id, setup.kit_id, setup.zgc, now=utcnow() - timedelta(days=2, hours=12)
        )
        db.session.commit()
        old_id, soon_id = old.id, soon.id
        assert release_expired() == (1, 1)
        assert release_expired() == (0, 0)
        assert db.session.get(KitClaim, old_id).status == "expired"
        assert db.session.get(KitClaim, soon_id).status == "reserved"
        row = stock(setup.kit_id, setup.zgc)
        assert (row.reserved, row.available) == (1, 4)
        kinds = sorted(
            db.session.scalars(
                sa.select(Notification.kind).where(
                    Notification.kind.in_(["kits.expired", "kits.expiring"])
                )
            )
        )
        assert kinds == ["kits.expired", "kits.expiring"]
        # the member may claim again
        assert services.claim(member.id, setup.kit_id, setup.city).status == "reserved"
        db.session.commit()
    assert integrity_problems(app) == []


def test_cli_command(app, setup, runner):
    result = runner.invoke(args=["kits-release-expired"])
    assert result.exit_code == 0 and "released 0" in result.output


def test_stock_never_below_what_is_reserved(ctx, setup, member):
    services.claim(member.id, setup.kit_id, setup.city)
    ctx.commit()
    with pytest.raises(DomainError, match="2"):
        services.adjust_stock(setup.staff.id, setup.kit_id, setup.city, -3, "损坏")
    ctx.rollback()
    with pytest.raises(DomainError):
        services.adjust_stock(setup.staff.id, setup.kit_id, setup.city, 5, "  ")
    ctx.rollback()
    row = services.adjust_stock(setup.staff.id, setup.kit_id, setup.city, -2, "运输损坏")
    ctx.commit()
    assert (row.received, row.reserved, row.available) == (1, 1, 0)
    actions = list(
        ctx.scalars(sa.select(AuditEntry.action).where(AuditEntry.action == "kits.stock.adjust"))
    )
    assert len(actions) == 3  # two deliveries in the fixture + this removal


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("口罩 ×20\n消毒液 ×1", [("口罩", 20), ("消毒液", 1)]),
        ("口罩 x 20\n\n 酒精棉片*5 ", [("口罩", 20), ("酒精棉片", 5)]),
        ("84 消毒液（500 ml）×1", [("84 消毒液（500 ml）", 1)]),
        ("口罩 20", [("口罩", 20)]),
    ],
)
def test_parse_contents(text, expected):
    assert services.parse_contents(text) == expected


@pytest.mark.parametrize("text", ["", "口罩", "口罩 ×0", "×3"])
def test_parse_contents_refuses(text):
    with pytest.raises(DomainError):
        services.parse_contents(text)


def test_integrity_after_the_usual_operations(app, setup, make_user):
    members = [make_user() for _ in range(4)]
    with app.app_context():
        a = services.claim(members[0].id, setup.kit_id, setup.zgc)
        b = services.claim(members[1].id, setup.kit_id, setup.zgc)
        services.claim(members[2].id, setup.kit_id, setup.city, mode="delivery", address="x路1号")
        db.session.commit()
        services.mark_picked_up(a.id, setup.staff.id)
        services.cancel(members[1].id, b.id)
        db.session.commit()
    assert integrity_problems(app) == []


# --- concurrency ------------------------------------------------------------------


def test_two_staff_scan_the_same_code_at_once(app, setup, make_user):
    member = make_user()
    other_staff = make_user(roles=("staff",))
    with app.app_context():
        claim_id = services.claim(member.id, setup.kit_id, setup.zgc).id
        db.session.commit()
    scanners = [setup.staff.id, other_staff.id] * 5
    results = run_together(
        app, len(scanners), lambda i: services.mark_picked_up(claim_id, scanners[i]).id
    )
    assert sum(r == claim_id for r in results) == 1, results
    assert sum(isinstance(r, services.PickupRefused) for r in results) == len(scanners) - 1
    with app.app_context():
        row = stock(setup.kit_id, setup.zgc)
        assert (row.reserved, row.picked_up) == (0, 1)
        audits = db.session.scalar(
            sa.select(sa.func.count(AuditEntry.id)).where(
                AuditEntry.action == "kits.claim.picked_up"
            )
        )
        assert audits == 1
    assert integrity_problems(app) == []


def test_one_member_claiming_from_many_tabs_gets_one_kit(app, setup, make_user):
    member = make_user()
    results = run_together(
        app,
        20,
        lambda i: services.claim(member.id, setup.kit_id, [setup.zgc, setup.city][i % 2]).id,
    )
    claims = [r for r in results if isinstance(r, int)]
    assert len(claims) == 1, results
    assert all(isinstance(r, services.AlreadyClaimed) for r in results if not isinstance(r, int))
    with app.app_context():
        total = stock(setup.kit_id, setup.zgc).reserved + stock(setup.kit_id, setup.city).reserved
        assert total == 1
    assert integrity_problems(app) == []


def test_pickup_and_cancel_race(app, setup, make_user):
    member = make_user()
    with app.app_context():
        claim_id = services.claim(member.id, setup.kit_id, setup.zgc).id
        db.session.commit()

    def race(i):
        if i % 2:
            return services.cancel(member.id, claim_id).status
        return services.mark_picked_up(claim_id, setup.staff.id).status

    results = run_together(app, 10, race)
    wins = [r for r in results if isinstance(r, str)]
    assert len(wins) == 1, results
    assert all(isinstance(r, DomainError) for r in results if not isinstance(r, str))
    assert integrity_problems(app) == []


def test_the_shelf_reads_what_the_orm_reads(app, setup, make_user):
    """The claim's one-statement read (kit rules, stock at active points, a prior claim
    of the member's or of the form) against the ORM reads it replaces, case by case."""
    from memberplatform.auth.services import get_or_create_enterprise

    holder, replayer, cancelled, fresh = (make_user() for _ in range(4))
    with app.app_context():
        firm = get_or_create_enterprise("中关村软件园云计算有限公司")
        limited_id = make_kit(setup.staff.id, "只发给本公司的包", enterprise_ids=[firm.id])
        empty_id = make_kit(setup.staff.id, "还没到货的包")
        services.claim(holder.id, setup.kit_id, setup.zgc)
        services.claim(replayer.id, setup.kit_id, setup.city, request_key="form-1")
        gone = services.claim(cancelled.id, setup.kit_id, setup.zgc)
        services.cancel(cancelled.id, gone.id)
        point = db.session.get(PickupPoint, setup.city)
        services.save_point(
            setup.staff.id, point, name=point.name, address=point.address, hours="", active=False
        )
        db.session.commit()

    cases = [
        (setup.kit_id, holder.id, None, True),  # a live claim
        (setup.kit_id, fresh.id, "form-1", True),  # the form another member sent
        (setup.kit_id, cancelled.id, None, False),  # a cancelled claim is no claim
        (setup.kit_id, fresh.id, "form-2", False),
        (setup.kit_id, None, None, False),  # nobody signed in (the stock fragment)
        (limited_id, fresh.id, None, False),
        (empty_id, fresh.id, None, False),
    ]
    with app.test_request_context("/"):
        for kit_id, user_id, key, has_prior in cases:
            shelf = services.shelf(kit_id, user_id, key)
            kit = db.session.get(KitType, kit_id)
            assert shelf.kit == services.KitRules(
                *(getattr(kit, name) for name in services.KitRules._fields)
            )
            orm = services.stocks_for([kit_id])[kit_id]
            assert [(s.point_id, s.available, tuple(s.point)) for s in shelf.stocks] == [
                (s.point_id, s.available, (s.point.name, s.point.address, s.point.hours))
                for s in orm
            ]
            assert shelf.has_prior is has_prior
            if user_id is not None:
                assert has_prior == any(services.prior_claims(key, user_id, kit_id))
        assert services.shelf(10_000, fresh.id) is None
        assert services.shelf(limited_id, fresh.id).kit.limited is True
        assert [s.point_id for s in services.shelf(setup.kit_id, None).stocks] == [setup.zgc]


def test_a_claim_on_the_shelf_read_refuses_what_one_on_the_rows_refuses(app, setup, make_user):
    """``claim(shelf=…)`` decides with the rules and stock the view read moments before:
    an inactive or unknown point, a sold-out point, a limited kit (its refusal names the
    organisation, read from the rows), and a winner taking a unit for real."""
    from memberplatform.auth.services import get_or_create_enterprise

    member = make_user()
    with app.app_context():
        firm = get_or_create_enterprise("中关村软件园云计算有限公司")
        limited_id = make_kit(setup.staff.id, "只发给本公司的包", enterprise_ids=[firm.id])
        services.adjust_stock(setup.staff.id, limited_id, setup.zgc, 2, "到货")
        point = db.session.get(PickupPoint, setup.city)
        services.save_point(
            setup.staff.id, point, name=point.name, address=point.address, hours="", active=False
        )
        db.session.commit()
    with app.test_request_context("/", method="POST"):
        shelf = services.shelf(setup.kit_id, member.id)
        for point_id in (setup.city, 10_000, "x"):
            with pytest.raises(DomainError, match="领取点") as refused:
                services.claim(member.id, setup.kit_id, point_id, shelf=shelf)
            assert refused.value.field == "point"
        empty = services.Shelf(shelf.kit, [shelf.stocks[0]._replace(available=0)], has_prior=False)
        with pytest.raises(services.OutOfStock):
            services.claim(member.id, setup.kit_id, setup.zgc, shelf=empty)
        limited = services.shelf(limited_id, member.id)
        with pytest.raises(services.NotEligible, match="中关村软件园云计算有限公司"):
            services.claim(member.id, limited_id, setup.zgc, shelf=limited)
        made = services.claim(member.id, setup.kit_id, setup.zgc, shelf=shelf)
        db.session.commit()
        assert made.point_id == setup.zgc
        assert stock(setup.kit_id, setup.zgc).available == 4
    assert integrity_problems(app) == []
