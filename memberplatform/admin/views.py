"""The union staff console (/admin/*), the public impact page (/impact) and the
one-time password links members open (/account/reset/<token>).

Staff may use the console; a staff user limited to one branch sees only its
members (404 for any other). Admins may do everything, and only admins change
roles, branch limits and the union structure.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from datetime import date
from functools import wraps
from typing import Any

import sqlalchemy as sa
from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    g,
    redirect,
    request,
    url_for,
)
from flask_login import current_user

from memberplatform.admin import hooks, services
from memberplatform.admin.forms import (
    ActionForm,
    NameForm,
    NewPasswordForm,
    RolesForm,
    RosterConfirmForm,
    RosterUploadForm,
    ScopeForm,
    TagsForm,
)
from memberplatform.admin.models import StaffScope
from memberplatform.audit.services import record
from memberplatform.auth.models import Enterprise, UnionBranch, User
from memberplatform.core import registry
from memberplatform.core.cache import cached_figures
from memberplatform.core.csvio import csv_response
from memberplatform.core.errors import DomainError, Forbidden, NotFound
from memberplatform.core.pagination import paginate
from memberplatform.db import mark_write_intent
from memberplatform.extensions import db, limiter
from memberplatform.points.services import balance_of
from memberplatform.web import hx_redirect, is_fragment_request, load_or_404, render, roles_required
from memberplatform.web.forms import attach_error
from memberplatform.web.i18n import gettext as _
from memberplatform.web.i18n import local_datetime

bp = Blueprint("admin", __name__)

BAD_ROWS_SHOWN = 1000  # a roster preview lists at most this many rows with errors


# Template globals, not a context processor: a processor runs on every render.
TEMPLATE_LABELS = {
    "admin_role_labels": hooks.ROLE_LABELS,
    "admin_status_labels": hooks.STATUS_LABELS,
    "admin_status_classes": hooks.STATUS_CLASSES,
    "admin_tag_labels": hooks.TAG_LABELS,
    "admin_action_labels": hooks.ACTION_LABELS,
}
bp.record_once(lambda state: state.app.jinja_env.globals.update(TEMPLATE_LABELS))


@bp.app_template_filter("admin_changes")
def _format_changes(changes: Any) -> str:
    """An audit entry's changes as readable text: ``field: old → new``."""
    if not changes:
        return ""
    if not isinstance(changes, dict):
        return str(changes)
    parts = []
    for key, value in changes.items():
        if isinstance(value, list) and len(value) == 2:
            parts.append(f"{key}: {_plain(value[0])} → {_plain(value[1])}")
        else:
            parts.append(f"{key}: {_plain(value)}")
    return "; ".join(parts)


def _plain(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value) or "—"
    if isinstance(value, dict):
        return ", ".join(f"{k}={_plain(v)}" for k, v in value.items())
    return str(value)


def _scope() -> int | None:
    """The branch the current staff user is limited to (None: all), once per request."""
    if "admin_scope" not in g:
        g.admin_scope = services.staff_branch_id(current_user)
    return g.admin_scope


def _is_admin() -> bool:
    return "admin" in current_user.roles


def _member_or_404(user_id: int) -> User:
    try:
        return services.load_member(user_id, _scope())
    except NotFound:
        abort(404)


def _writes(view: Callable[..., Any]) -> Callable[..., Any]:
    """For GET views that write (an audit entry): the SQLite transaction starts as a writer."""

    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        mark_write_intent()
        return view(*args, **kwargs)

    return wrapped


def _stream(rows: Iterable[Any], line: Callable[[Any], list[Any]]) -> Iterator[list[Any]]:
    """Rows for a streamed CSV: read-only transactions from here on (no write lock held)."""
    g.pop("write_intent", None)
    for row in rows:
        yield line(row)


# --- home ------------------------------------------------------------------------------


def _panels() -> list[tuple[registry.Panel, dict[str, Any] | None]]:
    """Every domain's figures panel; one failing panel does not take the console down."""
    panels = []
    for panel in registry.admin_panels:
        try:
            with db.session.begin_nested():
                context = cached_figures(("admin-panel", panel.name), panel.context)
        except Exception:  # a broken panel shows "not available", the rest still works
            current_app.logger.exception("admin panel %s failed", panel.name)
            context = None
        panels.append((panel, context))
    return panels


@bp.get("/admin")
@roles_required("staff")
def index():
    scope = _scope()
    branch_id = services.effective_branch(scope, request.args.get("branch"))
    trend = cached_figures(("trend", branch_id), lambda: services.activation_trend(branch_id))
    context = {
        "branch_id": branch_id,
        "scope": scope,
        "figures": cached_figures(
            ("members", branch_id), lambda: services.member_figures(branch_id)
        ),
        "trend": [(day.strftime("%m-%d"), count) for day, count in trend],
        "trend_total": sum(count for _, count in trend),
    }
    if is_fragment_request():
        return render("admin/index.html", fragment="figures", **context)
    return render(
        "admin/index.html",
        branches=services.all_branches() if scope is None else [],
        scope_branch=db.session.get(UnionBranch, scope) if scope else None,
        panels=_panels(),
        **context,
    )


# --- members and accounts -------------------------------------------------------------


@bp.get("/admin/members")
@roles_required("staff")
def members():
    scope = _scope()
    branch_id = services.effective_branch(scope, request.args.get("branch"))
    q = (request.args.get("q") or "").strip()[:50]
    status = request.args.get("status") or ""
    status = status if status in services.STATUSES else ""
    page = paginate(services.member_search(branch_id, q, status), request.args.get("page"), 20)
    return render(
        "admin/members.html",
        fragment="results",
        page=page,
        q=q,
        state=status,
        branch_id=branch_id,
        scope=scope,
        branches=services.all_branches() if scope is None else [],
        pending=services.pending_count(branch_id),
    )


def _has_endpoint(endpoint: str) -> bool:
    return endpoint in current_app.view_functions


def _member_links(user: User) -> list[tuple[Any, str]]:
    return [
        (label, url_for(endpoint, **({param: user.id} if param else {})))
        for label, endpoint, param in hooks.MEMBER_LINKS
        if _has_endpoint(endpoint)
    ]


def _member_context(user: User, **extra: Any) -> dict[str, Any]:
    """The member page; forms not given are fresh (never bound to this request's data)."""
    scope_row = db.session.get(StaffScope, user.id)
    branches = services.all_branches() if _is_admin() else []
    scope_form = extra.pop("scope_form", None) or ScopeForm(
        formdata=None, branch=str(scope_row.branch_id) if scope_row else ""
    )
    scope_form.branch.choices = [("", _("All branches"))] + [(str(b.id), b.name) for b in branches]
    return {
        "member": user,
        "balance": balance_of(user),
        "links": _member_links(user),
        "manage": services.can_manage(current_user, user),
        "is_admin": _is_admin(),
        "is_self": user.id == current_user.id,
        "staff_scope": db.session.get(UnionBranch, scope_row.branch_id) if scope_row else None,
        "roles_form": extra.pop("roles_form", None)
        or RolesForm(formdata=None, roles=sorted(user.roles)),
        "tags_form": extra.pop("tags_form", None)
        or TagsForm(formdata=None, tags=", ".join(sorted(user.tags))),
        "scope_form": scope_form,
        "action_form": extra.pop("action_form", None) or ActionForm(),
        **extra,
    }


@bp.get("/admin/members/<int:user_id>")
@roles_required("staff")
def member(user_id: int):
    return render("admin/member.html", **_member_context(_member_or_404(user_id)))


def _changed(user: User, block: str, message: str) -> Response:
    """After a change: the updated block for htmx, or back to the member page."""
    if is_fragment_request():
        db.session.flush()
        return render("admin/member.html", fragment=block, **_member_context(user, notice=message))
    flash(message, "success")
    return redirect(url_for(".member", user_id=user.id), code=303)


def _refused(user: User, block: str, **forms: Any) -> Response:
    return render("admin/member.html", fragment=block, status=422, **_member_context(user, **forms))


def _member_action(
    user_id: int, block: str, action: Callable[[User], Any], message: Callable[[Any], str]
) -> Response:
    """Run a button action (disable, enable, approve, reset) on a member in scope."""
    user = _member_or_404(user_id)
    form = ActionForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        result = action(user)
    except Forbidden:
        abort(403)
    except DomainError as error:
        attach_error(form, error)
        return _refused(user, block, action_form=form)
    return _changed(user, block, message(result))


@bp.post("/admin/members/<int:user_id>/disable")
@roles_required("staff")
def member_disable(user_id: int):
    return _member_action(
        user_id,
        "account",
        lambda user: services.disable_account(current_user, user),
        lambda _r: _("The account is disabled and logged out everywhere."),
    )


@bp.post("/admin/members/<int:user_id>/enable")
@roles_required("staff")
def member_enable(user_id: int):
    return _member_action(
        user_id,
        "account",
        lambda user: services.enable_account(current_user, user),
        lambda _r: _("The account is enabled."),
    )


@bp.post("/admin/members/<int:user_id>/approve")
@roles_required("staff")
def member_approve(user_id: int):
    return _member_action(
        user_id,
        "account",
        lambda user: services.approve_account(current_user, user),
        lambda _r: _("The registration is approved; the member can log in."),
    )


@bp.post("/admin/members/<int:user_id>/reset")
@roles_required("staff")
def member_reset(user_id: int):
    user = _member_or_404(user_id)
    form = ActionForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        issued = services.issue_password_reset(current_user, user)
    except Forbidden:
        abort(403)
    except DomainError as error:
        attach_error(form, error)
        return _refused(user, "account", action_form=form)
    link = url_for(".reset_password", token=issued.token, _external=True)
    response = render(
        "admin/member.html",
        fragment="account",
        **_member_context(user, reset_link=link, reset_expires=issued.expires_at),
    )
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/admin/members/<int:user_id>/roles")
@roles_required("admin")
def member_roles(user_id: int):
    user = _member_or_404(user_id)
    form = RolesForm()
    if form.validate_on_submit():
        try:
            changed = services.change_roles(current_user, user, form.roles.data or [])
        except DomainError as error:
            attach_error(form, error)
        else:
            return _changed(
                user, "roles", _("Roles saved.") if changed else _("Nothing was changed.")
            )
    return _refused(user, "roles", roles_form=form)


@bp.post("/admin/members/<int:user_id>/tags")
@roles_required("staff")
def member_tags(user_id: int):
    user = _member_or_404(user_id)
    form = TagsForm()
    if form.validate_on_submit():
        try:
            changed = services.change_tags(
                current_user, user, services.parse_tags(form.tags.data or "")
            )
        except Forbidden:
            abort(403)
        except DomainError as error:
            attach_error(form, error)
        else:
            return _changed(
                user, "tags", _("Tags saved.") if changed else _("Nothing was changed.")
            )
    return _refused(user, "tags", tags_form=form)


@bp.post("/admin/members/<int:user_id>/scope")
@roles_required("admin")
def member_scope(user_id: int):
    user = _member_or_404(user_id)
    form = ScopeForm()
    if not form.validate_on_submit():
        abort(400)
    raw = form.branch.data or ""
    branch = load_or_404(UnionBranch, int(raw)) if raw.isdigit() else None
    if raw and branch is None:
        abort(404)
    try:
        services.set_staff_scope(current_user, user, branch)
    except DomainError as error:
        attach_error(form, error)
        return _refused(user, "roles", scope_form=form)
    return _changed(user, "roles", _("Branch limit saved."))


# --- roster import ---------------------------------------------------------------------


@bp.route("/admin/roster", methods=["GET", "POST"])
@roles_required("staff")
def roster():
    form = RosterUploadForm()
    if form.validate_on_submit():
        try:
            sha = services.store_roster(form.file.data.read(), owner_id=current_user.id)
        except DomainError as error:
            attach_error(form, error)
        else:
            return hx_redirect(url_for(".roster_preview", sha=sha))
    status = 422 if form.errors or form.form_errors else 200
    return render("admin/roster.html", fragment="form", form=form, status=status)


def _preview(sha: str, form: RosterConfirmForm, fragment: str, status: int = 200) -> Response:
    if not services.may_read_roster(sha, current_user):
        abort(404)
    try:
        rows = services.check_roster(
            current_user, services.decode_roster(services.read_roster(sha))
        )
    except NotFound:
        abort(404)
    except DomainError:  # the stored file was checked on upload; it cannot be read now
        abort(404)
    good = [row for row in rows if row.ok]
    return render(
        "admin/roster_preview.html",
        fragment=fragment,
        status=status,
        sha=sha,
        summary=services.summarize(rows),
        bad=[row for row in rows if not row.ok][:BAD_ROWS_SHOWN],
        bad_shown=BAD_ROWS_SHOWN,
        sample=good[:20],
        form=form,
    )


@bp.get("/admin/roster/<sha>")
@roles_required("staff")
def roster_preview(sha: str):
    if not services.SHA_RE.match(sha):
        abort(404)
    return _preview(sha, RosterConfirmForm(sha=sha), "content")


@bp.post("/admin/roster/confirm")
@roles_required("staff")
def roster_confirm():
    form = RosterConfirmForm()
    if not form.validate_on_submit():
        abort(400)
    sha = form.sha.data
    if not services.may_read_roster(sha, current_user):
        abort(404)
    try:
        counts = services.import_roster(current_user, sha)
    except NotFound:
        abort(404)
    except DomainError as error:
        form.form_errors.append(error.message)
        return _preview(sha, form, "confirm", status=422)
    services.discard_roster(sha)
    flash(
        _(
            "Roster imported: %(created)s new, %(updated)s updated, %(skipped)s rows skipped.",
            **counts,
        ),
        "success",
    )
    return hx_redirect(url_for(".members"))


# --- union structure -----------------------------------------------------------------


def _require_admin() -> None:
    if not _is_admin():
        abort(403)


@bp.route("/admin/branches", methods=["GET", "POST"])
@roles_required("staff")  # POST: admin only
def branches():
    form = NameForm()
    if request.method == "POST":
        _require_admin()
        if form.validate_on_submit():
            try:
                services.create_branch(current_user, form.name.data)
            except DomainError as error:
                attach_error(form, error)
            else:
                flash(_("Union branch added."), "success")
                return hx_redirect(url_for(".branches"))
    rows = db.session.execute(services.branches_with_counts(_scope())).all()
    status = 422 if form.errors or form.form_errors else 200
    return render(
        "admin/branches.html",
        fragment="create" if request.method == "POST" else "content",
        status=status,
        rows=rows,
        form=form,
        is_admin=_is_admin(),
    )


@bp.route("/admin/branches/<int:branch_id>", methods=["GET", "POST"])
@roles_required("staff")  # POST: admin only
def branch(branch_id: int):
    branch = load_or_404(UnionBranch, branch_id)
    scope = _scope()
    if scope is not None and branch.id != scope:
        abort(404)
    return _rename(branch, services.rename_branch, ".branches", kind="branch")


@bp.route("/admin/enterprises", methods=["GET", "POST"])
@roles_required("staff")  # POST: admin only
def enterprises():
    form = NameForm()
    if request.method == "POST":
        _require_admin()
        if form.validate_on_submit():
            try:
                services.create_enterprise(current_user, form.name.data)
            except DomainError as error:
                attach_error(form, error)
            else:
                flash(_("Enterprise added."), "success")
                return hx_redirect(url_for(".enterprises"))
    q = (request.args.get("q") or "").strip()[:50]
    page = paginate(
        services.enterprises_with_counts(_scope(), q), request.args.get("page"), 30, scalars=False
    )
    status = 422 if form.errors or form.form_errors else 200
    return render(
        "admin/enterprises.html",
        fragment="create" if request.method == "POST" else "results",
        status=status,
        page=page,
        q=q,
        form=form,
        is_admin=_is_admin(),
    )


@bp.route("/admin/enterprises/<int:enterprise_id>", methods=["GET", "POST"])
@roles_required("staff")  # POST: admin only
def enterprise(enterprise_id: int):
    enterprise = load_or_404(Enterprise, enterprise_id)
    scope = _scope()
    if scope is not None and not db.session.scalar(
        sa.select(User.id).where(User.enterprise_id == enterprise.id, User.branch_id == scope)
    ):
        abort(404)
    return _rename(enterprise, services.rename_enterprise, ".enterprises", kind="enterprise")


def _rename(obj: Any, rename: Callable[..., None], back: str, *, kind: str) -> Response:
    form = NameForm(obj=obj) if request.method == "GET" else NameForm()
    if request.method == "POST":
        _require_admin()
        if form.validate_on_submit():
            try:
                rename(current_user, obj, form.name.data)
            except DomainError as error:
                attach_error(form, error)
            else:
                flash(_("Name saved."), "success")
                return hx_redirect(url_for(back))
    status = 422 if form.errors or form.form_errors else 200
    members = db.session.scalar(
        sa.select(sa.func.count(User.id)).where(
            (User.branch_id if kind == "branch" else User.enterprise_id) == obj.id
        )
    )
    return render(
        "admin/rename.html",
        fragment="form",
        status=status,
        obj=obj,
        kind=kind,
        back=back,
        form=form,
        members=members,
        is_admin=_is_admin(),
    )


# --- audit trail ---------------------------------------------------------------------


def _audit_filter() -> services.AuditFilter:
    return services.AuditFilter(
        actor=(request.args.get("actor") or "").strip()[:50],
        object_type=(request.args.get("type") or "").strip()[:40],
        object_id=(request.args.get("object") or "").strip()[:40],
        since=services.parse_day(request.args.get("since")),
        until=services.parse_day(request.args.get("until")),
    )


def _audit_branch() -> int | None:
    """Entries about one branch: a scoped user's own, or the one an admin asks for."""
    return services.effective_branch(_scope(), request.args.get("branch"))


def _filter_args(filters: services.AuditFilter) -> dict[str, str]:
    branch = _audit_branch()
    args = {
        "branch": str(branch) if branch and _scope() is None else "",
        "actor": filters.actor,
        "type": filters.object_type,
        "object": filters.object_id,
        "since": filters.since.isoformat() if filters.since else "",
        "until": filters.until.isoformat() if filters.until else "",
    }
    return {key: value for key, value in args.items() if value}


@bp.get("/admin/audit")
@roles_required("staff")
def audit():
    # Read only: there is no route that edits or deletes an audit entry.
    filters = _audit_filter()
    page = paginate(
        services.audit_select(_audit_branch(), filters), request.args.get("page"), 50, scalars=False
    )
    return render(
        "admin/audit.html",
        fragment="results",
        page=page,
        filters=filters,
        args=_filter_args(filters),
        types=services.audit_object_types(),
    )


@bp.get("/admin/audit.csv")
@_writes
@roles_required("staff")
def export_audit():
    filters = _audit_filter()
    scope = _audit_branch()
    record(current_user, "export.audit", "audit", None, {"filters": _filter_args(filters)})
    header = [
        _("Entry"),
        _("Time"),
        _("By"),
        _("Phone"),
        _("Action"),
        _("Object"),
        _("Object id"),
        _("Changes"),
        _("IP address"),
    ]

    def line(row: Any) -> list[Any]:
        entry_id, created, name, phone, action, object_type, object_id, changes, ip = row
        label = hooks.ACTION_LABELS.get(action)
        return [
            entry_id,
            local_datetime(created, "yyyy-MM-dd HH:mm:ss"),
            name or "",
            phone or "",
            f"{label} ({action})" if label else action,
            object_type,
            object_id or "",
            _format_changes(changes),
            ip or "",
        ]

    rows = _stream(services.audit_rows(scope, filters), line)
    return csv_response(f"audit-{date.today():%Y%m%d}.csv", header, rows)


# --- exports -------------------------------------------------------------------------


@bp.get("/admin/exports")
@roles_required("staff")
def exports():
    scope = _scope()
    branch_id = services.effective_branch(scope, request.args.get("branch"))
    args = {"branch": branch_id} if branch_id else {}
    items = [
        (export.name, url_for(export.endpoint, **args))
        for export in registry.exports
        if _has_endpoint(export.endpoint) and current_user.has_role(*export.roles)
    ]
    return render(
        "admin/exports.html",
        items=items,
        branch_id=branch_id,
        scope=scope,
        branches=services.all_branches() if scope is None else [],
    )


@bp.get("/admin/exports/members.csv")
@_writes
@roles_required("staff")
def export_members():
    branch_id = services.effective_branch(_scope(), request.args.get("branch"))
    status = request.args.get("status") or ""
    record(
        current_user,
        "export.members",
        "user",
        None,
        {"branch_id": branch_id, "status": status or None},
    )
    header = [
        _("Name"),
        _("Phone"),
        _("Member number"),
        _("Enterprise"),
        _("Union branch"),
        _("Status"),
        _("Activated at"),
        _("Roles"),
        _("Tags"),
    ]

    def line(row: Any) -> list[Any]:
        _id, name, phone, member_no, enterprise, branch, state, activated, roles, tags = row
        return [
            name,
            phone,
            member_no or "",
            enterprise or "",
            branch or "",
            str(hooks.STATUS_LABELS.get(state, state)),
            local_datetime(activated, "yyyy-MM-dd HH:mm") if activated else "",
            ", ".join(str(hooks.ROLE_LABELS.get(role, role)) for role in roles),
            ", ".join(tags),
        ]

    rows = _stream(services.member_rows(branch_id, status), line)
    return csv_response(f"members-{date.today():%Y%m%d}.csv", header, rows)


# --- public pages --------------------------------------------------------------------


@bp.get("/impact")
def impact():  # access: anyone (anonymised totals only)
    panels = [
        (panel, panel.context())
        for panel in registry.home_panels
        if panel.name != "admin.members_served"
    ]
    return render(
        "admin/impact.html",
        members_served=services.members_served(),
        totals=services.structure_totals(),
        panels=panels,
    )


def _reset_limit() -> str:
    return current_app.config["LOGIN_LIMIT_IP"]


def _reset_page(**context: Any) -> Response:
    response = render("admin/reset.html", fragment="form", **context)
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


@bp.route("/account/reset/<token>", methods=["GET", "POST"])
@limiter.limit(_reset_limit, methods=["POST"])
def reset_password(token: str):  # access: anyone holding a valid one-time link
    try:
        _reset, user = services.open_reset(token)
    except NotFound:
        return _reset_page(invalid=True, status=404)
    form = NewPasswordForm()
    if form.validate_on_submit():
        try:
            services.reset_password(token, form.password.data)
        except NotFound:
            return _reset_page(invalid=True, status=404)
        except DomainError as error:
            attach_error(form, error)
        else:
            flash(_("Your new password is set. Please log in."), "success")
            return hx_redirect(url_for("auth.login"))
    status = 422 if form.errors or form.form_errors else 200
    return _reset_page(form=form, member=user, token=token, status=status)
