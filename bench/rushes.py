"""The three rushes of the source article, over HTTP, with distinct bench members:
1,000 kits for 3,000 members; 3,382 donors to the mask campaign; 200 members for a
30-seat course. Objects are created through the domains' own services."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

import sqlalchemy as sa
from flask import url_for

from bench import loadgen
from memberplatform.db import utcnow
from memberplatform.extensions import db

KITS, KIT_MEMBERS = 1_000, 3_000
DONORS = 3_382
SEATS, STUDENTS = 30, 200


def prepare(app, admin_id: int, campaign_id: int | None) -> dict[str, Any]:
    from memberplatform.courses import services as courses
    from memberplatform.kits import services as kits

    now = utcnow()
    with app.app_context(), db.transaction():
        point = kits.save_point(
            admin_id, None, name="压测领取点", address="科学城", hours="9:00-17:00"
        )
        kit = kits.save_kit_type(
            admin_id,
            None,
            name="压测健康防护包",
            description="",
            contents="口罩 ×10",
            opens_at=now - timedelta(days=1),
            closes_at=now + timedelta(days=30),
            points_cost=0,
            required_tag=None,
            enterprise_ids=[],
            branch_ids=[],
            delivery_allowed=False,
            active=True,
        )
        kits.adjust_stock(admin_id, kit.id, point.id, KITS, "bench")
        course = courses.create_course(
            admin_id,
            title="压测小班课",
            teacher="bench",
            description="",
            category="bench",
            status="published",
            capacity=SEATS,
            points_reward=0,
        )
        ids = {"kit": kit.id, "point": point.id, "course": course.id, "campaign": campaign_id}
    with app.test_request_context():
        ids["kit_path"] = url_for("kits.claim", kit_id=ids["kit"])
        ids["course_path"] = url_for("courses.enrol", course_id=ids["course"])
        if campaign_id:
            ids["donate_path"] = url_for("donations.donate", campaign_id=campaign_id)
    return ids


def run(
    app, base_url: str, members: list[tuple[int, str]], cookie_for, ids: dict, after_each=None
) -> list[dict]:
    """``members``: (user id, session token) of distinct members, at least 6,582 of them.
    ``after_each(label)`` is called once each rush is over."""
    results = []
    groups = {
        "kits": members[:KIT_MEMBERS],
        "donations": members[KIT_MEMBERS : KIT_MEMBERS + DONORS],
        "course": members[KIT_MEMBERS + DONORS : KIT_MEMBERS + DONORS + STUDENTS],
    }

    def jobs(group: str, path: str, fields: dict[str, str]) -> list[tuple[str, str, str]]:
        out = []
        for n, (user_id, token) in enumerate(groups[group]):
            cookie, csrf = cookie_for(app, user_id, token)
            body = {**fields, "csrf_token": csrf}
            for key in ("request_key", "idempotency_key"):
                if key in body:
                    body[key] = f"bench-{group}-{n}"
            out.append((path, cookie, urlencode(body)))
        return out

    plans = [
        (
            "1,000 kits / 3,000 members",
            "kits",
            ids["kit_path"],
            {"point": str(ids["point"]), "mode": "pickup", "request_key": ""},
        ),
        ("30 seats / 200 members", "course", ids["course_path"], {}),
    ]
    if ids.get("donate_path"):
        plans.insert(
            1,
            (
                "3,382 donors, 1 mask each",
                "donations",
                ids["donate_path"],
                {"units": "1", "show_on_wall": "y", "idempotency_key": ""},
            ),
        )
    for label, group, path, fields in plans:
        result = loadgen.post_all(base_url, jobs(group, path, fields))
        results.append(
            {
                "rush": label,
                "requests": result.requests,
                "seconds": round(result.seconds, 2),
                "per_second": round(result.requests / result.seconds, 1) if result.seconds else 0,
                "p99_ms": round(result.percentile(99), 1),
                "errors": result.errors,
                "statuses": result.statuses,
                "outcome": outcome(app, group, ids),
            }
        )
        if after_each is not None:
            after_each(label)
    return results


def outcome(app, group: str, ids: dict) -> dict[str, int]:
    from memberplatform.db import Base

    tables = Base.metadata.tables
    with app.app_context():
        session = db.session
        if group == "kits":
            claims = tables["kit_claims"]
            stock = tables["kit_stocks"]
            return {
                "claims": session.scalar(
                    sa.select(sa.func.count()).where(claims.c.kit_type_id == ids["kit"])
                ),
                "stock_left": session.scalar(
                    sa.select(stock.c.available).where(stock.c.kit_type_id == ids["kit"])
                ),
            }
        if group == "course":
            enrol = tables["course_enrolments"]
            rows = dict(
                session.execute(
                    sa.select(enrol.c.status, sa.func.count())
                    .where(enrol.c.course_id == ids["course"])
                    .group_by(enrol.c.status)
                ).all()
            )
            return {str(k): int(v) for k, v in rows.items()}
        campaigns = tables["donation_campaigns"]
        return {
            "pledged_units": session.scalar(
                sa.select(campaigns.c.pledged_units).where(campaigns.c.id == ids["campaign"])
            )
        }
