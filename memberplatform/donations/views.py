"""Points donations (积分捐): campaign pages, donate with a confirm step, live progress,
certificates and their public verification, and the staff pages under /donations/manage."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask import Blueprint, abort, flash, make_response, redirect, request, url_for
from flask_login import current_user
from jinja2_fragments.flask import render_block
from markupsafe import Markup

import memberplatform.donations.hooks  # noqa: F401  (registers reasons, checks, panels)
from memberplatform.auth.models import Enterprise, User
from memberplatform.core.cache import cached_briefly
from memberplatform.core.csvio import csv_response
from memberplatform.core.errors import DomainError
from memberplatform.core.pagination import paginate
from memberplatform.core.qr import qr_svg
from memberplatform.core.uploads import Upload, send_upload
from memberplatform.db import utcnow
from memberplatform.donations import services
from memberplatform.donations.forms import (
    CampaignForm,
    CancelForm,
    ConfirmForm,
    DonateForm,
    FulfilmentForm,
)
from memberplatform.donations.models import Campaign, Donation, Fulfilment
from memberplatform.extensions import db
from memberplatform.points import services as points
from memberplatform.web import (
    add_vary,
    hx_redirect,
    is_fragment_request,
    load_or_404,
    reads_with_user,
    render,
    roles_required,
    with_trigger,
)
from memberplatform.web.current import signed_in_user
from memberplatform.web.forms import attach_error
from memberplatform.web.i18n import current_locale, local_datetime
from memberplatform.web.i18n import gettext as _

bp = Blueprint("donations", __name__)

ACTIONS = ("open", "close", "fulfil", "cancel")


# --- load-and-authorize helpers ------------------------------------------------------


def _is_staff() -> bool:
    return current_user.is_authenticated and current_user.has_role("staff")


def _campaign_or_404(campaign_id: int) -> Campaign:
    """A campaign; drafts exist only for staff."""
    campaign = load_or_404(Campaign, campaign_id)
    if campaign.status == "draft" and not _is_staff():
        abort(404)
    return campaign


def _own_donation_or_404(donation: Donation | None) -> Donation:
    """The member's own donation (admins see every one); anyone else gets 404."""
    if donation is None:
        abort(404)
    if donation.user_id != current_user.id and not current_user.has_role("admin"):
        abort(404)
    return donation


# --- public pages ----------------------------------------------------------------------


@bp.get("/donations")
def index():  # access: anyone
    now = utcnow()
    current = list(
        db.session.scalars(
            sa.select(Campaign)
            .where(Campaign.status == "open", Campaign.closes_at > now)
            .order_by(Campaign.opens_at.desc(), Campaign.id.desc())
        )
    )
    past = paginate(
        sa.select(Campaign)
        .where(
            sa.or_(
                Campaign.status.in_(("closed", "fulfilled", "cancelled")),
                sa.and_(Campaign.status == "open", Campaign.closes_at <= now),
            )
        )
        .order_by(Campaign.closes_at.desc(), Campaign.id.desc()),
        request.args.get("page"),
        per_page=10,
    )
    return render("donations/index.html", current=current, past=past, now=now)


#: the member's own donations a campaign page lists
MY_DONATIONS_SHOWN = 20


def _donate_context(campaign: Campaign, form: DonateForm | None = None, **extra: Any) -> dict:
    form = form or DonateForm(formdata=None)
    form.ensure_key()
    mine: list[Any] = []  # rows (services.donations_of)
    balance = None
    if current_user.is_authenticated:
        balance = points.balance_of(current_user)
        mine = services.donations_of(current_user, campaign.id, limit=MY_DONATIONS_SHOWN)
    return {
        "campaign": campaign,
        "form": form,
        "balance": balance,
        "mine": mine,
        "can_donate": current_user.is_authenticated and current_user.has_role("member"),
        "now": utcnow(),
        **extra,
    }


def _campaign_reads(user_id: int, campaign_id: int) -> list[tuple[Any, dict[str, Any]]]:
    """What a signed-in member's campaign page reads of them and of the campaign."""
    return [
        points.balance_read(user_id),
        services.donations_of_read(user_id, campaign_id, limit=MY_DONATIONS_SHOWN),
        services.fulfilments_read(campaign_id),
    ]


@bp.get("/donations/<int:campaign_id>")
@reads_with_user(_campaign_reads)
def campaign(campaign_id: int):  # access: anyone (drafts: staff)
    signed_in_user()  # first: a member's reads go with the session check
    campaign = _campaign_or_404(campaign_id)
    # the page shows the same progress card everyone polls (a draft's is rendered here)
    progress = None if campaign.status == "draft" else _shared_progress(campaign.id)
    return render(
        "donations/campaign.html",
        progress=progress,
        recent=services.recent_donations(campaign.id) if progress is None else (),
        fulfilments=services.fulfilments_of(campaign.id),
        **_donate_context(campaign),
    )


@bp.get("/donations/<int:campaign_id>/progress")
def progress(campaign_id: int):  # access: anyone (not personalised: cacheable)
    if not is_fragment_request():
        campaign = _shown_campaign(campaign_id)
        if campaign is None:
            abort(404)
        return render("donations/progress.html", **_progress_context(campaign))
    body = _shared_progress(campaign_id)
    if body is None:
        abort(404)
    response = make_response(body)
    add_vary(response, "HX-Request")
    response.headers["Cache-Control"] = "public, max-age=5"
    return response


def _shown_campaign(campaign_id: int) -> Campaign | None:
    campaign = db.session.get(Campaign, campaign_id)
    return None if campaign is None or campaign.status == "draft" else campaign


def _progress_context(campaign: Campaign) -> dict[str, Any]:
    return {
        "campaign": campaign,
        "recent": services.recent_donations(campaign.id),
        "now": utcnow(),
    }


def _shared_progress(campaign_id: int) -> str | None:
    """Everyone watching a campaign polls its progress every 5 s and sees the same
    thing: each worker keeps the rendered card per campaign, language and mount point
    (its polling URL) a moment."""
    key = ("donations.progress", campaign_id, current_locale(), request.script_root)
    return cached_briefly(key, lambda: _progress_fragment(campaign_id))


def _progress_fragment(campaign_id: int) -> str | None:
    campaign = _shown_campaign(campaign_id)
    if campaign is None:
        return None
    return render_block("donations/progress.html", "progress", **_progress_context(campaign))


@bp.get("/donations/<int:campaign_id>/totals")
def totals(campaign_id: int):  # access: anyone
    campaign = _campaign_or_404(campaign_id)
    return render(
        "donations/totals.html",
        campaign=campaign,
        fulfilments=services.fulfilments_of(campaign.id),
        now=utcnow(),
    )


@bp.get("/donations/<int:campaign_id>/quote")
@roles_required()
def quote(campaign_id: int):  # access: any logged-in user (their own balance)
    campaign = _campaign_or_404(campaign_id)
    if not is_fragment_request():
        return redirect(url_for("donations.campaign", campaign_id=campaign.id))
    form = DonateForm(formdata=request.args, meta={"csrf": False})
    form.validate()
    response = render(
        "donations/campaign.html",
        fragment="quote",
        campaign=campaign,
        form=form,
        balance=points.balance_of(current_user),
    )
    response.headers["Cache-Control"] = "private, no-store"
    return response


# --- donate ----------------------------------------------------------------------------


def _donate_box(campaign: Campaign, form: DonateForm, status: int, **extra: Any):
    """The donate box: the fragment for htmx, else the campaign page (e.g. with errors)."""
    return render(
        "donations/campaign.html",
        fragment="donate_box",
        status=status,
        recent=services.recent_donations(campaign.id),
        fulfilments=services.fulfilments_of(campaign.id),
        **_donate_context(campaign, form, **extra),
    )


@bp.post("/donations/<int:campaign_id>/confirm")
@roles_required("member")
def confirm(campaign_id: int):  # access: members
    campaign = _campaign_or_404(campaign_id)
    form = DonateForm()
    if form.validate_on_submit():
        try:
            services.check_accepting(campaign)
            units = services.check_units(campaign, form.units.data)
        except DomainError as error:
            attach_error(form, error)
        else:
            balance = points.balance_of(current_user)
            cost = units * campaign.points_per_unit
            if cost > balance:
                form.units.errors = [
                    *form.units.errors,
                    _(
                        "You have %(balance)s points; this needs %(needed)s.",
                        balance=balance,
                        needed=cost,
                    ),
                ]
            else:
                summary = {"units": units, "cost": cost, "balance": balance}
                if is_fragment_request():
                    return _donate_box(campaign, form, 200, confirm=summary)
                return render(
                    "donations/confirm.html",
                    fragment=None,
                    campaign=campaign,
                    form=form,
                    confirm=summary,
                )
    return _donate_box(campaign, form, 422)


@bp.post("/donations/<int:campaign_id>/donate")
@roles_required("member")
def donate(campaign_id: int):  # access: members
    with db.reading():  # on SQLite the write lock is taken by the donation itself
        campaign = _campaign_or_404(campaign_id)
    form = DonateForm()
    if form.validate_on_submit():
        try:
            result = services.donate(
                current_user,
                campaign.id,
                form.units.data,
                idempotency_key=form.idempotency_key.data or "",
                show_on_wall=bool(form.show_on_wall.data),
            )
        except DomainError as error:
            attach_error(form, error)
        else:
            message = (
                _("Thank you! Your donation is recorded and your certificate is ready.")
                if result.created
                else _("This donation was already recorded; nothing was charged again.")
            )
            donation = result.donation
            db.session.commit()  # in a rush the campaign row is not held while we render
            if is_fragment_request():
                db.session.expire_all()
                with db.reading():
                    response = _donate_box(
                        db.session.get(Campaign, campaign.id),
                        DonateForm(formdata=None),
                        200,
                        done=donation,
                        done_message=message,
                    )
                return with_trigger(response, "points-changed", "donation-made")
            flash(message, "success")
            return redirect(
                url_for("donations.certificate", number=donation.certificate_no), code=303
            )
    return _donate_box(campaign, form, 422)


# --- the member's donations and certificates -------------------------------------------


@bp.get("/donations/my/<int:donation_id>")
@roles_required()
def my_donation(donation_id: int):  # access: the donor (and admins); others 404
    donation = _own_donation_or_404(db.session.get(Donation, donation_id))
    return redirect(url_for("donations.certificate", number=donation.certificate_no))


def _qr_svg(url: str) -> Markup:
    return qr_svg(url)


@bp.get("/donations/certificates/<number>")
@roles_required()
def certificate(number: str):  # access: the donor (and admins); others 404
    donation = _own_donation_or_404(services.by_certificate(number))
    verify_url = url_for("donations.verify", number=donation.certificate_no, _external=True)
    donor = db.session.get(User, donation.user_id)
    return render(
        "donations/certificate.html",
        donation=donation,
        campaign=donation.campaign,
        donor=donor,
        verify_url=verify_url,
        qr=_qr_svg(verify_url),
    )


@bp.get("/donations/verify/<number>")
def verify(number: str):  # access: anyone (shows only a masked name)
    donation = services.by_certificate(number)
    if donation is None:
        abort(404)
    donor = db.session.get(User, donation.user_id)
    return render(
        "donations/verify.html", donation=donation, campaign=donation.campaign, donor=donor
    )


@bp.get("/donations/fulfilments/<int:fulfilment_id>/file")
@roles_required()
def fulfilment_file(fulfilment_id: int):  # access: any logged-in user (proof of delivery)
    fulfilment = load_or_404(Fulfilment, fulfilment_id)
    if fulfilment.upload_id is None:
        abort(404)
    upload = load_or_404(Upload, fulfilment.upload_id)
    # photos show inline in the page; a PDF receipt downloads (nothing renders it in our origin)
    return send_upload(upload, inline=upload.content_type != "application/pdf")


# --- staff -------------------------------------------------------------------------------


@bp.get("/donations/manage")
@roles_required("staff")
def manage():  # access: staff
    page = paginate(
        sa.select(Campaign).order_by(Campaign.created_at.desc(), Campaign.id.desc()),
        request.args.get("page"),
    )
    return render("donations/manage/index.html", page=page, now=utcnow())


@bp.route("/donations/manage/new", methods=["GET", "POST"])
@roles_required("staff")
def manage_new():  # access: staff
    form = CampaignForm()
    if form.validate_on_submit():
        try:
            campaign = services.create_campaign(current_user, **form.values())
        except DomainError as error:
            attach_error(form, error)
        else:
            flash(_("The campaign was created as a draft. Open it when it is ready."), "success")
            return hx_redirect(url_for("donations.manage_campaign", campaign_id=campaign.id))
    status = 422 if form.errors or form.form_errors else 200
    return render(
        "donations/manage/form.html", fragment="form", form=form, campaign=None, status=status
    )


@bp.route("/donations/manage/<int:campaign_id>/edit", methods=["GET", "POST"])
@roles_required("staff")
def manage_edit(campaign_id: int):  # access: staff
    campaign = load_or_404(Campaign, campaign_id)
    form = CampaignForm(obj=campaign)
    if form.validate_on_submit():
        try:
            services.update_campaign(campaign.id, current_user, **form.values())
        except DomainError as error:
            attach_error(form, error)
        else:
            flash(_("The campaign was saved."), "success")
            return hx_redirect(url_for("donations.manage_campaign", campaign_id=campaign.id))
    status = 422 if form.errors or form.form_errors else 200
    return render(
        "donations/manage/form.html", fragment="form", form=form, campaign=campaign, status=status
    )


def _dashboard(campaign: Campaign, *, fulfilment_form: FulfilmentForm | None = None, status=200):
    donations = paginate(
        sa.select(Donation, User)
        .join(User, User.id == Donation.user_id)
        .where(Donation.campaign_id == campaign.id)
        .order_by(Donation.id.desc()),
        request.args.get("page"),
        scalars=False,
    )
    days = services.daily_figures(campaign.id)
    return render(
        "donations/manage/dashboard.html",
        fragment="fulfilment_form" if fulfilment_form is not None else "content",
        status=status,
        campaign=campaign,
        donations=donations,
        days=days,
        max_day=max((d["units"] for d in days), default=0),
        fulfilments=services.fulfilments_of(campaign.id),
        fulfilment_form=fulfilment_form or FulfilmentForm(formdata=None),
        pending=services.pending_refunds(campaign.id) if campaign.status == "cancelled" else 0,
        now=utcnow(),
    )


@bp.get("/donations/manage/<int:campaign_id>")
@roles_required("staff")
def manage_campaign(campaign_id: int):  # access: staff
    return _dashboard(load_or_404(Campaign, campaign_id))


@bp.route("/donations/manage/<int:campaign_id>/<action>", methods=["GET", "POST"])
@roles_required("staff")
def manage_action(campaign_id: int, action: str):  # access: staff
    if action not in ACTIONS:
        abort(404)
    campaign = load_or_404(Campaign, campaign_id)
    form = CancelForm() if action == "cancel" else ConfirmForm()
    if request.method == "POST" and form.validate_on_submit():
        try:
            if action == "cancel":
                refunded = services.cancel_campaign(campaign.id, current_user, form.reason.data)
                flash(
                    _("The campaign was cancelled; %(n)s donations were refunded.", n=refunded),
                    "success",
                )
            else:
                services.change_status(campaign.id, action, current_user)
                flash(_("The campaign status was changed."), "success")
        except DomainError as error:
            attach_error(form, error)
        else:
            return hx_redirect(url_for("donations.manage_campaign", campaign_id=campaign.id))
    failed = request.method == "POST"
    return render(
        "donations/manage/action.html",
        fragment="dialog",
        status=422 if failed else 200,
        campaign=campaign,
        action=action,
        form=form,
        as_dialog=is_fragment_request(),
    )


@bp.post("/donations/manage/<int:campaign_id>/fulfilments")
@roles_required("staff")
def manage_fulfilment(campaign_id: int):  # access: staff
    campaign = load_or_404(Campaign, campaign_id)
    form = FulfilmentForm()
    if form.validate_on_submit():
        try:
            services.record_fulfilment(
                campaign.id,
                current_user,
                quantity=form.quantity.data,
                delivered_on=form.delivered_on.data,
                note=form.note.data or "",
                file=form.file.data,
            )
        except DomainError as error:
            attach_error(form, error)
        else:
            flash(_("The delivery was recorded."), "success")
            return hx_redirect(url_for("donations.manage_campaign", campaign_id=campaign.id))
    return _dashboard(campaign, fulfilment_form=form, status=422)


# --- CSV -----------------------------------------------------------------------------------

CSV_HEADER = (
    "certificate_no",
    "campaign_id",
    "campaign",
    "member_no",
    "name",
    "phone",
    "enterprise",
    "units",
    "points",
    "on_wall",
    "donated_at",
    "refunded_at",
)


def _csv_rows(campaign_id: int | None):
    query = (
        sa.select(
            Donation.certificate_no,
            Donation.campaign_id,
            Campaign.title,
            User.member_no,
            User.name,
            User.phone,
            Enterprise.name,
            Donation.units,
            Donation.points,
            Donation.wall_name,
            Donation.created_at,
            Donation.refunded_at,
        )
        .join(Campaign, Campaign.id == Donation.campaign_id)
        .join(User, User.id == Donation.user_id)
        .outerjoin(Enterprise, Enterprise.id == User.enterprise_id)
        .order_by(Donation.id)
        .execution_options(yield_per=500)
    )
    if campaign_id is not None:
        query = query.where(Donation.campaign_id == campaign_id)
    for row in db.session.execute(query):
        *head, wall_name, created_at, refunded_at = row
        yield (
            *head,
            "yes" if wall_name else "no",
            local_datetime(created_at, "short"),
            local_datetime(refunded_at, "short"),
        )


@bp.get("/donations/manage/<int:campaign_id>/export.csv")
@roles_required("staff")
def export_campaign(campaign_id: int):  # access: staff
    campaign = load_or_404(Campaign, campaign_id)
    return csv_response(f"donations-{campaign.id}.csv", CSV_HEADER, _csv_rows(campaign.id))


@bp.get("/donations/manage/export.csv")
@roles_required("staff")
def export_all():  # access: staff
    return csv_response("donations.csv", CSV_HEADER, _csv_rows(None))
