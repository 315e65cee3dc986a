"""The page of a measured campaign (``measure.html``), in the report's style."""

from __future__ import annotations

from custseg.core.campaign import Measurement
from custseg.outputs.report import template


def render_measure(result: Measurement) -> str:
    """The HTML text of ``measure.html`` (every data-derived string escaped)."""
    data = result.to_dict()
    return template("measure.html.j2").render(m=data, s={"currency": data.get("currency")})
