"""Points pages (/points), the balance badge, check-in and staff grants."""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa
from flask import Blueprint, flash, redirect, request, url_for
from flask_login import current_user
from markupsafe import Markup

import memberplatform.points.demo
import memberplatform.points.hooks
from memberplatform.auth.models import User
from memberplatform.core.errors import DomainError
from memberplatform.extensions import db
from memberplatform.points import grants, services
from memberplatform.points.forms import BulkGrantForm, ConfirmBulkForm, GrantForm, HistoryFilterForm
from memberplatform.web import (
    badges,
    hx_redirect,
    reads_with_user,
    render,
    roles_required,
    with_trigger,
)
from memberplatform.web.forms import attach_error
from memberplatform.web.i18n import gettext as _
from memberplatform.web.i18n import lazy_gettext as _l

bp = Blueprint("points", __name__, url_prefix="/points")


@bp.app_template_global("points_badge")
def badge_html() -> Markup:
    """The header's balance badge (also the badge fragment's body)."""
    return badges.badge("points/_badge.html", memberplatform.points.hooks.balance_for_badge())


PAGE_SIZE = 20


def _page_reads(user_id: int) -> list[tuple[Any, dict[str, Any]]]:
    """The balance and the points expiring this year, read with the signed-in user
    (one round trip on PostgreSQL); the history's next rows need neither."""
    if request.args.get("before"):
        return []
    until = services.end_of_local_year()
    return [services.balance_read(user_id), services.expiring_read(user_id, until)]


@bp.get("")
@roles_required()
@reads_with_user(_page_reads)
def index():  # access: any logged-in user, their own points only
    form = HistoryFilterForm(request.args)
    flt = services.HistoryFilter()
    if form.validate():
        flt = services.HistoryFilter(form.kind.data or None, form.since.data, form.until.data)
    before = request.args.get("before", type=int)
    rows = services.history(current_user, flt, before_id=before, limit=PAGE_SIZE + 1)
    has_more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    filters = {k: v for k, v in request.args.items() if k in ("kind", "since", "until") and v}
    context = {
        "form": form,
        "rows": rows,
        "has_more": has_more,
        "next_before": rows[-1].id if rows else None,
        "filters": filters,
        "reason_text": services.reason_text,
        "ref_url": services.ref_url,
    }
    if before and request.headers.get("HX-Request") == "true":
        return render("points/index.html", fragment="more_rows", **context)
    end = services.end_of_local_year()
    return render(
        "points/index.html",
        fragment="history",
        balance=services.balance_of(current_user),
        expiring=[
            (services.last_valid_day(expires_at), amount)
            for expires_at, amount in services.expiring_before(current_user, end)
        ],
        **context,
    )


@bp.get("/badge")
@roles_required()
def badge():  # access: any logged-in user
    return badges.fragment(badge_html())


@bp.post("/check-in")
@roles_required()
def check_in():  # access: any logged-in user
    result = services.check_in(current_user)
    if request.headers.get("HX-Request") != "true":
        if result.new:
            flash(_("Checked in: +%(points)s points.", points=result.check_in.points), "success")
        else:
            flash(_("You have already checked in today."), "info")
        return redirect(url_for("home.me"), code=303)
    response = render(
        "points/_me_panel.html",
        fragment=None,
        ctx={
            **memberplatform.points.hooks.me_panel_context(current_user),
            "just_checked_in": result.check_in.points if result.new else None,
        },
    )
    return with_trigger(response, "points-changed") if result.new else response


def _find_member(value: str) -> User | None:
    value = value.strip()
    return db.session.scalar(
        sa.select(User).where(sa.or_(User.member_no == value, User.phone == value))
    )


@bp.route("/grant", methods=["GET", "POST"])
@roles_required("staff")
def grant():  # access: staff, admin
    form = GrantForm()
    if request.method == "GET":
        form.idempotency_key.data = uuid.uuid4().hex
    if form.validate_on_submit():
        member = _find_member(form.member.data)
        key = f"staffgrant:{form.idempotency_key.data}"
        try:
            if member is None:
                raise DomainError(
                    _l("No member with this member number or mobile number."), field="member"
                )
            if form.mode.data == "grant":
                if form.amount.data <= 0:
                    raise DomainError(_l("A grant must be at least 1 point."), field="amount")
                services.grant(
                    member,
                    form.amount.data,
                    actor=current_user,
                    note=form.note.data,
                    idempotency_key=key,
                )
            else:
                services.adjust(
                    member,
                    form.amount.data,
                    actor=current_user,
                    note=form.note.data,
                    idempotency_key=key,
                )
        except DomainError as error:
            attach_error(form, error)
        else:
            flash(
                _(
                    "%(points)s points recorded for %(name)s; balance now %(balance)s.",
                    points=form.amount.data,
                    name=member.name,
                    balance=services.balance_of(member),
                ),
                "success",
            )
            return hx_redirect(url_for("points.grant"))
    status = 422 if form.errors or form.form_errors else 200
    return render("points/grant.html", fragment="form", form=form, status=status)


@bp.route("/grants/bulk", methods=["GET", "POST"])
@roles_required("staff")
def bulk_grant():  # access: staff, admin
    form = BulkGrantForm()
    batch = None
    if form.validate_on_submit():
        data = form.file.data.read(5 * 1024 * 1024 + 1)
        try:
            if len(data) > 5 * 1024 * 1024:
                raise DomainError(_l("The file is larger than 5 MB."), field="file")
            batch = grants.parse(data)
            grants.store(data, current_user.id)
        except DomainError as error:
            attach_error(form, error)
    status = 422 if form.errors or form.form_errors else 200
    confirm = ConfirmBulkForm(digest=batch.digest) if batch else None
    return render(
        "points/bulk.html",
        fragment=None if batch else "form",
        form=form,
        batch=batch,
        confirm=confirm,
        status=status,
    )


@bp.post("/grants/bulk/confirm")
@roles_required("staff")
def bulk_confirm():  # access: staff, admin
    form = ConfirmBulkForm()
    if not form.validate_on_submit():
        flash(_("This upload has expired; please upload the file again."), "error")
        return hx_redirect(url_for("points.bulk_grant"))
    try:
        batch = grants.parse(grants.load(form.digest.data, current_user.id))
    except DomainError as error:
        flash(str(error.message), "error")
        return hx_redirect(url_for("points.bulk_grant"))
    count = grants.apply(batch, current_user)
    skipped = len(batch.rows) - count
    flash(
        _(
            "Granted points to %(count)s members; %(skipped)s rows skipped.",
            count=count,
            skipped=skipped,
        ),
        "success",
    )
    return hx_redirect(url_for("points.bulk_grant"))
