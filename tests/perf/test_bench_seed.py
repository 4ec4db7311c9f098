"""The benchmark's bulk seeder (bench/seed.py) writes rows without the services, so
nothing but these tests says its history is one the services could have written:
every integrity check must pass after it, the figures it reports must be the rows
it wrote, and the pages must read them. (test_query_counts seeds with it too.)"""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from bench import seed
from memberplatform.audit.models import AuditEntry
from memberplatform.auth.models import User
from memberplatform.core.registry import integrity_checks
from memberplatform.courses.models import Enrolment
from memberplatform.donations.models import Campaign, Donation
from memberplatform.extensions import db
from memberplatform.kits.models import KitClaim
from memberplatform.kits.services import CODE_RE
from memberplatform.legal.models import LegalRequest, RequestEvent
from memberplatform.notifications.models import Notification
from memberplatform.points.models import LedgerEntry, PointsAccount

BENCH_PHONES = User.phone.like("150%")


def _demo(runner) -> None:
    result = runner.invoke(args=["seed-demo", "--password", "Demo-Pass-2020"])
    assert result.exit_code == 0, result.output


def _seed(app, members: int, **options: Any) -> dict[str, Any]:
    with app.app_context():
        db.session.rollback()  # no open read: the bulk writer locks its tables
        return seed.seed_members(db.engine, members, 10, "x", **options)


def _assert_integrity(runner) -> None:
    result = runner.invoke(args=["check-integrity"])
    assert result.exit_code == 0, result.output
    assert f"OK: {len(integrity_checks)} checks passed." in result.output


def _bench_rows() -> dict[str, int]:
    """Rows that belong to bench members, counted in the tables themselves."""
    bench = sa.select(User.id).where(BENCH_PHONES).scalar_subquery()

    def count(column: Any, *where: Any) -> int:
        return db.session.scalar(sa.select(sa.func.count()).where(column.in_(bench), *where))

    accounts = sa.select(PointsAccount.id).where(PointsAccount.user_id.in_(bench))
    claims = sa.select(sa.cast(KitClaim.id, sa.String)).where(KitClaim.user_id.in_(bench))
    return {
        "members": db.session.scalar(sa.select(sa.func.count(User.id)).where(BENCH_PHONES)),
        "ledger_entries": db.session.scalar(
            sa.select(sa.func.count(LedgerEntry.id)).where(LedgerEntry.account_id.in_(accounts))
        ),
        "donations": count(Donation.user_id),
        "claims": count(KitClaim.user_id),
        "enrolments": count(Enrolment.user_id),
        "legal_requests": count(LegalRequest.requester_id),
        "notifications": count(Notification.user_id),
        "audit_entries": db.session.scalar(
            sa.select(sa.func.count(AuditEntry.id)).where(
                AuditEntry.object_type == "kit_claim",
                AuditEntry.object_id.in_(claims),
            )
        ),
    }


FIGURES = (
    "members",
    "ledger_entries",
    "donations",
    "claims",
    "enrolments",
    "legal_requests",
    "notifications",
    "audit_entries",
)


@pytest.mark.slow
def test_seeded_history_passes_every_integrity_check(app, runner):
    """300 members on top of the demo, as the benchmark seeds them."""
    _demo(runner)
    seeded = _seed(app, 300)
    _assert_integrity(runner)
    assert {key: seeded[key] for key in FIGURES} == {
        "members": 300,
        "ledger_entries": 3000,  # 9 earned + the donation's debit each
        "donations": 300,
        "claims": 300,
        "enrolments": 300,
        "legal_requests": 30,
        "notifications": 300,  # each claim's
        "audit_entries": 300,  # each hand-over's
    }
    with app.app_context():
        assert _bench_rows() == {key: seeded[key] for key in FIGURES}
        unread = db.session.scalar(
            sa.select(sa.func.count(Notification.id)).where(
                Notification.user_id >= seeded["first_user_id"], Notification.read_at.is_(None)
            )
        )
        assert unread == 100  # one in three
        codes = db.session.scalars(
            sa.select(KitClaim.pickup_code).where(KitClaim.user_id >= seeded["first_user_id"])
        ).all()
        assert len(codes) == 300 and all(CODE_RE.match(code) for code in codes)
        # the past is past: nothing seeded is open or waiting for anyone
        bench = sa.select(User.id).where(BENCH_PHONES)
        assert not db.session.scalar(
            sa.select(sa.func.count(LegalRequest.id)).where(
                LegalRequest.requester_id.in_(bench),
                LegalRequest.status.not_in(("answered", "closed")),
            )
        )
        assert not db.session.scalar(
            sa.select(sa.func.count(Campaign.id)).where(
                Campaign.id.in_(sa.select(Donation.campaign_id).where(Donation.user_id.in_(bench))),
                Campaign.status == "open",
            )
        )
    _assert_pages_read(app, seeded["first_user_id"])


def _assert_pages_read(app, user_id: int) -> None:
    """The first bench member has every kind of history (a legal request too): the pages
    that show it work."""
    with app.app_context():
        request_id = db.session.scalar(
            sa.select(LegalRequest.id).where(LegalRequest.requester_id == user_id)
        )
        claim_id = db.session.scalar(sa.select(KitClaim.id).where(KitClaim.user_id == user_id))
        course_id = db.session.scalar(
            sa.select(Enrolment.course_id).where(Enrolment.user_id == user_id)
        )
        trail = db.session.scalars(
            sa.select(RequestEvent.action)
            .where(RequestEvent.request_id == request_id)
            .order_by(RequestEvent.id)
        ).all()
    assert trail[:3] == ["submit", "claim", "answer"]
    client = app.test_client()
    with client.session_transaction() as session:
        session["_user_id"] = f"{user_id}:bench{user_id:027d}"  # as bench/run.py signs in
        session["_fresh"] = True
    for path in (
        "/me",
        "/points",
        "/kits",
        f"/kits/claims/{claim_id}",
        "/legal",
        f"/legal/requests/{request_id}",
        "/donations",
        f"/courses/{course_id}",
        "/notifications",
    ):
        response = client.get(path)
        assert response.status_code == 200, path
        assert "不可用" not in response.get_data(as_text=True), path  # no failed panel


@pytest.mark.slow
def test_seeding_again_reuses_the_past_objects(app, runner):
    """The bench seeds twice in one database (a few members, then more): the past kits,
    campaigns and courses are found again and their counters grow; fewer members than
    past objects leave some without rows. History off writes only the ledgers."""
    _demo(runner)
    first = _seed(app, 2)
    second = _seed(app, 41)
    plain = _seed(app, 5, history=False)
    _assert_integrity(runner)
    assert (first["legal_requests"], second["legal_requests"]) == (1, 5)
    assert plain["ledger_entries"] == 50 and plain["donations"] == plain["claims"] == 0
    with app.app_context():
        assert _bench_rows() == {
            "members": 48,
            "ledger_entries": 480,
            "donations": 43,
            "claims": 43,
            "enrolments": 43,
            "legal_requests": 6,
            "notifications": 43,
            "audit_entries": 43,
        }
        titles = db.session.scalars(
            sa.select(Campaign.title).where(Campaign.title.like("压测往期%"))
        ).all()
        assert sorted(titles) == sorted(title for title, *_ in seed.PAST_CAMPAIGNS)
