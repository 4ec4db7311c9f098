"""Points pages (/points), the balance badge, check-in and staff grants."""

from __future__ import annotations

from flask import Blueprint

import memberplatform.points.hooks  # noqa: F401  (registers reasons, checks, panels)

bp = Blueprint("points", __name__, url_prefix="/points")
