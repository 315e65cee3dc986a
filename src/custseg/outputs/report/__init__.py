"""The HTML report and its PNG figures, rendered from the run's summary.

``render_report(summary, table, out_dir)`` (the charts and the template read the summary's
data as ``summary.json`` holds it) writes ``report.html`` (one self-contained file:
styles, the Vega bundle and the chart data inline, no network needed) and
``figures/*.png``. Templates autoescape every data-derived string; chart specifications
are embedded as JSON with ``<``, ``>`` and ``&`` escaped, so no value can close a tag.
"""

from __future__ import annotations

import contextlib
import functools
import os
from importlib import resources
from importlib.metadata import version
from pathlib import Path

import pandas as pd

from custseg.core.cache import cache_dir
from custseg.core.exceptions import InputError
from custseg.core.money import money
from custseg.core.summary import RfmSummary, RunSummary, TableRunSummary
from custseg.core.summary import load as load_summary
from custseg.outputs.rundir import atomic_file, read_segments

CAPTIONS = {
    "segment_sizes": "Share of customers and of revenue in each segment.",
    "segment_zscores": "Mean of each feature in each segment, as a z-score against all "
                       "customers (log scale for amounts and counts): red above, blue below.",
    "snake_plot": "The same profile as lines over the features used for clustering.",
    "projection": "Each dot is a customer; segments that overlap here may still differ in "
                  "the other dimensions.",
    "k_selection": "Metrics for each number of segments; the dashed line marks the choice. "
                   "Grey: the silhouette of a single Gaussian cloud with the customers' own "
                   "shape, what a split scores when there are no groups.",
    "distributions": "How the main features are spread across customers.",
    "correlations": "Rank correlations; features close to +1 or -1 carry the same "
                    "information.",
    "rfm": "Recency and frequency scores (1 to 5) and the named RFM segments.",
    "dendrogram": "Heights of the last merges of the hierarchical clustering.",
    "comparison": "Silhouette (separation) and stability (agreement over bootstrap "
                  "resamples) of each algorithm; the full table is in summary.json.",
    "cohorts": "Customers grouped by the month of their first purchase (rows); each cell is "
               "the share of them who bought again that many months later (month 0: all of "
               "them). The first month's cohort also holds every customer already buying "
               "before the data starts. Read down a column to compare cohorts at the same "
               "age.",
    "monthly_trend": "Revenue and active customers per month, by segment (customers are "
                     "placed in their segment as of the snapshot date).",
    "value_by_segment": "What each customer is expected to spend over the horizon, "
                        "discounted to today, by segment: the box holds the middle half of "
                        "the customers, the dark tick the median, the line runs from the 5th "
                        "to the 95th percentile and the red dot is the mean (log scale).",
    "p_alive_matrix": "How likely a customer is to still be buying, given how many repeat "
                      "orders they placed (up) and how long after their first order the last "
                      "one came (right), for a customer who first bought as long ago as the "
                      "oldest ones. Green: probably still active; red: probably gone. "
                      "Customers who once bought often but stopped long ago are the ones "
                      "to win back.",
    "calibration": "The model checked on past data: fitted on the orders before the "
                   "split date only, it predicted how many orders each customer would place "
                   "from that date on (dashed red line); the solid blue line is what they "
                   "actually placed. Customers are grouped by how many repeat orders they "
                   "had placed before the split. The closer the lines, the more the "
                   "predictions can be trusted.",
}

#: The PNG a backtest writes next to backtest.json (:func:`write_backtest_chart`).
BACKTEST_CHART = "calibration.png"


#: Charts the template shows in their own section rather than in the run of charts.
PLACED = ("calibration",)
#: Charts of how the segments were formed, shown under Method (model internals).
METHOD = ("k_selection", "dendrogram", "comparison")


def _money_filter():
    import jinja2

    @jinja2.pass_context
    def money_of(context, v: object) -> str:
        """An amount with the run's currency (see :mod:`custseg.core.money`)."""
        if not isinstance(v, int | float):
            return "n/a"
        currency = (context.get("s") or {}).get("currency") or {}
        return money(float(v), currency.get("code"), cents=True)

    return money_of


def _num(v: object) -> str:
    """Money, counts and orders: 2 decimals for floats, thousands separators."""
    return f"{v:,.2f}" if isinstance(v, float) else f"{v:,}" if isinstance(v, int) else "n/a"


def _param(v: object) -> str:
    """A fitted parameter: 4 significant digits."""
    return f"{v:.4g}" if isinstance(v, int | float) and not isinstance(v, bool) else "n/a"


def _dec3(v: object) -> str:
    """A score such as an AUC: 3 decimals."""
    return f"{v:.3f}" if isinstance(v, int | float) and not isinstance(v, bool) else "n/a"


def _times(v: object) -> str:
    """A lift or a ratio: ``2.3x``."""
    return f"{v:.1f}x" if isinstance(v, int | float) and not isinstance(v, bool) else "n/a"


def _safe_json(text: str) -> str:
    """A spec's JSON (:func:`~._png.spec_json`), safe inside the page's script."""
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def vega_bundle() -> str:
    """vl-convert's Vega JavaScript bundle (about 1 s to build), cached on disk per version."""
    import vl_convert as vlc

    cache = cache_dir()
    path = cache / f"vega-bundle-{version('vl-convert-python')}.js"
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        pass
    bundle = vlc.javascript_bundle()
    try:
        cache.mkdir(parents=True, exist_ok=True)
        with atomic_file(path) as tmp:
            tmp.write_text(bundle, encoding="utf-8")
    except OSError:  # a read-only home: no cache, same report
        pass
    return bundle


def write_backtest_chart(backtest: dict, folder: Path) -> Path | None:
    """Write ``folder/calibration.png``, the report's calibration chart of a backtest block
    (``Backtest.to_dict()``); None (nothing written) when the backtest was not fitted or
    has no frequency groups."""
    from custseg.outputs.report._png import png
    from custseg.outputs.report.charts import calibration_chart, spec

    chart = calibration_chart(backtest)
    if chart is None:
        return None
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / BACKTEST_CHART
    with atomic_file(path) as tmp:
        tmp.write_bytes(png(spec(chart)))
    return path


def _compiled():
    """Jinja's cache of compiled templates in ``<cache>/templates``: compiling the report's
    page takes 0.2 s; loading it compiled, 0.01 s. An entry is used only for the very
    source it was compiled from (Jinja keys it by the template's checksum). None when the
    folder cannot be written."""
    import jinja2

    folder = cache_dir() / "templates"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return jinja2.FileSystemBytecodeCache(str(folder)) if os.access(folder, os.W_OK) else None


@functools.cache
def template(name: str = "report.html.j2"):
    """A page's template (the report's, ``measure.html.j2``), with the filters the pages
    share; autoescaped. Compiled once a process, and kept compiled in the cache folder
    (:func:`_compiled`)."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(
            str(resources.files("custseg.outputs.report") / "templates")),
        autoescape=True, undefined=jinja2.ChainableUndefined, bytecode_cache=_compiled())
    env.filters["thousands"] = lambda v: f"{v:,}" if isinstance(v, int | float) else v
    env.filters["pct"] = lambda v: f"{v:.1%}" if isinstance(v, int | float) else v
    env.filters["num"] = _num
    env.filters["money"] = _money_filter()
    env.filters["param"] = _param
    env.filters["dec3"] = _dec3
    env.filters["times"] = _times
    env.filters["pts"] = lambda v: f"{v * 100:+.1f}" if isinstance(v, int | float) else "n/a"
    env.filters["p"] = lambda v: ("n/a" if not isinstance(v, int | float)
                                  else "< 0.001" if v < 0.001 else f"{v:.3f}")
    return env.get_template(name)


def render_report(summary: RfmSummary | RunSummary | TableRunSummary, table: pd.DataFrame,
                  out_dir: str | Path, figures: bool = True) -> Path:
    """Write ``out_dir/report.html`` and, unless ``figures`` is False, the same charts as
    ``out_dir/figures/*.png``; return the report path."""
    from markupsafe import Markup

    from custseg.outputs.report._png import Pngs, spec_json
    from custseg.outputs.report.charts import CHARTS, spec, still

    data = summary.to_dict()
    out_dir = Path(out_dir)
    folder = out_dir / "figures"
    if figures:
        folder.mkdir(parents=True, exist_ok=True)
    charts = []
    with Pngs() if figures else contextlib.nullcontext() as pngs:
        for name, build in CHARTS:
            chart = build(data, table)
            if chart is None:
                continue
            definition = spec(chart)  # each chart is validated in the tests
            text = spec_json(definition)
            if pngs is not None:  # rendered while the page is built
                picture = still(definition)
                pngs.add(folder / f"{name}.png", picture,
                         text if picture is definition else None)
            charts.append({"id": name, "spec": Markup(_safe_json(text)),
                           "caption": CAPTIONS.get(name, "")})
        key_features = [f for f in ("recency", "frequency", "monetary") if f in table]
        html = template().render(
            s=data, charts=[c for c in charts if c["id"] not in PLACED + METHOD],
            placed={c["id"]: c for c in charts if c["id"] in PLACED},
            method_charts=[c for c in charts if c["id"] in METHOD],
            key_features=key_features, bundle=Markup(vega_bundle()))
        path = out_dir / "report.html"
        with atomic_file(path) as tmp:
            tmp.write_text(html, encoding="utf-8")
    return path


def rerender(run_dir: str | Path) -> Path:
    """Render the report again from a finished run's (``custseg run`` or ``rfm``)
    ``summary.json`` and ``segments.csv``."""
    run_dir = Path(run_dir)

    summary_path = run_dir / "summary.json"
    if not summary_path.is_file():
        raise InputError(f"{run_dir} has no {summary_path.name}; point to the --out folder of "
                         "a finished `custseg run` or `custseg rfm`.")
    summary = load_summary(summary_path)
    table = read_segments(run_dir)
    return render_report(summary, table, run_dir)
