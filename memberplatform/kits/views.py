"""Views of the kits domain."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("kits", __name__)
