"""Views of the donations domain."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("donations", __name__)
