"""The notification centre (/notifications) and its badge."""

from __future__ import annotations

from flask import Blueprint, abort, redirect, request, url_for
from flask_login import current_user
from markupsafe import Markup

from memberplatform.core.nav import nav_count
from memberplatform.notifications import services
from memberplatform.web import badges, render, roles_required, with_trigger

bp = Blueprint("notifications", __name__, url_prefix="/notifications")
PAGE_SIZE = 20


@bp.app_template_global("notifications_badge")
def badge_html() -> Markup:
    """The header's unread-messages badge (also the badge fragment's body)."""
    return badges.badge("notifications/_badge.html", nav_count("notifications"))


@bp.get("")
@roles_required()
def index():  # access: any logged-in user, their own notifications
    before = request.args.get("before", type=int)
    items = services.page_for(current_user.id, before_id=before, limit=PAGE_SIZE + 1)
    has_more = len(items) > PAGE_SIZE
    items = items[:PAGE_SIZE]
    fragment = "more_items" if before else "list"
    return render(
        "notifications/index.html",
        fragment=fragment,
        items=items,
        has_more=has_more,
        next_before=items[-1].id if items else None,
        message=services.render_message,
    )


@bp.get("/badge")
@roles_required()
def badge():  # access: any logged-in user
    return badges.fragment(badge_html())


@bp.post("/<int:notification_id>/read")
@roles_required()
def read(notification_id: int):  # access: the notification's owner (404 for anyone else)
    notification = services.mark_read(current_user.id, notification_id)
    if notification is None:
        abort(404)
    target = notification.link if (notification.link or "").startswith("/") else None
    if request.headers.get("HX-Request") == "true":
        response = render(
            "notifications/index.html",
            fragment="item",
            n=notification,
            message=services.render_message,
        )
        return with_trigger(response, "notifications-changed")
    return redirect(target or url_for("notifications.index"), code=303)


@bp.post("/read-all")
@roles_required()
def read_all():  # access: any logged-in user
    services.mark_all_read(current_user.id)
    if request.headers.get("HX-Request") == "true":
        items = services.page_for(current_user.id, limit=PAGE_SIZE + 1)
        response = render(
            "notifications/index.html",
            fragment="list",
            items=items[:PAGE_SIZE],
            has_more=len(items) > PAGE_SIZE,
            next_before=items[PAGE_SIZE - 1].id if len(items) > PAGE_SIZE else None,
            message=services.render_message,
        )
        return with_trigger(response, "notifications-changed")
    return redirect(url_for("notifications.index"), code=303)
