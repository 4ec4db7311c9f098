"""Legal services: the menu (/legal), requests (/legal/requests/<id>), the lawyer desk
(/lawyer), admin lists and figures (/legal/admin) and menu editing (/legal/manage)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from functools import wraps
from typing import Any

import sqlalchemy as sa
from flask import Blueprint, abort, flash, g, request, url_for
from flask_login import current_user
from jinja2_fragments.flask import render_block
from markupsafe import Markup

import memberplatform.legal.hooks  # noqa: F401  (registers messages, checks, panels)
from memberplatform.core.cache import cached_briefly
from memberplatform.core.csvio import csv_response
from memberplatform.core.errors import DomainError, Forbidden, NotFound
from memberplatform.core.pagination import paginate
from memberplatform.core.uploads import send_upload
from memberplatform.db import mark_write_intent, utcnow
from memberplatform.extensions import db
from memberplatform.legal import forms, services, sla
from memberplatform.legal.models import (
    STATUSES,
    Category,
    ConsultationSession,
    Hotline,
    LegalRequest,
    MenuItem,
)
from memberplatform.web import (
    hx_redirect,
    is_fragment_request,
    load_or_404,
    render,
    roles_required,
)
from memberplatform.web.forms import attach_error, perform
from memberplatform.web.i18n import current_locale
from memberplatform.web.i18n import gettext as _

bp = Blueprint("legal", __name__)


def writes(view: Callable[..., Any]) -> Callable[..., Any]:
    """A GET view that writes (audit of views): BEGIN IMMEDIATE before the first query."""

    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        mark_write_intent()
        return view(*args, **kwargs)

    return wrapped


def _english() -> bool:
    locale = current_locale()  # asked once per listed item
    return locale is not None and locale.language == "en"


def item_title(item: MenuItem) -> str:
    return item.title_en if _english() and item.title_en else item.title


def category_name(category: Category) -> str:
    return category.name_en if _english() and category.name_en else category.name


def duration_text(seconds: int) -> str:
    hours, minutes = divmod(max(0, seconds) // 60, 60)
    if hours:
        return _("%(h)s h %(m)s min", h=hours, m=minutes)
    return _("%(m)s min", m=minutes)


def clock_of(legal_request: LegalRequest, now: datetime | None = None) -> tuple[str, str] | None:
    """(css class, text) of the SLA clock, or None when the lawyer is not on the clock."""
    if legal_request.status not in ("submitted", "assigned"):
        return None
    overdue, seconds = sla.clock(legal_request.due_at, now or utcnow())
    if overdue:
        return "status-bad", _("Overdue by %(time)s", time=duration_text(seconds))
    css = "status-warn" if seconds < 2 * 3600 else "status-ok"
    return css, _("%(time)s left", time=duration_text(seconds))


@bp.context_processor
def _helpers() -> dict[str, Any]:
    return {
        "item_title": item_title,
        "category_name": category_name,
        "clock_of": clock_of,
        "duration_text": duration_text,
        "STATUS_LABELS": services.STATUS_LABELS,
        "STATUS_CLASSES": services.STATUS_CLASSES,
        "ACTION_LABELS": services.ACTION_LABELS,
        "MESSAGE_LABELS": services.MESSAGE_LABELS,
        "field_specs": services.field_specs,
        "is_admin": lambda: current_user.is_authenticated and "admin" in current_user.roles,
    }


def load_request(request_id: int) -> LegalRequest:
    """The request, or 404 for unknown ids *and* for anyone not allowed to see it."""
    legal_request = db.session.get(LegalRequest, request_id)
    if legal_request is None or not services.can_view(current_user, legal_request):
        abort(404)
    return legal_request


def _files() -> list:
    return request.files.getlist("attachments")


def _refused(error: DomainError) -> None:
    """Forbidden/NotFound from a service become 403/404 pages."""
    if isinstance(error, Forbidden):
        abort(403)
    if isinstance(error, NotFound):
        abort(404)


# --- the menu ------------------------------------------------------------------------


@bp.get("/legal")
def index():  # access: anyone
    # The menu, the hotlines and the live sessions are the same for everyone in one
    # language: each worker keeps them rendered for a moment (PROGRESS_CACHE_SECONDS).
    key = ("legal.public", current_locale(), request.script_root)
    return render("legal/index.html", public=cached_briefly(key, _public_part))


def _public_part() -> Markup:
    # rendered by our own template, which escapes every value it writes
    return Markup(  # noqa: S704  # nosec B704
        render_block(
            "legal/index.html",
            "public",
            menu=services.menu(),
            hotlines=services.hotlines(),
            sessions=services.upcoming_sessions(utcnow()),
        )
    )


@bp.route("/legal/<int:item_id>/request", methods=["GET", "POST"])
@roles_required("member")
def request_form(item_id: int):  # access: members
    item = load_or_404(MenuItem, item_id)
    if item.status != "active":
        abort(404)
    form = forms.request_form_for(item)
    if form.validate_on_submit():
        values = {spec.name: form[spec.form_name].data for spec in services.field_specs(item)}
        try:
            created = services.submit_request(
                current_user,
                item,
                question=form.question.data,
                values=values,
                enterprise_name=form.enterprise_name.data if form.on_behalf.data else None,
                other_party=form.other_party.data,
                files=_files(),
            )
        except DomainError as error:
            db.session.rollback()
            attach_error(form, error)
        else:
            flash(_("Your request %(number)s has been sent.", number=created.number), "success")
            return hx_redirect(url_for("legal.request_detail", request_id=created.id))
    status = 422 if form.errors or form.form_errors else 200
    return render("legal/request_form.html", fragment="form", status=status, form=form, item=item)


@bp.get("/legal/requests")
@roles_required()
def my_requests():  # access: any logged-in user (their own requests)
    page = paginate(services.my_requests_query(current_user), request.args.get("page"))
    return render("legal/my_requests.html", fragment="list", page=page)


# --- one request ------------------------------------------------------------------------


def _detail(legal_request: LegalRequest, status: int = 200, fragment: str | None = None, **forms_):
    user = current_user
    mine = legal_request.requester_id == user.id
    lawyer = legal_request.lawyer_id == user.id
    admin = "admin" in user.roles
    context: dict[str, Any] = {
        "req": legal_request,
        "messages": services.thread(legal_request, user),
        "events": services.events(legal_request) if (lawyer or admin) else [],
        "mine": mine,
        "is_lawyer": lawyer,
        "admin": admin,
        "internal": services.sees_internal(user, legal_request),
        "follow_form": forms_.get("follow_form") or forms.FollowUpForm(formdata=None),
        "reply_form": forms_.get("reply_form") or forms.ReplyForm(formdata=None),
        "note_form": forms_.get("note_form") or forms.NoteForm(formdata=None),
        "hand_back_form": forms.HandBackForm(formdata=None),
        "close_form": forms.CloseForm(formdata=None),
        "rate_form": forms_.get("rate_form") or forms.RateForm(formdata=None),
        "reassign_form": forms_.get("reassign_form") or _reassign_form(legal_request, None),
        "clock": clock_of(legal_request),
        "conflict_error": forms_.get("conflict_error"),
    }
    return render("legal/request.html", fragment=fragment, status=status, **context)


def _reassign_form(legal_request: LegalRequest, formdata=None) -> forms.ReassignForm:
    form = forms.ReassignForm(formdata=formdata)
    form.lawyer_id.choices = [
        (lawyer.id, lawyer.name)
        for lawyer in services.lawyers()
        if lawyer.id != legal_request.lawyer_id
    ]
    return form


@bp.get("/legal/requests/<int:request_id>")
@writes
@roles_required()
def request_detail(request_id: int):  # access: requester, assigned lawyer, admins (else 404)
    legal_request = load_request(request_id)
    services.record_view(current_user, legal_request)
    return _detail(legal_request)


@bp.post("/legal/requests/<int:request_id>/follow-up")
@roles_required()
def follow_up(request_id: int):  # access: the requester (others 404/403)
    legal_request = load_request(request_id)
    if legal_request.requester_id != current_user.id:
        abort(403)
    form = forms.FollowUpForm()
    if perform(
        form,
        lambda: services.follow_up(current_user, legal_request, form.body.data, files=_files()),
        on_refused=_refused,
    ):
        flash(_("Your message has been sent."), "success")
        return hx_redirect(url_for("legal.request_detail", request_id=request_id))
    return _detail(legal_request, 422, "follow_form", follow_form=form)


@bp.post("/legal/requests/<int:request_id>/reply")
@roles_required("lawyer")
def reply(request_id: int):  # access: the assigned lawyer (others 404/403)
    legal_request = load_request(request_id)
    if legal_request.lawyer_id != current_user.id:
        abort(403)
    form = forms.ReplyForm()
    action = request.form.get("action", "answer")
    if action not in ("answer", "ask_info"):
        abort(400)
    operation = services.answer if action == "answer" else services.ask_for_information
    if perform(
        form,
        lambda: operation(current_user, legal_request, form.body.data, files=_files()),
        on_refused=_refused,
    ):
        flash(_("Your reply has been sent to the member."), "success")
        return hx_redirect(url_for("legal.request_detail", request_id=request_id))
    return _detail(legal_request, 422, "reply_form", reply_form=form)


@bp.post("/legal/requests/<int:request_id>/hand-back")
@roles_required("lawyer")
def hand_back(request_id: int):  # access: the assigned lawyer (others 404/403)
    legal_request = load_request(request_id)
    if legal_request.lawyer_id != current_user.id:
        abort(403)
    form = forms.HandBackForm()
    if form.validate_on_submit():
        try:
            services.hand_back(current_user, legal_request, form.reason.data or "")
        except DomainError as error:
            db.session.rollback()
            _refused(error)
            flash(str(error.message), "error")
            return hx_redirect(url_for("legal.request_detail", request_id=request_id))
        flash(_("The request is back in the queue."), "success")
        return hx_redirect(url_for("legal.lawyer_queue"))
    abort(400)


@bp.post("/legal/requests/<int:request_id>/notes")
@roles_required("lawyer")
def add_note(request_id: int):  # access: the assigned lawyer and admins (others 404/403)
    legal_request = load_request(request_id)
    if not services.sees_internal(current_user, legal_request):
        abort(403)
    form = forms.NoteForm()
    if perform(
        form,
        lambda: services.add_note(current_user, legal_request, form.note.data),
        on_refused=_refused,
    ):
        return hx_redirect(url_for("legal.request_detail", request_id=request_id) + "#notes")
    return _detail(legal_request, 422, "note_form", note_form=form)


@bp.post("/legal/requests/<int:request_id>/close")
@roles_required()
def close(request_id: int):  # access: the requester and admins (others 404/403)
    legal_request = load_request(request_id)
    form = forms.CloseForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        services.close(current_user, legal_request)
    except DomainError as error:
        db.session.rollback()
        _refused(error)
        flash(str(error.message), "error")
    else:
        flash(_("The request is closed."), "success")
    return hx_redirect(url_for("legal.request_detail", request_id=request_id))


@bp.post("/legal/requests/<int:request_id>/rate")
@roles_required()
def rate(request_id: int):  # access: the requester (others 404/403)
    legal_request = load_request(request_id)
    if legal_request.requester_id != current_user.id:
        abort(403)
    form = forms.RateForm()
    if perform(
        form,
        lambda: services.rate(
            current_user, legal_request, int(form.rating.data), form.comment.data or ""
        ),
        on_refused=_refused,
    ):
        flash(_("Thank you for your rating."), "success")
        return hx_redirect(url_for("legal.request_detail", request_id=request_id))
    return _detail(legal_request, 422, "rate_form", rate_form=form)


@bp.post("/legal/requests/<int:request_id>/reassign")
@roles_required("admin")
def reassign(request_id: int):  # access: admins
    legal_request = load_request(request_id)
    form = _reassign_form(legal_request, request.form)
    if form.validate_on_submit():
        lawyer = load_or_404(services.User, form.lawyer_id.data)
        try:
            services.reassign(current_user, legal_request, lawyer)
        except DomainError as error:
            db.session.rollback()
            _refused(error)
            attach_error(form, error)
        else:
            flash(_("The request is now with %(name)s.", name=lawyer.name), "success")
            return hx_redirect(url_for("legal.request_detail", request_id=request_id))
    return _detail(legal_request, 422, "reassign_form", reassign_form=form)


@bp.get("/legal/requests/<int:request_id>/files/<int:attachment_id>")
@writes
@roles_required()
def attachment(request_id: int, attachment_id: int):  # access: who may see the request
    legal_request = load_request(request_id)
    try:
        found = services.attachment_of(legal_request, attachment_id, current_user)
    except NotFound:
        abort(404)
    if current_user.id != legal_request.requester_id:
        services.record(
            current_user,
            "legal.attachment.view",
            "legal_request",
            legal_request.id,
            {"attachment": found.id},
        )
    return send_upload(found.upload, inline=False)


# --- the lawyer desk ------------------------------------------------------------------------


def _queue_context(error: str | None = None) -> dict[str, Any]:
    user = current_user
    is_lawyer = "lawyer" in user.roles
    desk = services.desk_list_options()
    queue = paginate(
        services.queue_query(user).options(*desk), request.args.get("qpage"), per_page=20
    )
    status = request.args.get("status") or None
    if status not in STATUSES:
        status = None
    context = {
        "queue": queue,
        "case_status": status,
        "statuses": STATUSES,
        "is_lawyer": is_lawyer,
        "conflicts": services.client_keys(user) if is_lawyer else set(),
        "claim_error": error,
    }
    if is_fragment_request():  # the queue's block (its minute poll, a refused claim)
        return context
    counts = services.case_counts(user) if is_lawyer else {}
    # counted per status already: the page is read alone (a lawyer's history grows)
    total = counts.get(status, 0) if status else sum(counts.values())
    cases = paginate(
        services.cases_query(user, status).options(*desk),
        request.args.get("page"),
        per_page=20,
        total=total if is_lawyer else None,
    )
    return {**context, "cases": cases, "counts": counts}


@bp.get("/lawyer")
@roles_required("lawyer", "staff")
def lawyer_queue():  # access: lawyers (queue + own cases), staff (queue summary only)
    return render("legal/lawyer.html", fragment="queue", **_queue_context())


@bp.post("/lawyer/requests/<int:request_id>/claim")
@roles_required("lawyer")
def claim(request_id: int):  # access: lawyers
    legal_request = load_or_404(LegalRequest, request_id)
    try:
        services.claim(current_user, legal_request)
    except DomainError as error:
        db.session.rollback()
        return render(
            "legal/lawyer.html", fragment="queue", status=422, **_queue_context(str(error.message))
        )
    flash(_("You have taken request %(number)s.", number=legal_request.number), "success")
    return hx_redirect(url_for("legal.request_detail", request_id=request_id))


# --- admins ---------------------------------------------------------------------------------


def _filter_form() -> forms.FilterForm:
    form = forms.FilterForm(request.args)
    form.item.choices = [(0, _("All services"))] + [
        (item.id, item.title)
        for item in db.session.scalars(sa.select(MenuItem).order_by(MenuItem.position, MenuItem.id))
    ]
    if not form.validate():
        form = forms.FilterForm(formdata=None)
        form.item.choices = [(0, _("All services"))]
    return form


def _filtered_query(form: forms.FilterForm) -> sa.Select:
    return services.admin_query(
        item_id=form.item.data or None,
        status=form.status.data or None,
        overdue=bool(form.overdue.data),
    )


@bp.get("/legal/admin")
@roles_required("admin")
def admin_requests():  # access: admins
    form = _filter_form()
    page = paginate(_filtered_query(form), request.args.get("page"), per_page=25)
    filters = {k: v for k, v in request.args.items() if k != "page" and v}
    return render(
        "legal/admin.html",
        fragment="results",
        form=form,
        page=page,
        filters=filters,
        figures=services.figures(),
        now=utcnow(),
    )


@bp.get("/legal/admin/export.csv")
@writes
@roles_required("admin")
def export_csv():  # access: admins
    form = _filter_form()
    with_question = request.args.get("question") == "1"
    now = utcnow()
    services.record(
        current_user, "legal.export", "legal_request", None, {"question": with_question}
    )
    header = [
        _("Number"),
        _("Service"),
        _("Status"),
        _("Submitted"),
        _("Member"),
        _("Member number"),
        _("On behalf of"),
        _("Other party"),
        _("Lawyer"),
        _("First response"),
        _("First response (hours)"),
        _("Closed"),
        _("Overdue"),
        _("Rating"),
        _("Comment"),
    ]
    if with_question:
        header.append(_("Question"))
    query = _filtered_query(form)

    def rows():
        # The audit entry is committed before the body streams; reading needs no write lock.
        g.write_intent = False
        yield from services.export_rows(query, with_question=with_question, now=now)

    return csv_response(f"legal-requests-{now:%Y%m%d}.csv", header, rows())


@bp.route("/legal/admin/clients", methods=["GET", "POST"])
@roles_required("admin")
def clients():  # access: admins
    form = forms.ClientForm()
    form.lawyer_id.choices = [(lawyer.id, lawyer.name) for lawyer in services.lawyers()]
    if form.validate_on_submit():
        lawyer = load_or_404(services.User, form.lawyer_id.data)
        try:
            services.add_client(current_user, lawyer, form.enterprise_name.data)
        except DomainError as error:
            db.session.rollback()
            attach_error(form, error)
        else:
            flash(_("Saved."), "success")
            return hx_redirect(url_for("legal.clients"))
    status = 422 if form.errors or form.form_errors else 200
    names = {lawyer.id: lawyer.name for lawyer in services.lawyers()}
    return render(
        "legal/clients.html",
        fragment="form" if request.method == "POST" else "content",
        status=status,
        form=form,
        rows=services.clients(),
        names=names,
    )


@bp.post("/legal/admin/clients/remove")
@roles_required("admin")
def remove_client():  # access: admins
    form = forms.CloseForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        services.remove_client(
            current_user, int(request.form.get("lawyer_id", "0") or 0), request.form.get("key", "")
        )
    except (DomainError, ValueError):
        abort(404)
    flash(_("Removed."), "success")
    return hx_redirect(url_for("legal.clients"))


# --- staff: the menu, hotlines, live sessions ------------------------------------------------


@bp.get("/legal/manage")
@roles_required("staff")
def manage():  # access: staff
    used = set(db.session.scalars(sa.select(LegalRequest.item_id).distinct()))
    return render(
        "legal/manage.html",
        menu=services.menu(include_retired=True),
        used=used,
        hotlines=db.session.scalars(sa.select(Hotline).order_by(Hotline.position, Hotline.id)),
        sessions=db.session.scalars(
            sa.select(ConsultationSession).order_by(ConsultationSession.starts_at.desc()).limit(50)
        ),
        close_form=forms.CloseForm(formdata=None),
    )


def _edit_page(form, title: str, action: str, saved: bool, extra: dict | None = None):
    status = 422 if form.errors or form.form_errors else 200
    return render(
        "legal/manage_form.html",
        fragment="form",
        status=status,
        form=form,
        title=title,
        action=action,
        **(extra or {}),
    )


@bp.route("/legal/manage/categories/new", methods=["GET", "POST"])
@bp.route("/legal/manage/categories/<int:category_id>", methods=["GET", "POST"])
@roles_required("staff")
def edit_category(category_id: int | None = None):  # access: staff
    category = load_or_404(Category, category_id) if category_id else None
    form = forms.CategoryForm(obj=category)
    if form.validate_on_submit():
        try:
            services.save_category(
                current_user,
                category,
                name=form.name.data,
                name_en=form.name_en.data,
                position=form.position.data or 0,
            )
        except DomainError as error:
            db.session.rollback()
            attach_error(form, error)
        else:
            flash(_("Saved."), "success")
            return hx_redirect(url_for("legal.manage"))
    title = _("Edit category") if category else _("New category")
    return _edit_page(form, title, request.path, False)


@bp.route("/legal/manage/items/new", methods=["GET", "POST"])
@bp.route("/legal/manage/items/<int:item_id>", methods=["GET", "POST"])
@roles_required("staff")
def edit_item(item_id: int | None = None):  # access: staff
    item = load_or_404(MenuItem, item_id) if item_id else None
    form = forms.ItemForm(obj=item)
    form.category_id.choices = [
        (c.id, c.name) for c in db.session.scalars(sa.select(Category).order_by(Category.position))
    ]
    form.lawyer_ids.choices = [(lawyer.id, lawyer.name) for lawyer in services.lawyers()]
    if request.method == "GET" and item is not None:
        import json

        form.fields.data = json.dumps(item.fields, ensure_ascii=False, indent=1)
        form.lawyer_ids.data = sorted(item.lawyer_ids)
    if form.validate_on_submit():
        try:
            services.save_item(
                current_user,
                item,
                category_id=form.category_id.data,
                code=form.code.data,
                title=form.title.data,
                title_en=form.title_en.data,
                description=form.description.data,
                prepare=form.prepare.data or "",
                sla_hours=form.sla_hours.data,
                fields=form.fields.data or "",
                lawyer_ids=form.lawyer_ids.data or [],
                position=form.position.data or 0,
            )
        except DomainError as error:
            db.session.rollback()
            attach_error(form, error)
        else:
            flash(_("Saved."), "success")
            return hx_redirect(url_for("legal.manage"))
    title = _("Edit service") if item else _("New service")
    return _edit_page(form, title, request.path, False)


@bp.post("/legal/manage/items/<int:item_id>/<any(retire, restore, delete):action>")
@roles_required("staff")
def item_status(item_id: int, action: str):  # access: staff
    item = load_or_404(MenuItem, item_id)
    if not forms.CloseForm().validate_on_submit():
        abort(400)
    try:
        if action == "delete":
            services.delete_item(current_user, item)
            flash(_("The service was deleted."), "success")
        else:
            services.set_item_status(
                current_user, item, "retired" if action == "retire" else "active"
            )
            flash(_("Saved."), "success")
    except DomainError as error:
        db.session.rollback()
        flash(str(error.message), "error")
    return hx_redirect(url_for("legal.manage"))


@bp.route("/legal/manage/hotlines/new", methods=["GET", "POST"])
@bp.route("/legal/manage/hotlines/<int:hotline_id>", methods=["GET", "POST"])
@roles_required("staff")
def edit_hotline(hotline_id: int | None = None):  # access: staff
    hotline = load_or_404(Hotline, hotline_id) if hotline_id else None
    form = forms.HotlineForm(obj=hotline)
    if perform(
        form,
        lambda: services.save_hotline(
            current_user,
            hotline,
            name=form.name.data,
            number=form.number.data,
            hours=form.hours.data,
            active=form.active.data,
        ),
    ):
        flash(_("Saved."), "success")
        return hx_redirect(url_for("legal.manage"))
    title = _("Edit hotline") if hotline else _("New hotline")
    return _edit_page(form, title, request.path, False)


@bp.route("/legal/manage/sessions/new", methods=["GET", "POST"])
@bp.route("/legal/manage/sessions/<int:session_id>", methods=["GET", "POST"])
@roles_required("staff")
def edit_session(session_id: int | None = None):  # access: staff
    session = load_or_404(ConsultationSession, session_id) if session_id else None
    form = forms.SessionForm(obj=session)
    if request.method == "GET" and session is not None:
        form.starts_at.data = session.starts_at.astimezone(sla.SHANGHAI).replace(tzinfo=None)
    if form.validate_on_submit():
        try:
            services.save_session(
                current_user,
                session,
                title=form.title.data,
                speaker=form.speaker.data,
                starts_at=form.starts_at.data.replace(tzinfo=sla.SHANGHAI),
                duration_minutes=form.duration_minutes.data,
                venue=form.venue.data or "",
                description=form.description.data or "",
                cancelled=form.cancelled.data,
            )
        except DomainError as error:
            db.session.rollback()
            attach_error(form, error)
        else:
            flash(_("Saved."), "success")
            return hx_redirect(url_for("legal.manage"))
    title = _("Edit live session") if session else _("New live session")
    return _edit_page(form, title, request.path, False)
