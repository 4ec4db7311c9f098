"""Demo points: activation bonuses, a month of check-ins, grants from last year."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from memberplatform.core.registry import demo_seeder
from memberplatform.db import utcnow
from memberplatform.points import services


@demo_seeder("points", 10)
def seed_points(session, users) -> None:
    now = utcnow()
    last_year = datetime(now.year - 1, 6, 1, 2, 0, tzinfo=UTC)
    for index, member in enumerate(users.members):
        services.earn(
            member,
            100,
            reason="activation",
            idempotency_key=f"activation:{member.id}",
            at=last_year,
        )
        services.earn(
            member,
            200 + 10 * (index % 7),
            reason="grant",
            idempotency_key=f"demo:grant:{member.id}",
            actor=users.staff,
            note="复工复产慰问积分",
            at=last_year + timedelta(days=30),
        )
        services.earn(
            member,
            300,
            reason="grant",
            idempotency_key=f"demo:grant2:{member.id}",
            actor=users.staff,
            note="年度会员积分",
            at=now - timedelta(days=40),
        )
        days = 3 + index % 12  # each member checked in on the last few days
        for back in range(days, 0, -1):
            services.check_in(member, now=now - timedelta(days=back))
