"""QR codes as inline SVG (segno): pickup codes, certificate verification links."""

from __future__ import annotations

import segno
from markupsafe import Markup, escape


def qr_svg(data: str, *, title: str | None = None, css_class: str = "qr") -> Markup:
    """An inline ``<svg>`` of ``data`` that needs no inline style (CSP) and scales by CSS."""
    svg = segno.make(data, error="m").svg_inline(
        scale=1, omitsize=True, svgclass=css_class, title=str(escape(title)) if title else None
    )
    # segno writes only the matrix and the (escaped) title: generated markup, not user input.
    return Markup(svg)  # nosec B704  # noqa: S704
