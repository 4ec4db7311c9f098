"""Login, logout, activation, registration and password change (/auth/*)."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, abort, current_app, flash, request, session, url_for
from flask_login import current_user, login_user, logout_user

from memberplatform.auth import services
from memberplatform.auth.forms import ActivateForm, LoginForm, PasswordChangeForm, RegisterForm
from memberplatform.auth.models import new_session_token
from memberplatform.core.errors import DomainError
from memberplatform.extensions import limiter
from memberplatform.web import hx_redirect, render, roles_required
from memberplatform.web.forms import attach_error
from memberplatform.web.i18n import gettext as _
from memberplatform.web.i18n import lazy_gettext as _l

bp = Blueprint("auth", __name__, url_prefix="/auth")

LOGIN_FAILED = _l("The mobile number or password is wrong, or the account cannot log in yet.")


def _safe_next(target: str | None) -> str:
    if target:
        parts = urlsplit(target)
        if not parts.scheme and not parts.netloc and target.startswith("/") and "\\" not in target:
            return target
    return url_for("home.me")


def _account_key() -> str:
    return "login:" + (request.form.get("phone") or "").strip()[-11:]


def _ip_limit() -> str:
    return current_app.config["LOGIN_LIMIT_IP"]


def _account_limit() -> str:
    return current_app.config["LOGIN_LIMIT_ACCOUNT"]


def _start_session(user, remember: bool = False) -> None:
    session.clear()  # no fixation: a fresh session for the new login
    session.permanent = True  # expires after PERMANENT_SESSION_LIFETIME (12 h)
    login_user(user, remember=remember)


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(_ip_limit, methods=["POST"])
@limiter.limit(_account_limit, key_func=_account_key, methods=["POST"])
def login():  # access: anyone
    form = LoginForm()
    if form.validate_on_submit():
        user = services.authenticate(form.phone.data, form.password.data)
        if user is not None and user.is_active:
            locale = session.get("locale")
            _start_session(user, remember=form.remember.data)
            if locale and not user.locale:
                user.locale = locale
            # the account's language ("" for none saved) for every request of this session
            session["locale"] = user.locale or ""
            return hx_redirect(_safe_next(request.args.get("next")))
        form.form_errors.append(LOGIN_FAILED)
    status = 422 if form.errors or form.form_errors else 200
    return render("auth/login.html", fragment="form", form=form, status=status)


@bp.post("/logout")
def logout():  # access: anyone (a no-op when logged out)
    if current_user.is_authenticated:
        # A new token ends this session everywhere, even a copied cookie or remember-me.
        current_user.record.session_token = new_session_token()
    logout_user()
    session.clear()
    flash(_("You have logged out."), "info")
    return hx_redirect(url_for("home.index"))


@bp.route("/activate", methods=["GET", "POST"])
@limiter.limit(_ip_limit, methods=["POST"])
def activate():  # access: anyone
    form = ActivateForm()
    if form.validate_on_submit():
        try:
            user = services.activate(form.member_no.data, form.phone.data, form.password.data)
        except DomainError as error:
            attach_error(form, error)
        else:
            _start_session(user)
            flash(_("Welcome! Your account is active."), "success")
            return hx_redirect(url_for("home.me"))
    status = 422 if form.errors or form.form_errors else 200
    return render("auth/activate.html", fragment="form", form=form, status=status)


@bp.route("/register", methods=["GET", "POST"])
@limiter.limit(_ip_limit, methods=["POST"])
def register():  # access: anyone, only when SELF_REGISTRATION is on
    if not current_app.config["SELF_REGISTRATION"]:
        abort(404)
    form = RegisterForm()
    if form.validate_on_submit():
        try:
            services.register(
                form.phone.data, form.name.data, form.password.data, form.member_no.data or None
            )
        except DomainError as error:
            attach_error(form, error)
        else:
            flash(
                _("Thank you. Union staff will check your registration; then you can log in."),
                "success",
            )
            return hx_redirect(url_for("home.index"))
    status = 422 if form.errors or form.form_errors else 200
    return render("auth/register.html", fragment="form", form=form, status=status)


@bp.route("/password", methods=["GET", "POST"])
@roles_required()
def password():  # access: any logged-in user
    form = PasswordChangeForm()
    if form.validate_on_submit():
        try:
            services.change_password(
                current_user.record, form.current_password.data, form.password.data
            )
        except DomainError as error:
            attach_error(form, error)
        else:
            _start_session(current_user.record)  # new token for this session
            flash(_("Your password has been changed. Other devices are logged out."), "success")
            return hx_redirect(url_for("home.me"))
    status = 422 if form.errors or form.form_errors else 200
    return render("auth/password.html", fragment="form", form=form, status=status)
