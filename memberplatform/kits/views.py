"""Kit pages: members claim (/kits, /kits/claims/<id>), staff verify pickups
(/staff/pickup) and manage kits, points, stock and claims (/staff/kits…)."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
import sqlalchemy.orm as so
from flask import Blueprint, abort, flash, make_response, request, url_for
from flask_login import current_user
from jinja2_fragments.flask import render_block

import memberplatform.kits.hooks  # noqa: F401  (registers reasons, checks, panels)
from memberplatform.auth.models import Enterprise, UnionBranch
from memberplatform.auth.services import normalize_phone
from memberplatform.core.cache import cached_briefly
from memberplatform.core.csvio import csv_response
from memberplatform.core.errors import DomainError
from memberplatform.core.pagination import paginate
from memberplatform.core.qr import qr_svg
from memberplatform.core.uploads import IMAGES, Upload, save_upload, send_upload
from memberplatform.extensions import db
from memberplatform.kits import services
from memberplatform.kits.forms import (
    ClaimFilterForm,
    ClaimForm,
    CodeForm,
    ConfirmForm,
    KitTypeForm,
    PhoneForm,
    PointForm,
    ShipForm,
    StockForm,
)
from memberplatform.kits.models import (
    LIVE_STATUSES,
    KitClaim,
    KitStock,
    KitType,
    PickupPoint,
    StockMove,
)
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
from memberplatform.web.forms import attach_error, perform
from memberplatform.web.i18n import current_locale, local_datetime
from memberplatform.web.i18n import gettext as _
from memberplatform.web.i18n import lazy_gettext as _l

bp = Blueprint("kits", __name__)

STATUS_LABELS = {
    "reserved": _l("Reserved"),
    "picked_up": _l("Picked up"),
    "shipped": _l("Shipped"),
    "cancelled": _l("Cancelled"),
    "expired": _l("Expired"),
}
STATUS_CLASSES = {
    "reserved": "status-warn",
    "picked_up": "status-ok",
    "shipped": "status-ok",
    "cancelled": "status-bad",
    "expired": "status-bad",
}
MODE_LABELS = {"pickup": _l("Pickup"), "delivery": _l("Delivery")}


# Globals (not a context processor) so imported macros see them too.
bp.add_app_template_global(STATUS_LABELS, "kit_status_labels")
bp.add_app_template_global(STATUS_CLASSES, "kit_status_classes")
bp.add_app_template_global(MODE_LABELS, "kit_mode_labels")
bp.add_app_template_global(services.tag_label, "kit_tag_label")


def _status(code: int, form: Any) -> int:
    return 422 if form.errors or form.form_errors else code


def _is_staff() -> bool:
    return current_user.is_authenticated and current_user.has_role("staff")


# --- load-and-authorize helpers -------------------------------------------------


def _shown(kit: KitType | services.KitRules) -> bool:
    """Published kits for everybody; unpublished ones only for staff."""
    return kit.active or _is_staff()


def _kit_or_404(kit_id: int) -> KitType:
    """The kit's row, if it is :func:`_shown` to this user."""
    kit = load_or_404(KitType, kit_id)
    if not _shown(kit):
        abort(404)
    return kit


def _shelf_or_404(kit_id: int, request_key: str | None = None) -> services.Shelf:
    """The kit's rules and stock (:func:`services.shelf`), with ``_kit_or_404``'s rule."""
    user_id = current_user.id if current_user.is_authenticated else None
    shelf = services.shelf(kit_id, user_id, request_key)
    if shelf is None or not _shown(shelf.kit):
        abort(404)
    return shelf


def _own_claim_or_404(claim_id: int) -> KitClaim:
    """Only the member who claimed sees a claim page (others: 404, its existence is private)."""
    claim = db.session.get(KitClaim, claim_id)
    if claim is None or claim.user_id != current_user.id:
        abort(404)
    return claim


# --- member pages ---------------------------------------------------------------

CLAIMS_SHOWN = 20  # a member's latest claims listed on /kits


@bp.get("/kits")
def index():  # access: anyone (claiming needs a member login)
    kits = services.visible_kits()
    stocks = services.stocks_for([kit.id for kit in kits])
    mine: dict[int, KitClaim] = {}
    checks: dict[int, services.Eligibility] = {}
    claims: list[KitClaim] = []
    if current_user.is_authenticated:
        claims = services.claims_of(current_user.id, limit=CLAIMS_SHOWN)
        if len(claims) < CLAIMS_SHOWN:  # every claim is here, the live ones too
            mine = {c.kit_type_id: c for c in claims if c.status in LIVE_STATUSES}
        else:
            mine = services.live_claims_of(current_user.id)
        checks = {
            kit.id: services.eligibility(kit, current_user, existing=mine.get(kit.id))
            for kit in kits
        }
    return render(
        "kits/index.html",
        kits=kits,
        stocks=stocks,
        mine=mine,
        checks=checks,
        states={kit.id: services.window_state(kit) for kit in kits},
        claims=claims,
    )


def _claim_form(
    kit: KitType | services.KitRules,
    stocks: Sequence[KitStock | services.ShelfStock],
    formdata: Any = None,
) -> ClaimForm:
    form = ClaimForm(formdata=formdata) if formdata is not None else ClaimForm()
    form.point.choices = [
        (
            stock.point_id,
            _("%(point)s — %(n)s left", point=stock.point.name, n=stock.available),
        )
        for stock in stocks
    ]
    if not form.request_key.data:
        form.request_key.data = secrets.token_urlsafe(24)
    if len(stocks) == 1 and form.point.data is None:
        form.point.data = stocks[0].point_id
    return form


def _kit_page(
    kit: KitType | services.KitRules,
    form: ClaimForm | None = None,
    *,
    status: int = 200,
    fragment="form",
    stocks: Sequence[KitStock | services.ShelfStock] | None = None,
    live: Any = ...,
):
    """The kit page (or one of its fragments); a claim that was refused passes what it
    has already read in this transaction (``stocks``; ``live=None`` when it found no
    live claim) instead of reading it again."""
    if stocks is None:
        stocks = services.stocks_for([kit.id])[kit.id]
    check = None
    if current_user.is_authenticated:
        check = services.eligibility(kit, current_user, existing=live)
    form = form or _claim_form(kit, stocks)
    return render(
        "kits/kit.html",
        fragment=fragment,
        status=status,
        kit=kit,
        stocks=stocks,
        check=check,
        form=form,
        state=services.window_state(kit),
        days=services.reservation_days(),
    )


@bp.get("/kits/<int:kit_id>")
def kit(kit_id: int):  # access: anyone (claiming needs a member login)
    return _kit_page(_kit_or_404(kit_id), fragment="content")


@bp.get("/kits/<int:kit_id>/stock")
def kit_stock(kit_id: int):  # access: anyone — the self-refreshing "left" figures
    if not is_fragment_request():  # the whole kit page
        return _kit_page(_kit_or_404(kit_id), fragment="stock")
    shelf = _shelf_or_404(kit_id)
    return render(
        "kits/kit.html",
        fragment="stock",
        kit=shelf.kit,
        stocks=shelf.stocks,
        state=services.window_state(shelf.kit),
    )


@bp.get("/kits/<int:kit_id>/picture")
def kit_picture(kit_id: int):  # access: anyone (published kits)
    kit = _kit_or_404(kit_id)
    if kit.picture_id is None:
        abort(404)
    return send_upload(load_or_404(Upload, kit.picture_id), inline=True)


def _claim_reads(user_id: int, kit_id: int) -> list:
    return [services.shelf_read(kit_id, user_id, request.form.get("request_key") or None)]


@bp.post("/kits/<int:kit_id>/claim")
@roles_required("member")
@reads_with_user(_claim_reads)  # the shelf goes with the session check: most of a rush
def claim(kit_id: int):  # access: member
    request_key = request.form.get("request_key") or None
    with db.reading():  # on SQLite, the write lock is taken for the claim itself only
        shelf = _shelf_or_404(kit_id, request_key)
        stocks = shelf.stocks
        prior = services.NO_PRIOR
        if shelf.has_prior:
            prior = services.prior_claims(request_key, current_user.id, kit_id)
        kit = services.rules_of(kit_id, shelf)
    if services.meets_empty_shelf(kit, current_user, stocks, prior):  # most of a rush
        return _sold_out(kit, stocks)
    live = prior[1]
    form = _claim_form(kit, stocks, formdata=request.form)
    if form.validate_on_submit():
        try:
            made = services.claim(
                current_user,
                kit.id,
                form.point.data,
                mode=form.mode.data,
                address=form.address.data,
                request_key=form.request_key.data or None,
                shelf=shelf,
                prior=prior,
            )
        except services.AlreadyClaimed as error:
            if error.claim is not None:
                flash(_("You have already claimed this kit."), "info")
                return hx_redirect(url_for("kits.claim_page", claim_id=error.claim.id))
            attach_error(form, error)
        except services.OutOfStock as error:  # this point is empty, another may not be
            attach_error(form, error)
            return _kit_page(kit, form, status=_status(200, form), stocks=stocks, live=live)
        except DomainError as error:
            attach_error(form, error)
        else:
            db.session.commit()  # before the response: the stock row is held no longer
            flash(_("Your kit is reserved. Show the pickup code at the point."), "success")
            response = hx_redirect(url_for("kits.claim_page", claim_id=made.id))
            return with_trigger(response, "points-changed", "notifications-changed")
    return _kit_page(kit, form, status=_status(200, form), stocks=stocks, live=live)


def _sold_out(kit: KitType | services.KitRules, stocks: Sequence[services.ShelfStock]):
    """A claim that met an empty shelf everywhere: htmx replaces the form with the news
    and the stock figures with zeros; without htmx, the kit page says the same."""
    if not is_fragment_request():  # the whole page: contents, picture, rules
        with db.reading():
            full = _kit_or_404(kit.id)
        return _kit_page(full, status=422, fragment=None, stocks=stocks, live=None)
    # Everyone who arrives after the last kit gets the same answer: each worker keeps it
    # rendered, keyed by all it shows (the stock as just read, the language).
    state = services.window_state(kit)
    key = ("kits.sold_out", kit.id, state, tuple(stocks), current_locale(), request.script_root)
    body = cached_briefly(
        key,
        lambda: render_block(
            "kits/kit.html", "sold_out", kit=kit, stocks=stocks, state=state, sold_out_now=True
        ),
    )
    response = make_response(body, 422)
    add_vary(response, "HX-Request")
    return response


def claim_qr(claim: KitClaim) -> str:
    """The claim's QR code: the absolute staff verification URL, as inline SVG."""
    url = url_for("kits.staff_verify", code=claim.pickup_code, _external=True)
    return qr_svg(url, title=claim.pickup_code)


@bp.get("/kits/claims/<int:claim_id>")
@roles_required()
def claim_page(claim_id: int):  # access: the member who claimed (others 404)
    claim = _own_claim_or_404(claim_id)
    return render(
        "kits/claim.html",
        fragment="status",
        claim=claim,
        qr=claim_qr(claim) if claim.status == "reserved" else None,
        form=ConfirmForm(),
    )


@bp.route("/kits/claims/<int:claim_id>/cancel", methods=["GET", "POST"])
@roles_required()
def cancel(claim_id: int):  # access: the member who claimed (others 404)
    claim = _own_claim_or_404(claim_id)
    form = ConfirmForm()
    if form.validate_on_submit():
        try:
            services.cancel(current_user, claim.id)
        except DomainError as error:
            attach_error(form, error)
        else:
            flash(_("Your claim is cancelled. You may claim this kit again."), "success")
            response = hx_redirect(url_for("kits.claim_page", claim_id=claim.id))
            return with_trigger(response, "points-changed")
    return render(
        "kits/cancel.html",
        fragment="form" if request.method == "POST" else "dialog",
        status=_status(200, form),
        claim=claim,
        form=form,
        as_dialog=is_fragment_request(),
    )


# --- staff: pickup verification -------------------------------------------------


@bp.get("/staff/pickup")
@roles_required("staff")
def staff_pickup():  # access: staff
    code_form = CodeForm(formdata=request.args if "code" in request.args else None)
    phone_form = PhoneForm(formdata=request.args if "phone" in request.args else None)
    found: list[KitClaim] | None = None
    if "code" in request.args and code_form.validate():
        try:
            code = services.normalize_code(code_form.code.data)
            if services.find_by_code(code) is None:
                raise DomainError(
                    _l("No claim has this code. Check it and try again."), field="code"
                )
        except DomainError as error:
            attach_error(code_form, error)
        else:
            return hx_redirect(url_for("kits.staff_verify", code=code))
    if "phone" in request.args and phone_form.validate():
        try:
            found = services.claims_by_phone(normalize_phone(phone_form.phone.data))
        except DomainError as error:
            attach_error(phone_form, error)
    status = 422 if code_form.errors or phone_form.errors else 200
    return render(
        "kits/staff_pickup.html",
        fragment="lookup",
        status=status,
        code_form=code_form,
        phone_form=phone_form,
        found=found,
    )


def _verify_page(
    code: str,
    *,
    error: Any = None,
    ship_form: ShipForm | None = None,
    status: int = 200,
    just_done: bool = False,
):
    claim = services.find_by_code(code)
    notice = None
    if claim is None:
        status = 404
    elif not services.can_hand_over(claim) and not just_done:
        notice = services.refusal(claim).message
    return render(
        "kits/staff_verify.html",
        fragment="claim",
        status=status,
        code=code,
        claim=claim,
        error=error,
        notice=notice,
        form=ConfirmForm(),
        ship_form=ship_form or ShipForm(),
    )


@bp.get("/staff/pickup/<code>")
@roles_required("staff")
def staff_verify(code: str):  # access: staff — the URL in each claim's QR code
    try:
        code = services.normalize_code(code)
    except DomainError as error:
        return render(
            "kits/staff_verify.html",
            fragment="claim",
            status=404,
            code=code,
            claim=None,
            error=error.message,
        )
    # ?done=1: the page right after this desk handed the kit over (no "already" warning)
    return _verify_page(code, just_done=request.args.get("done") == "1")


def _claim_by_code_or_404(code: str) -> KitClaim:
    try:
        found = services.find_by_code(services.normalize_code(code))
    except DomainError:
        found = None
    if found is None:
        abort(404)
    return found


@bp.post("/staff/pickup/<code>/picked-up")
@roles_required("staff")
def staff_mark_picked_up(code: str):  # access: staff
    claim = _claim_by_code_or_404(code)
    form = ConfirmForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        services.mark_picked_up(claim.id, current_user)
    except services.PickupRefused:
        db.session.rollback()
        return _verify_page(claim.pickup_code, status=422)  # the notice says why
    flash(_("Handed over: the kit is marked as picked up."), "success")
    return hx_redirect(url_for("kits.staff_verify", code=claim.pickup_code, done=1))


@bp.post("/staff/pickup/<code>/shipped")
@roles_required("staff")
def staff_mark_shipped(code: str):  # access: staff
    claim = _claim_by_code_or_404(code)
    form = ShipForm()
    if form.validate_on_submit():
        try:
            services.mark_shipped(claim.id, current_user, form.tracking_note.data)
        except DomainError as error:
            db.session.rollback()
            if isinstance(error, services.PickupRefused):
                return _verify_page(claim.pickup_code, error=error.message, status=422)
            attach_error(form, error)
        else:
            flash(_("Marked as shipped; the member has been told."), "success")
            return hx_redirect(url_for("kits.staff_verify", code=claim.pickup_code, done=1))
    return _verify_page(claim.pickup_code, ship_form=form, status=422)


# --- staff: kit types -----------------------------------------------------------


@bp.get("/staff/kits")
@roles_required("staff")
def staff_kits():  # access: staff
    kits = list(db.session.scalars(services.with_details(sa.select(KitType)).order_by(KitType.id)))
    return render(
        "kits/staff_kits.html",
        kits=kits,
        figures=services.figures_by_kit(),
        total=services.total_figures(),
        stocks=services.stocks_for([kit.id for kit in kits]),
        states={kit.id: services.window_state(kit) for kit in kits},
    )


def _kit_form(kit: KitType | None = None) -> KitTypeForm:
    form = KitTypeForm(obj=None)
    if kit is not None and request.method == "GET":
        form.name.data = kit.name
        form.description.data = kit.description
        form.contents.data = services.format_contents(kit)
        form.opens_at.data = services.utc_to_local_naive(kit.opens_at)
        form.closes_at.data = services.utc_to_local_naive(kit.closes_at)
        form.points_cost.data = kit.points_cost
        form.required_tag.data = kit.required_tag or ""
        form.enterprise_ids.data = [e.id for e in kit.enterprises]
        form.branch_ids.data = [b.id for b in kit.branches]
        form.delivery_allowed.data = kit.delivery_allowed
        form.active.data = kit.active
    form.enterprise_ids.choices = [
        (i, name)
        for i, name in db.session.execute(
            sa.select(Enterprise.id, Enterprise.name).order_by(Enterprise.name)
        )
    ]
    form.branch_ids.choices = [
        (i, name)
        for i, name in db.session.execute(
            sa.select(UnionBranch.id, UnionBranch.name).order_by(UnionBranch.name)
        )
    ]
    return form


def _save_kit(kit: KitType | None):
    form = _kit_form(kit)
    if form.validate_on_submit():
        try:
            picture_id = None
            if form.picture.data:
                picture_id = save_upload(
                    form.picture.data,
                    kinds=IMAGES,
                    uploaded_by=current_user.id,
                    field="picture",
                ).id
            saved = services.save_kit_type(
                current_user,
                kit,
                name=form.name.data,
                description=form.description.data,
                contents=form.contents.data,
                opens_at=services.local_to_utc(form.opens_at.data),
                closes_at=services.local_to_utc(form.closes_at.data),
                points_cost=form.points_cost.data,
                required_tag=form.required_tag.data,
                enterprise_ids=form.enterprise_ids.data or [],
                branch_ids=form.branch_ids.data or [],
                delivery_allowed=form.delivery_allowed.data,
                active=form.active.data,
                picture_id=picture_id,
            )
        except DomainError as error:
            db.session.rollback()
            attach_error(form, error)
        else:
            flash(_("Kit saved."), "success")
            return hx_redirect(url_for("kits.staff_stock", kit_id=saved.id))
    return render(
        "kits/staff_kit_form.html", fragment="form", form=form, kit=kit, status=_status(200, form)
    )


@bp.route("/staff/kits/new", methods=["GET", "POST"])
@roles_required("staff")
def staff_kit_new():  # access: staff
    return _save_kit(None)


@bp.route("/staff/kits/<int:kit_id>/edit", methods=["GET", "POST"])
@roles_required("staff")
def staff_kit_edit(kit_id: int):  # access: staff
    return _save_kit(load_or_404(KitType, kit_id))


@bp.route("/staff/kits/<int:kit_id>/stock", methods=["GET", "POST"])
@roles_required("staff")
def staff_stock(kit_id: int):  # access: staff
    kit = load_or_404(KitType, kit_id)
    form = StockForm()
    form.point.choices = [
        (i, name)
        for i, name in db.session.execute(
            sa.select(PickupPoint.id, PickupPoint.name).order_by(PickupPoint.name)
        )
    ]
    if form.validate_on_submit():
        try:
            services.adjust_stock(
                current_user, kit.id, form.point.data, form.delta.data, form.reason.data
            )
        except DomainError as error:
            db.session.rollback()
            attach_error(form, error)
        else:
            flash(_("Stock updated."), "success")
            return hx_redirect(url_for("kits.staff_stock", kit_id=kit.id))
    stocks = list(
        db.session.scalars(
            sa.select(KitStock).where(KitStock.kit_type_id == kit.id).order_by(KitStock.point_id)
        )
    )
    moves = db.session.execute(
        sa.select(StockMove, PickupPoint.name)
        .join(KitStock, KitStock.id == StockMove.stock_id)
        .join(PickupPoint, PickupPoint.id == KitStock.point_id)
        .where(KitStock.kit_type_id == kit.id)
        .order_by(StockMove.id.desc())
        .limit(50)
    ).all()
    return render(
        "kits/staff_stock.html",
        fragment="form",
        status=_status(200, form),
        kit=kit,
        form=form,
        stocks=stocks,
        moves=moves,
    )


# --- staff: pickup points -------------------------------------------------------


@bp.get("/staff/kits/points")
@roles_required("staff")
def staff_points():  # access: staff
    points = list(db.session.scalars(sa.select(PickupPoint).order_by(PickupPoint.name)))
    return render("kits/staff_points.html", points=points)


def _save_point(point: PickupPoint | None):
    form = PointForm(obj=point if request.method == "GET" else None)
    if perform(
        form,
        lambda: services.save_point(
            current_user,
            point,
            name=form.name.data,
            address=form.address.data,
            hours=form.hours.data,
            active=form.active.data,
        ),
    ):
        flash(_("Pickup point saved."), "success")
        return hx_redirect(url_for("kits.staff_points"))
    return render(
        "kits/staff_point_form.html",
        fragment="form",
        form=form,
        point=point,
        status=_status(200, form),
    )


@bp.route("/staff/kits/points/new", methods=["GET", "POST"])
@roles_required("staff")
def staff_point_new():  # access: staff
    return _save_point(None)


@bp.route("/staff/kits/points/<int:point_id>/edit", methods=["GET", "POST"])
@roles_required("staff")
def staff_point_edit(point_id: int):  # access: staff
    return _save_point(load_or_404(PickupPoint, point_id))


# --- staff: claims list and export ----------------------------------------------


def _filter_form() -> tuple[ClaimFilterForm, dict[str, Any]]:
    form = ClaimFilterForm(formdata=request.args)
    form.kit.choices = [("", _("Any kit"))] + [
        (str(i), n) for i, n in db.session.execute(sa.select(KitType.id, KitType.name))
    ]
    form.point.choices = [("", _("Any point"))] + [
        (str(i), n)
        for i, n in db.session.execute(
            sa.select(PickupPoint.id, PickupPoint.name).order_by(PickupPoint.name)
        )
    ]
    form.validate()
    value = lambda f: None if f.errors else (f.data or None)  # noqa: E731
    filters = {
        "status": value(form.status),
        "kit_type_id": value(form.kit),
        "point_id": value(form.point),
        "mode": value(form.mode),
        "day_from": value(form.day_from),
        "day_to": value(form.day_to),
    }
    return form, filters


@bp.get("/staff/kits/claims")
@roles_required("staff")
def staff_claims():  # access: staff
    form, filters = _filter_form()
    page = paginate(services.claims_query(**filters), request.args.get("page"), per_page=30)
    args = {k: v for k, v in request.args.items() if k != "page" and v}
    return render("kits/staff_claims.html", fragment="results", form=form, page=page, args=args)


@bp.get("/staff/kits/claims.csv")
@roles_required("staff")
def staff_claims_csv():  # access: staff
    _form, filters = _filter_form()
    query = (
        services.claims_query(**filters)
        .options(so.joinedload(KitClaim.user))
        .execution_options(yield_per=500)
    )
    header = [
        _("Pickup code"), _("Kit"), _("Pickup point"), _("Mode"), _("Status"),
        _("Member number"), _("Name"), _("Mobile number"), _("Delivery address"),
        _("Claimed at"), _("Reserved until"), _("Picked up / shipped at"), _("Tracking note"),
    ]  # fmt: skip

    def rows():
        for claim in db.session.scalars(query):
            yield [
                claim.pickup_code,
                claim.kit_type.name,
                claim.point.name,
                str(MODE_LABELS[claim.mode]),
                str(STATUS_LABELS[claim.status]),
                claim.user.member_no,
                claim.user.name,
                claim.user.phone,
                claim.delivery_address,
                local_datetime(claim.created_at, "short"),
                local_datetime(claim.expires_at, "short"),
                local_datetime(claim.picked_up_at or claim.shipped_at, "short"),
                claim.tracking_note,
            ]

    return csv_response("kit-claims.csv", header, rows())
