"""Account operations: create, activate, authenticate, passwords, registration."""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import cache
from importlib import resources

import sqlalchemy as sa
from flask import current_app
from werkzeug.security import check_password_hash, generate_password_hash

from memberplatform.audit.services import record
from memberplatform.auth.models import (
    ROLES,
    Enterprise,
    MemberTag,
    UnionBranch,
    User,
    UserRole,
    new_session_token,
)
from memberplatform.auth.signals import user_activated
from memberplatform.core.errors import DomainError
from memberplatform.db import utcnow
from memberplatform.extensions import db
from memberplatform.web.i18n import lazy_gettext as _l

PHONE_RE = re.compile(r"^1[3-9]\d{9}$")
MEMBER_NO_RE = re.compile(r"^[A-Za-z0-9-]{4,32}$")
PASSWORD_MIN, PASSWORD_MAX = 8, 128


@cache
def common_passwords() -> frozenset[str]:
    text = resources.files("memberplatform.auth").joinpath("common_passwords.txt").read_text()
    return frozenset(line.strip().lower() for line in text.splitlines() if line.strip())


def normalize_phone(raw: str | None) -> str:
    """Digits only; a +86 prefix is dropped. Raises for anything but a mainland mobile."""
    digits = re.sub(r"[\s-]", "", raw or "")
    if digits.startswith("+86"):
        digits = digits[3:]
    if not PHONE_RE.match(digits):
        raise DomainError(_l("Enter an 11-digit mobile number."), field="phone")
    return digits


def validate_password(password: str, *, phone: str | None = None) -> None:
    if len(password) < PASSWORD_MIN:
        raise DomainError(_l("Use at least 8 characters."), field="password")
    if len(password) > PASSWORD_MAX:
        raise DomainError(_l("Use at most 128 characters."), field="password")
    lowered = password.lower()
    if lowered in common_passwords() or len(set(password)) < 3 or (phone and phone in password):
        raise DomainError(
            _l("This password is too common or easy to guess; choose another."), field="password"
        )


def hash_password(password: str) -> str:
    return generate_password_hash(password, method=current_app.config["PASSWORD_HASH_METHOD"])


_DUMMY_HASH: dict[str, str] = {}


def _dummy_check(password: str) -> None:
    """Spend the same time as a real check so unknown phones cannot be told apart."""
    method = current_app.config["PASSWORD_HASH_METHOD"]
    if method not in _DUMMY_HASH:
        _DUMMY_HASH[method] = generate_password_hash("not-a-real-password", method=method)
    check_password_hash(_DUMMY_HASH[method], password)


def get_or_create_enterprise(name: str | None) -> Enterprise | None:
    name = (name or "").strip()
    if not name:
        return None
    found = db.session.scalar(sa.select(Enterprise).where(Enterprise.name == name))
    if found is None:
        found = Enterprise(name=name)
        db.session.add(found)
        db.session.flush()
    return found


def get_or_create_branch(name: str | None) -> UnionBranch | None:
    name = (name or "").strip()
    if not name:
        return None
    found = db.session.scalar(sa.select(UnionBranch).where(UnionBranch.name == name))
    if found is None:
        found = UnionBranch(name=name)
        db.session.add(found)
        db.session.flush()
    return found


def set_roles(user: User, roles: Iterable[str]) -> None:
    wanted = set(roles)
    unknown = wanted - set(ROLES)
    if unknown:
        raise DomainError(_l("Unknown role: %(role)s", role=", ".join(sorted(unknown))))
    user.role_rows = [row for row in user.role_rows if row.role in wanted] + [
        UserRole(role=role) for role in sorted(wanted - user.roles)
    ]


def set_tags(user: User, tags: Iterable[str]) -> None:
    wanted = {tag.strip() for tag in tags if tag.strip()}
    user.tag_rows = [row for row in user.tag_rows if row.tag in wanted] + [
        MemberTag(tag=tag) for tag in sorted(wanted - user.tags)
    ]


def create_user(
    phone: str,
    name: str,
    *,
    password: str | None = None,
    password_hash: str | None = None,
    roles: Iterable[str] = ("member",),
    status: str = "active",
    member_no: str | None = None,
    enterprise: str | None = None,
    branch: str | None = None,
    tags: Iterable[str] = (),
) -> User:
    """Create an account. With a password it can log in at once (activated)."""
    phone = normalize_phone(phone)
    if db.session.scalar(sa.select(User.id).where(User.phone == phone)) is not None:
        raise DomainError(_l("This phone number is already registered."), field="phone")
    if member_no and db.session.scalar(sa.select(User.id).where(User.member_no == member_no)):
        raise DomainError(_l("This member number is already registered."), field="member_no")
    if password is not None:
        validate_password(password, phone=phone)
        password_hash = hash_password(password)
    user = User(
        phone=phone,
        name=name.strip(),
        password_hash=password_hash,
        status=status,
        member_no=member_no or None,
        enterprise=get_or_create_enterprise(enterprise),
        branch=get_or_create_branch(branch),
        activated_at=utcnow() if password_hash else None,
    )
    set_roles(user, roles)
    set_tags(user, tags)
    db.session.add(user)
    db.session.flush()
    return user


def activate(member_no: str, phone: str, password: str) -> User:
    """A roster member proves who they are with member number + phone and sets a password."""
    phone = normalize_phone(phone)
    user = db.session.scalar(
        sa.select(User)
        .where(User.member_no == (member_no or "").strip(), User.phone == phone)
        .with_for_update(of=User)
    )
    if user is None:
        raise DomainError(
            _l("No member matches this member number and phone number."), field="member_no"
        )
    if user.password_hash is not None:
        raise DomainError(
            _l("This account is already activated. Log in, or ask staff to reset the password."),
            field="member_no",
        )
    if user.status == "disabled":
        raise DomainError(_l("This account is disabled. Please contact union staff."))
    validate_password(password, phone=phone)
    user.password_hash = hash_password(password)
    user.activated_at = utcnow()
    user.session_token = new_session_token()
    db.session.flush()
    user_activated.send(current_app._get_current_object(), user=user)
    return user


def authenticate(phone: str, password: str) -> User | None:
    """The user for these credentials, or None (same answer and time for every failure)."""
    try:
        phone = normalize_phone(phone)
    except DomainError:
        _dummy_check(password)
        return None
    user = db.session.scalar(sa.select(User).where(User.phone == phone))
    if user is None or user.password_hash is None:
        _dummy_check(password)
        return None
    if not check_password_hash(user.password_hash, password):
        return None
    user.last_login_at = utcnow()
    return user


def change_password(user: User, current: str, new: str) -> None:
    """Set a new password and rotate the session token, which ends every other session."""
    if not user.password_hash or not check_password_hash(user.password_hash, current):
        raise DomainError(_l("The current password is wrong."), field="current_password")
    validate_password(new, phone=user.phone)
    user.password_hash = hash_password(new)
    user.session_token = new_session_token()
    db.session.flush()


def register(phone: str, name: str, password: str, member_no: str | None = None) -> User:
    """Self-registration (when enabled): the account waits for staff approval."""
    if not name.strip():
        raise DomainError(_l("Enter your name."), field="name")
    if member_no and not MEMBER_NO_RE.match(member_no):
        raise DomainError(_l("Member numbers are 4–32 letters or digits."), field="member_no")
    return create_user(phone, name, password=password, status="pending", member_no=member_no)


def approve(user: User, actor: User) -> None:
    if user.status != "pending":
        raise DomainError(_l("Only pending accounts can be approved."))
    user.status = "active"
    user.activated_at = utcnow()
    record(actor, "user.approve", "user", user.id, {"status": ["pending", "active"]})
    user_activated.send(current_app._get_current_object(), user=user)
