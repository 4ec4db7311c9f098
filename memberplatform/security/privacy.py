"""Who may see a phone number in full: its owner and staff (admin included); others see 138****5678.

Wiring: ``app.jinja_env.filters["phone_for_viewer"] = phone_for_viewer`` (in
``web/i18n.register_template_helpers``); templates then write
``{{ phone_for_viewer(person.phone, person.id) }}`` (also a global).
"""

from __future__ import annotations

from typing import Any

from flask_login import current_user

from memberplatform.core.masking import mask_phone


def may_see_phone(owner_id: int | None, viewer: Any = None) -> bool:
    viewer = viewer if viewer is not None else current_user
    if viewer is None or not getattr(viewer, "is_authenticated", False):
        return False
    return viewer.id == owner_id or viewer.has_role("staff")


def phone_for_viewer(phone: str | None, owner_id: int | None = None, viewer: Any = None) -> str:
    if not phone:
        return ""
    return phone if may_see_phone(owner_id, viewer) else mask_phone(phone)
