"""Web plumbing shared by every blueprint: rendering, access rules, errors, headers."""

from memberplatform.web.access import load_or_404, reads_with_user, roles_required
from memberplatform.web.rendering import (
    add_vary,
    hx_redirect,
    is_fragment_request,
    render,
    with_trigger,
)

__all__ = [
    "add_vary",
    "hx_redirect",
    "is_fragment_request",
    "load_or_404",
    "reads_with_user",
    "render",
    "roles_required",
    "with_trigger",
]
