"""Access rules: every view states who may use it."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import abort

from memberplatform.extensions import db, login_manager
from memberplatform.web.current import signed_in_user

F = TypeVar("F", bound=Callable[..., Any])
M = TypeVar("M")


def roles_required(*roles: str) -> Callable[[F], F]:
    """Logged-in users holding one of ``roles`` (admin always passes); others get 403.

    With no roles, any logged-in user passes.
    """

    def decorator(view: F) -> F:
        @wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            user = signed_in_user()
            if not user.is_authenticated:
                return login_manager.unauthorized()
            if roles and not user.has_role(*roles):
                abort(403)
            return view(*args, **kwargs)

        wrapped.access_roles = roles  # type: ignore[attr-defined]
        return wrapped  # type: ignore[return-value]

    return decorator


def reads_with_user(reads: Callable[..., list[tuple[Any, dict[str, Any]]]]) -> Callable[[F], F]:
    """Declare a view's first reads: ``reads(user_id, **view_args)`` returns the
    (statement, params) pairs the view passes to ``db.read``. The session check
    (``auth.identity``) sends them with the signed-in user's statement, in one round
    trip on PostgreSQL, and the view's reads are answered from those rows."""

    def decorator(view: F) -> F:
        view.reads_with_user = reads  # type: ignore[attr-defined]
        return view

    return decorator


def load_or_404(model: type[M], object_id: Any) -> M:
    """The row or a 404 (ids from URLs are never trusted to exist)."""
    obj = db.session.get(model, object_id)
    if obj is None:
        abort(404)
    return obj
