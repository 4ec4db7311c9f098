from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, jsonify, redirect, request, session, url_for
from flask_login import current_user

from memberplatform.core.cache import cached_figures
from memberplatform.core.registry import home_panels, me_panels
from memberplatform.extensions import db
from memberplatform.web import reads_with_user, render, roles_required
from memberplatform.web.current import signed_in_user
from memberplatform.web.i18n import LOCALES

bp = Blueprint("home", __name__)


@bp.get("/")
def index():  # access: anyone
    panels = [
        (panel, cached_figures(("home-panel", panel.name), panel.context)) for panel in home_panels
    ]
    return render("home/index.html", panels=panels)


@bp.get("/healthz")
def healthz():  # access: anyone (monitoring)
    try:
        db.session.execute(sa.text("SELECT 1"))
    except Exception:  # any database failure means "not healthy"
        db.session.rollback()
        return jsonify(status="error", database="unreachable"), 503
    return jsonify(status="ok", database="ok")


def _panel_reads(user_id: int) -> list:
    return [read for panel in me_panels if panel.reads for read in panel.reads(user_id)]


@bp.get("/me")
@roles_required()
@reads_with_user(_panel_reads)  # the panels' statements go with the session check
def me():  # access: any logged-in user
    user = signed_in_user()
    panels = [(panel, panel.context(user)) for panel in me_panels]
    return render("home/me.html", panels=panels)


@bp.get("/me/export")
@roles_required()
def export_my_data():  # access: any logged-in user, their own data only
    from memberplatform.security.export import export_response

    return export_response(current_user)


@bp.post("/lang")
def set_language():  # access: anyone
    locale = request.form.get("locale", "")
    if locale in LOCALES:
        session["locale"] = locale
        if current_user.is_authenticated:
            current_user.record.locale = locale
    target = request.form.get("next") or url_for("home.index")
    if not target.startswith("/") or target.startswith("//"):
        target = url_for("home.index")
    return redirect(target, code=303)
