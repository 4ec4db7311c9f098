"""The rush: 1,000 kits, 3,000 members at the same minute, plus 200 duplicate attempts.

3,200 claim attempts run in 50 OS threads released together by a barrier
(``run_together``); each thread works through its 64 attempts one transaction at
a time, so at every moment up to 50 claims compete for the two stock rows. The
200 members whose duplicate attempt comes later claimed first (their first
attempt is among the first four of some thread, long before the kits run out;
their second one comes at the end of another thread's list). On PostgreSQL the
threads really run in parallel (row locks + partial unique index); on SQLite
they queue on ``BEGIN IMMEDIATE``. Each thread stands for a request worker with a
connection of its own (the pool covers the 50 threads, as ``DATABASE_POOL_SIZE``
must cover a worker's threads): the contention under test is the stock rows', not
a wait for a pooled connection, which a thread that just gave one back can win
over and over. The members are seeded with two bulk INSERTs.
"""

from __future__ import annotations

import time
from collections import Counter, deque

import pytest
import sqlalchemy as sa

from memberplatform.auth.models import User, UserRole
from memberplatform.core.errors import DomainError
from memberplatform.extensions import db
from memberplatform.kits import services
from memberplatform.kits.models import KitClaim, KitStock
from tests.concurrency import integrity_problems, run_together
from tests.kits.conftest import make_kit

MEMBERS = 3_000
DUPLICATES = 200
THREADS = 50


@pytest.fixture
def app(app_factory):
    return app_factory(DATABASE_POOL_SIZE=THREADS, DATABASE_MAX_OVERFLOW=0)


def _seed_members(count: int) -> list[int]:
    db.session.execute(
        sa.insert(User),
        [
            {"phone": f"150{i:08d}", "name": f"会员{i}", "status": "active", "session_token": "x"}
            for i in range(count)
        ],
    )
    ids = list(
        db.session.scalars(sa.select(User.id).where(User.phone.like("150%")).order_by(User.id))
    )
    db.session.execute(sa.insert(UserRole), [{"user_id": i, "role": "member"} for i in ids])
    db.session.commit()
    return ids


def test_rush_1000_kits_3000_members_200_duplicates(app, make_user):
    staff = make_user(roles=("staff",))
    with app.app_context():
        zgc = services.save_point(
            staff.id, None, name="中关村软件园", address="西北旺东路10号", hours=""
        )
        city = services.save_point(
            staff.id, None, name="科学城服务中心", address="丰豪东路9号", hours=""
        )
        kit_id = make_kit(staff.id, delivery_allowed=False)
        services.adjust_stock(staff.id, kit_id, zgc.id, 600, "首批到货")
        services.adjust_stock(staff.id, kit_id, city.id, 400, "首批到货")
        db.session.commit()
        points = [zgc.id, city.id]
        members = _seed_members(MEMBERS)

    # Thread t gets members t, t+50, t+100, … and then four duplicate slots. A
    # duplicate slot retries for a member who holds a claim by then (taken from
    # the shared queue of winners), so it does not depend on thread scheduling.
    per_thread = DUPLICATES // THREADS
    plan: list[list[int | None]] = [
        [*members[t::THREADS], *[None] * per_thread] for t in range(THREADS)
    ]
    winners_so_far: deque[int] = deque()

    def attempts(t: int) -> list[object]:
        outcomes: list[object] = []
        for slot in plan[t]:
            member_id = slot if slot is not None else winners_so_far.popleft()
            try:
                made = services.claim(member_id, kit_id, points[member_id % 2])
                db.session.commit()
                winners_so_far.append(member_id)
                outcomes.append(("claimed", made.id, member_id))
            except DomainError as error:
                db.session.rollback()
                outcomes.append(error)
        return outcomes

    started = time.monotonic()
    results = run_together(app, THREADS, attempts)
    elapsed = time.monotonic() - started

    crashed = [r for r in results if not isinstance(r, list)]
    assert crashed == []
    outcomes = [o for r in results for o in r]
    kinds = Counter(o[0] if isinstance(o, tuple) else type(o).__name__ for o in outcomes)
    assert kinds == {"claimed": 1_000, "OutOfStock": 2_000, "AlreadyClaimed": DUPLICATES}, kinds
    winners = [o[2] for o in outcomes if isinstance(o, tuple)]
    assert len(set(winners)) == 1_000

    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(KitClaim.id))) == 1_000
        assert db.session.scalar(sa.select(sa.func.count(sa.distinct(KitClaim.user_id)))) == 1_000
        assert db.session.scalar(sa.select(sa.func.count(sa.distinct(KitClaim.pickup_code)))) == (
            1_000
        )
        rows = db.session.execute(
            sa.select(KitStock.received, KitStock.reserved, KitStock.available)
        ).all()
        assert sorted(rows) == [(400, 400, 0), (600, 600, 0)]
    assert integrity_problems(app) == []
    print(f"rush: {elapsed:.1f}s")
    assert elapsed < 60, f"the rush took {elapsed:.1f}s"
