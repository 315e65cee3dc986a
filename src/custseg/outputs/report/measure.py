"""The page of a measured campaign (``measure.html``), in the report's style."""

from __future__ import annotations

import functools
from importlib import resources

from custseg.core.campaign import Measurement
from custseg.outputs.report import _money_filter, _num


@functools.cache
def _template():
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(
            str(resources.files("custseg.outputs.report") / "templates")),
        autoescape=True, undefined=jinja2.ChainableUndefined)
    env.filters["num"] = _num
    env.filters["money"] = _money_filter()
    env.filters["pct"] = lambda v: f"{v:.1%}" if isinstance(v, int | float) else "n/a"
    env.filters["pts"] = lambda v: f"{v * 100:+.1f}" if isinstance(v, int | float) else "n/a"
    env.filters["p"] = lambda v: f"{v:.3g}" if isinstance(v, int | float) else "n/a"
    return env.get_template("measure.html.j2")


def render_measure(result: Measurement) -> str:
    """The HTML text of ``measure.html`` (every data-derived string escaped)."""
    data = result.to_dict()
    return _template().render(m=data, s={"currency": data.get("currency")})
