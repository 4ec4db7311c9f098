"""What the points domain registers: reasons, notifications, the activation bonus,
integrity checks and the /me panel."""

from __future__ import annotations

from collections.abc import Iterator

import sqlalchemy as sa
import sqlalchemy.orm as so
from flask import current_app

from memberplatform.auth.signals import user_activated
from memberplatform.core.nav import nav_count, nav_counter
from memberplatform.core.registry import integrity_check, me_panel
from memberplatform.notifications.services import register_message
from memberplatform.points import services
from memberplatform.points.models import LedgerEntry, LotUse, PointsAccount, PointsLot
from memberplatform.web.i18n import lazy_gettext as _l

services.register_reason("activation", _l("Account activation bonus"))
services.register_reason("checkin", _l("Daily check-in"))
services.register_reason("streak", _l("Check-in streak bonus"))
services.register_reason("grant", _l("Granted by union staff"))
services.register_reason("adjust", _l("Correction by union staff"))
services.register_reason("expire", _l("Points expired"))

register_message("points.granted", _l("You received %(amount)s points: %(note)s"))
register_message(
    "points.expiring",
    _l("%(amount)s of your points can be used until %(date)s; they expire after that."),
)


@user_activated.connect
def _activation_bonus(sender, user, **extra) -> None:
    amount = current_app.config.get("POINTS_ACTIVATION_BONUS", 100)
    if amount:
        services.earn(user, amount, reason="activation", idempotency_key=f"activation:{user.id}")


@integrity_check("points: balance equals the sum of the ledger")
def _balance_matches_ledger(session: so.Session) -> Iterator[str]:
    totals = (
        sa.select(LedgerEntry.account_id, sa.func.sum(LedgerEntry.amount).label("total"))
        .group_by(LedgerEntry.account_id)
        .subquery()
    )
    rows = session.execute(
        sa.select(PointsAccount.id, PointsAccount.balance, totals.c.total)
        .outerjoin(totals, totals.c.account_id == PointsAccount.id)
        .where(PointsAccount.balance != sa.func.coalesce(totals.c.total, 0))
    )
    for account_id, balance, total in rows:
        yield f"account {account_id}: balance {balance} but ledger sums to {total or 0}"


@integrity_check("points: no negative balance")
def _no_negative(session: so.Session) -> Iterator[str]:
    for account_id, balance in session.execute(
        sa.select(PointsAccount.id, PointsAccount.balance).where(PointsAccount.balance < 0)
    ):
        yield f"account {account_id}: balance {balance}"


@integrity_check("points: balance_after follows the ledger order")
def _running_balance(session: so.Session) -> Iterator[str]:
    running = sa.func.sum(LedgerEntry.amount).over(
        partition_by=LedgerEntry.account_id, order_by=LedgerEntry.id
    )
    inner = sa.select(
        LedgerEntry.id, LedgerEntry.balance_after, running.label("running")
    ).subquery()
    for entry_id, after, total in session.execute(
        sa.select(inner.c.id, inner.c.balance_after, inner.c.running)
        .where(inner.c.balance_after != inner.c.running)
        .limit(100)
    ):
        yield f"entry {entry_id}: balance_after {after} but running sum {total}"


@integrity_check("points: lots hold exactly the balance")
def _lots_match_balance(session: so.Session) -> Iterator[str]:
    lots = (
        sa.select(PointsLot.account_id, sa.func.sum(PointsLot.remaining).label("left"))
        .group_by(PointsLot.account_id)
        .subquery()
    )
    for account_id, balance, left in session.execute(
        sa.select(PointsAccount.id, PointsAccount.balance, lots.c.left)
        .outerjoin(lots, lots.c.account_id == PointsAccount.id)
        .where(PointsAccount.balance != sa.func.coalesce(lots.c.left, 0))
    ):
        yield f"account {account_id}: balance {balance} but lots hold {left or 0}"


@integrity_check("points: each lot's remaining equals its amount minus its uses")
def _lot_uses(session: so.Session) -> Iterator[str]:
    used = (
        sa.select(LotUse.lot_id, sa.func.sum(LotUse.amount).label("used"))
        .group_by(LotUse.lot_id)
        .subquery()
    )
    for lot_id, amount, remaining, spent in session.execute(
        sa.select(PointsLot.id, PointsLot.amount, PointsLot.remaining, used.c.used)
        .outerjoin(used, used.c.lot_id == PointsLot.id)
        .where(PointsLot.amount - sa.func.coalesce(used.c.used, 0) != PointsLot.remaining)
        .limit(100)
    ):
        yield f"lot {lot_id}: amount {amount} - used {spent or 0} != remaining {remaining}"


@integrity_check("points: every debit is covered by lot uses, every credit by lots")
def _entries_match_lots(session: so.Session) -> Iterator[str]:
    uses = (
        sa.select(LotUse.entry_id, sa.func.sum(LotUse.amount).label("used"))
        .group_by(LotUse.entry_id)
        .subquery()
    )
    for entry_id, amount, used in session.execute(
        sa.select(LedgerEntry.id, LedgerEntry.amount, uses.c.used)
        .outerjoin(uses, uses.c.entry_id == LedgerEntry.id)
        .where(LedgerEntry.amount < 0, -LedgerEntry.amount != sa.func.coalesce(uses.c.used, 0))
        .limit(100)
    ):
        yield f"debit {entry_id}: amount {amount} but lots record {used or 0}"
    credits = (
        sa.select(PointsLot.entry_id, sa.func.sum(PointsLot.amount).label("opened"))
        .group_by(PointsLot.entry_id)
        .subquery()
    )
    for entry_id, amount, opened in session.execute(
        sa.select(LedgerEntry.id, LedgerEntry.amount, credits.c.opened)
        .outerjoin(credits, credits.c.entry_id == LedgerEntry.id)
        .where(LedgerEntry.amount > 0, LedgerEntry.amount != sa.func.coalesce(credits.c.opened, 0))
        .limit(100)
    ):
        yield f"credit {entry_id}: amount {amount} but lots opened {opened or 0}"


@me_panel(
    "points", 10, "points/_me_panel.html", reads=lambda user_id: [services.dashboard_read(user_id)]
)
def me_panel_context(user) -> dict:
    """The /me points panel (also re-rendered in place after a check-in)."""
    balance, streak, done = services.dashboard_of(user)
    return {"balance": balance, "streak": streak, "done": done}


@nav_counter("points")
def _balance(user_id: sa.BindParameter) -> sa.ScalarSelect:
    return (
        sa.select(PointsAccount.balance).where(PointsAccount.user_id == user_id).scalar_subquery()
    )


def balance_for_badge() -> int:
    """The signed-in user's balance, read only when a template shows the badge."""
    return nav_count("points")
