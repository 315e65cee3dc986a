"""The report's charts: one Vega-Lite definition each (Altair), shown interactive in the
HTML report and written as PNG by vl-convert, so both outputs come from one definition.

Every function takes the summary dict (as written to ``summary.json``) and the
per-customer table, and returns an Altair chart or None when it does not apply;
:func:`spec` makes its definition.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import altair as alt
import numpy as np
import pandas as pd

from custseg.prep.predict import PURCHASES, Purchases

#: Customers drawn for scatter plots and histograms (all for the numbers themselves).
PLOT_SAMPLE = 5_000
WIDTH = 560


#: Altair's default theme, which :func:`spec` applies itself.
THEME = {"config": {"view": {"continuousWidth": 300, "continuousHeight": 300}}}


def spec(chart: alt.TopLevelMixin) -> dict:
    """The Vega-Lite definition of a chart of this module, the same whatever data
    transformer and theme are enabled in Altair.

    Both are settings of the whole process, which another thread may change while this
    one converts a chart: Streamlit enables its own while it draws a chart for one of the
    dashboard's sessions, and a report built in another session then lost its charts'
    data. So every chart's data are inline values already (:func:`inline`), and the
    theme is Altair's default, applied here (again: the same definition when it was on)."""
    out = chart.to_dict(validate=False, context={"pre_transform": False})
    return alt.utils.update_nested(copy.deepcopy(THEME), out)


def still(definition: dict) -> dict:
    """A chart's definition (:func:`spec`) as a picture: without the zoom and pan that
    ``.interactive()`` binds to its scales, which in a PNG only clip its marks to the plot
    (one clip path per group of marks, which vl-convert's rasteriser draws slowly: the
    snake plot 0.3-0.4 s against 0.1 s). Marks on the plot's edge are then drawn whole.
    Other parameters (the cohorts' segment menu) stay; a definition with none to drop is
    returned as it is."""
    params = definition.get("params") or []
    kept = [p for p in params if not (isinstance(p, dict) and p.get("bind") == "scales")]
    if len(kept) == len(params):
        return definition
    picture = {k: v for k, v in definition.items() if k != "params"}
    if kept:
        picture["params"] = kept
    return picture


def inline(data):
    """A chart's data frame as inline values (what Altair's default data transformer makes
    of it); anything else as it is."""
    return alt.to_values(data) if isinstance(data, pd.DataFrame) else data


class Chart(alt.Chart):
    """An Altair chart whose data are inline values (:func:`inline`), and whose ``encode``
    takes a field's text (``"k:Q"``) as its channel object (``alt.X("k:Q")``), the same
    definition: Altair reads a text through ``from_dict``, which hashes every one of its
    schema classes each time (11 ms a channel; 0.25 s of a report's charts). A field's
    type is always given: without a data frame, Altair cannot infer it."""

    def __init__(self, data=alt.Undefined, **kwargs):
        super().__init__(data=inline(data), **kwargs)

    def encode(self, *args, **channels):
        return super().encode(*args, **{name: _channel(name, value)
                                        for name, value in channels.items()})


def _channel(name: str, value):
    if isinstance(value, list):
        return [_channel(name, v) for v in value]
    if isinstance(value, str):
        return getattr(alt, name[0].upper() + name[1:])(value)
    return value


def _groups(summary: dict) -> list[dict]:
    """The run's segments, or the named RFM segments with customers of an RFM-only run:
    key (the value in the table's column), label, customers, share, revenue share and
    the mean predicted value."""
    if summary.get("segments"):
        return [{"key": s["id"], "label": f"{s['id']}. {s['name']}" if s["id"] != -1
                 else s["name"], "customers": s["size"], "share": s["share"],
                 "revenue_share": s.get("revenue_share"),
                 "mean_value": s.get("value", {}).get("mean_predicted_value")}
                for s in summary["segments"]]
    return [{"key": s["name"], "label": s["name"], "customers": s["customers"],
             "share": s["share"], "revenue_share": s["revenue_share"],
             "mean_value": s.get("value", {}).get("mean_predicted_value")}
            for s in summary.get("rfm_segments", []) if s["customers"]]


def _column(summary: dict) -> str:
    """The table's column holding the groups of :func:`_groups`."""
    return "segment" if summary.get("segments") else "rfm_segment"


def _segments(summary: dict) -> pd.DataFrame:
    return pd.DataFrame([{"segment": g["label"], "customers": g["customers"],
                          "share": g["share"], "revenue_share": g["revenue_share"]}
                         for g in _groups(summary)])


def _order(summary: dict) -> list[str]:
    return [g["label"] for g in _groups(summary)]


def _labels(summary: dict, table: pd.DataFrame) -> pd.Series:
    return table[_column(summary)].map({g["key"]: g["label"] for g in _groups(summary)})


def _sample(table: pd.DataFrame) -> pd.DataFrame:
    if len(table) <= PLOT_SAMPLE:
        return table
    return table.sample(PLOT_SAMPLE, random_state=0)


def sizes(summary: dict, table: pd.DataFrame) -> alt.Chart | None:
    """Share of customers and of revenue per segment."""
    frame = _segments(summary)
    if frame.empty:
        return None
    long = frame.melt(id_vars="segment", value_vars=["share", "revenue_share"],
                      var_name="measure", value_name="value").dropna()
    long["measure"] = long["measure"].map({"share": "customers", "revenue_share": "revenue"})
    return Chart(long, title="Segment size and revenue share").mark_bar().encode(
        y=alt.Y("segment:N", sort=_order(summary), title=None),
        x=alt.X("value:Q", axis=alt.Axis(format="%"), title="share"),
        yOffset="measure:N", color=alt.Color("measure:N", title=None),
        tooltip=["segment:N", "measure:N", alt.Tooltip("value:Q", format=".1%")],
    ).properties(width=WIDTH)


def zscores(summary: dict, table: pd.DataFrame) -> alt.Chart | None:
    """Heatmap of segment x feature z-scores."""
    rows = [{"segment": f"{s['id']}. {s['name']}" if s["id"] != -1 else s["name"],
             "feature": f, "z": v["z"], "mean": v["mean"]}
            for s in summary.get("segments", []) for f, v in s["profile"]["features"].items()
            if v["z"] is not None]
    if not rows:
        return None
    frame = pd.DataFrame(rows)
    base = Chart(frame, title="How each segment differs from all customers (z-score)")
    heat = base.mark_rect().encode(
        x=alt.X("feature:N", title=None), y=alt.Y("segment:N", sort=_order(summary), title=None),
        color=alt.Color("z:Q", scale=alt.Scale(scheme="redblue", domainMid=0, reverse=True)),
        tooltip=["segment:N", "feature:N", alt.Tooltip("z:Q", format=".2f"),
                 alt.Tooltip("mean:Q", format=",.2f")])
    text = base.mark_text(fontSize=10).encode(
        x="feature:N", y=alt.Y("segment:N", sort=_order(summary)),
        text=alt.Text("z:Q", format=".1f"))
    return (heat + text).properties(width=WIDTH)


def snake(summary: dict, table: pd.DataFrame) -> alt.Chart | None:
    """Snake plot: each segment's z-score profile across the features used."""
    used = summary.get("features", {}).get("used", [])
    rows = [{"segment": f"{s['id']}. {s['name']}" if s["id"] != -1 else s["name"],
             "feature": f, "z": s["profile"]["features"][f]["z"]}
            for s in summary.get("segments", []) for f in used
            if f in s["profile"]["features"]]
    if not rows:
        return None
    return Chart(pd.DataFrame(rows), title="Snake plot of the clustering features"
                     ).mark_line(point=True).encode(
        x=alt.X("feature:N", sort=used, title=None), y=alt.Y("z:Q", title="z-score"),
        color=alt.Color("segment:N", sort=_order(summary)),
        tooltip=["segment:N", "feature:N", alt.Tooltip("z:Q", format=".2f")],
    ).properties(width=WIDTH).interactive()


def k_curves(summary: dict, table: pd.DataFrame) -> alt.Chart | None:
    """Inertia (elbow), silhouette (against a featureless reference), Calinski-Harabasz,
    Davies-Bouldin and, on a continuum, stability per k; the chosen k marked."""
    ks = summary.get("k_selection")
    if not ks:
        return None
    frame = pd.DataFrame({"k": ks["k"], "inertia": ks["inertia"], "silhouette": ks["silhouette"],
                          "Calinski-Harabasz": ks["calinski_harabasz"],
                          "Davies-Bouldin": ks["davies_bouldin"]})
    long = frame.melt("k", var_name="metric").dropna().assign(series="customers")
    extra = []
    if ks.get("reference_silhouette"):
        extra.append(pd.DataFrame({"k": ks["k"], "metric": "silhouette",
                                   "value": ks["reference_silhouette"],
                                   "series": "featureless reference"}))
    if ks.get("candidates"):
        extra.append(pd.DataFrame({"k": [c["k"] for c in ks["candidates"]],
                                   "metric": "stability (bootstrap ARI)",
                                   "value": [c["stability"] for c in ks["candidates"]],
                                   "series": "customers"}))
    long = pd.concat([long, *extra], ignore_index=True).dropna()
    lines = Chart().mark_line(point=True).encode(
        x=alt.X("k:Q", axis=alt.Axis(tickMinStep=1)), y=alt.Y("value:Q", title=None),
        color=alt.Color("series:N", title=None,
                        scale=alt.Scale(domain=["customers", "featureless reference"],
                                        range=["#1f77b4", "#aaaaaa"])),
        tooltip=["k:Q", "metric:N", "series:N", alt.Tooltip("value:Q", format=",.3f")])
    rule = Chart().transform_filter(alt.datum.k == ks["chosen"]).mark_rule(
        color="black", strokeDash=[4, 3]).encode(x="k:Q")
    structure = ks.get("structure")
    title = f"Choosing k: {ks['chosen']}" + (f" ({structure})" if structure else "")
    return alt.layer(lines, rule, data=inline(long)).properties(width=250, height=160).facet(
        facet=alt.Facet("metric:N", title=None), columns=2
    ).resolve_scale(y="independent").properties(title=title)


def projection(summary: dict, table: pd.DataFrame) -> alt.Chart | None:
    """The customers on their first two principal components, coloured by segment."""
    used = [c for c in summary.get("features", {}).get("used", []) if c in table
            and pd.api.types.is_numeric_dtype(table[c])]
    if len(used) < 2:
        return None
    sample = _sample(table)
    X = sample[used].apply(pd.to_numeric, errors="coerce").astype(float)
    X = X.fillna(X.median())
    X = np.where((X.min() >= 0).to_numpy(), np.log1p(X.clip(lower=0)), X)
    X = (X - X.mean(axis=0)) / np.where(X.std(axis=0) > 0, X.std(axis=0), 1)
    _, s, vt = np.linalg.svd(X - X.mean(axis=0), full_matrices=False)
    pcs = X @ vt[:2].T
    explained = (s[:2] ** 2 / (s ** 2).sum())
    frame = pd.DataFrame({"PC1": pcs[:, 0], "PC2": pcs[:, 1],
                          "segment": _labels(summary, sample).to_numpy()})
    return Chart(frame, title=f"Customers in two dimensions (PCA of {len(frame):,} "
                     f"customers; {explained.sum():.0%} of the variance)").mark_circle(
        size=14, opacity=0.6).encode(
        x=alt.X("PC1:Q", title=f"PC1 ({explained[0]:.0%})"),
        y=alt.Y("PC2:Q", title=f"PC2 ({explained[1]:.0%})"),
        color=alt.Color("segment:N", sort=_order(summary)), tooltip=["segment:N"],
    ).properties(width=WIDTH, height=360).interactive()


def distributions(summary: dict, table: pd.DataFrame) -> alt.Chart | None:
    """Histograms of the main features over every customer (log scale where skewed),
    counted here: the chart carries 30 bins, not the customers."""
    main = [c for c in ("recency", "frequency", "monetary") if c in table]
    if not main:
        main = [c for c in summary.get("features", {}).get("used", [])
                if c in table and pd.api.types.is_numeric_dtype(table[c])][:3]
    if not main:
        return None
    charts = []
    for col in main:
        values = pd.to_numeric(table[col], errors="coerce").dropna().to_numpy(float)
        values = values[np.isfinite(values)]
        if not len(values):
            continue
        skewed = values.min() >= 0 and pd.Series(values).skew() > 1
        shown = np.log10(values + 1) if skewed else values
        counts, edges = np.histogram(shown, bins=nice_edges(shown.min(), shown.max()))
        frame = pd.DataFrame({"start": edges[:-1], "end": edges[1:], "customers": counts})
        title = f"log10({col} + 1)" if skewed else col
        charts.append(Chart(frame).mark_bar().encode(
            x=alt.X("start:Q", bin="binned", title=title), x2=alt.X2("end:Q"),
            y=alt.Y("customers:Q", title="customers"),
            tooltip=[alt.Tooltip("start:Q", title="from", format=",.4~g"),
                     alt.Tooltip("end:Q", title="to", format=",.4~g"), "customers:Q"],
        ).properties(width=170, height=140))
    if not charts:
        return None
    return alt.hconcat(*charts, title="Distributions of the main features")


def nice_edges(low: float, high: float, most: int = 30) -> np.ndarray:
    """Bin edges from ``low`` to ``high`` in at most ``most`` bins of a round width (1, 2
    or 5 times a power of ten), as Vega-Lite bins a field with ``maxbins``.

    >>> nice_edges(0.0, 97.0).tolist()[:3], len(nice_edges(0.0, 97.0)) - 1
    ([0.0, 5.0, 10.0], 20)
    >>> nice_edges(3.0, 3.0).tolist()
    [2.5, 3.5]
    """
    if not high > low:
        return np.array([low - 0.5, low + 0.5])
    base = 10.0 ** np.floor(np.log10((high - low) / most))
    for step in (base * m for m in (1, 2, 5, 10, 20, 50, 100)):  # the first that fits
        start, stop = np.floor(low / step) * step, np.ceil(high / step) * step
        if round((stop - start) / step) <= most:
            break
    edges = start + step * np.arange(int(round((stop - start) / step)) + 1)
    edges[0], edges[-1] = min(edges[0], low), max(edges[-1], high)  # rounding: keep both ends
    return edges


#: Spearman correlations are computed on at most this many customers (a seeded sample;
#: the chart shows them to one decimal, and 50,000 customers give them within 0.01 of
#: 200,000 on 497,426 synthetic customers, in 0.26 s instead of 1.34 s).
CORRELATION_SAMPLE = 50_000


def correlations(summary: dict, table: pd.DataFrame) -> alt.Chart | None:
    """Spearman correlations between the numeric features."""
    cols = [c for s in summary.get("segments", [])[:1] for c in s["profile"]["features"]]
    if not summary.get("segments") and "used" not in summary.get("features", {}):
        cols = list(summary.get("features", {}))  # custseg rfm: every customer feature
    cols = [c for c in cols if c in table][:12]
    if len(cols) < 2:
        return None
    rows = table[cols] if len(table) <= CORRELATION_SAMPLE else table[cols].sample(
        CORRELATION_SAMPLE, random_state=0)
    corr = rows.apply(pd.to_numeric, errors="coerce").corr(method="spearman")
    frame = corr.reset_index(names="a").melt("a", var_name="b", value_name="rho")
    base = Chart(frame, title="Correlations between features (Spearman)")
    return (base.mark_rect().encode(
        x=alt.X("a:N", title=None, sort=cols), y=alt.Y("b:N", title=None, sort=cols),
        color=alt.Color("rho:Q", scale=alt.Scale(scheme="redblue", domain=[-1, 1],
                                                 reverse=True)),
        tooltip=["a:N", "b:N", alt.Tooltip("rho:Q", format=".2f")])
        + base.mark_text(fontSize=9).encode(x=alt.X("a:N", sort=cols),
                                            y=alt.Y("b:N", sort=cols),
                                            text=alt.Text("rho:Q", format=".1f"))
    ).properties(width=360, height=360)


def rfm_grid(summary: dict, table: pd.DataFrame) -> alt.Chart | None:
    """Customers per recency x frequency score, and the named RFM segments."""
    if "r_score" not in table:
        return None
    grid = table.groupby(["r_score", "f_score"]).agg(
        customers=("customer_id", "size"), monetary=("monetary", "mean")).reset_index()
    heat = Chart(grid, title="RFM grid: customers by recency and frequency score"
                     ).mark_rect().encode(
        x=alt.X("r_score:O", title="R score (5 = most recent)"),
        y=alt.Y("f_score:O", sort="descending", title="F score (5 = most orders)"),
        color=alt.Color("customers:Q", scale=alt.Scale(scheme="blues")),
        tooltip=["r_score:Q", "f_score:Q", "customers:Q", alt.Tooltip("monetary:Q", format=",.2f")],
    ).properties(width=250, height=250)
    named = pd.DataFrame(summary.get("rfm_segments", []))
    if named.empty:
        return heat
    named = named[named["customers"] > 0]
    bars = Chart(named, title="Named RFM segments").mark_bar().encode(
        y=alt.Y("name:N", sort="-x", title=None), x=alt.X("customers:Q"),
        tooltip=["name:N", "customers:Q", alt.Tooltip("share:Q", format=".1%"),
                 alt.Tooltip("revenue_share:Q", format=".1%")],
    ).properties(width=250, height=250)
    return alt.hconcat(heat, bars)


def dendrogram(summary: dict, table: pd.DataFrame) -> alt.Chart | None:
    """Heights of the last merges of a hierarchical clustering."""
    extra = summary.get("clustering_extra", {}).get("dendrogram")
    if not extra:
        return None
    merges = extra["last_merges"]
    frame = pd.DataFrame({"clusters left": list(range(len(merges) + 1, 1, -1)),
                          "merge height": [m[2] for m in merges]})
    return Chart(frame, title="Dendrogram: height of the last merges (a jump marks a "
                     "natural number of segments)").mark_line(point=True).encode(
        x=alt.X("clusters left:Q", scale=alt.Scale(reverse=True)),
        y=alt.Y("merge height:Q"), tooltip=["clusters left:Q", "merge height:Q"],
    ).properties(width=WIDTH)


def trend(summary: dict, table: pd.DataFrame) -> alt.Chart | None:
    """Monthly revenue and active customers per segment."""
    rows = summary.get("monthly_trend")
    if not rows:
        return None
    names = {s["id"]: (f"{s['id']}. {s['name']}" if s["id"] != -1 else s["name"])
             for s in summary.get("segments", [])}
    frame = pd.DataFrame(rows)
    frame["segment"] = frame["segment"].map(names)
    frame["month"] = pd.to_datetime(frame["month"] + "-01")
    color = alt.Color("segment:N", sort=_order(summary))
    base = Chart(frame).mark_line(point=True).encode(
        x=alt.X("yearmonth(month):T", title=None), color=color,
        tooltip=["segment:N", alt.Tooltip("yearmonth(month):T", title="month"),
                 alt.Tooltip("revenue:Q", format=",.0f"), "active_customers:Q"])
    revenue = base.encode(y=alt.Y("revenue:Q", title="revenue")).properties(
        width=WIDTH, height=200, title="Monthly revenue per segment")
    active = base.encode(y=alt.Y("active_customers:Q", title="active customers")).properties(
        width=WIDTH, height=200, title="Active customers per month")
    return alt.vconcat(revenue, active)


def comparison(summary: dict, table: pd.DataFrame) -> alt.Chart | None:
    """The algorithms compared on the same customers, best first."""
    cmp = summary.get("comparison")
    if not cmp:
        return None
    frame = pd.DataFrame(cmp["table"])
    frame = frame[frame["error"].isna()] if "error" in frame else frame
    if frame.empty:
        return None
    frame["label"] = frame["algorithm"] + " (k=" + frame["k"].astype(int).astype(str) + ")"
    order = list(frame["label"])
    long = frame.melt(id_vars=["label"], value_vars=["silhouette", "stability_ari"],
                      var_name="metric").dropna()
    return Chart(long, title="Algorithms compared (best first): " + cmp["recommendation"]
                     ).mark_bar().encode(
        y=alt.Y("label:N", sort=order, title=None), x=alt.X("value:Q", title=None),
        yOffset="metric:N", color=alt.Color("metric:N", title=None),
        tooltip=["label:N", "metric:N", alt.Tooltip("value:Q", format=".3f")],
    ).properties(width=WIDTH)


def _clv_fitted(summary: dict) -> dict | None:
    """The ``clv`` block when the value models were fitted, else None."""
    clv = summary.get("clv")
    return clv if clv and clv.get("fitted") and clv.get("purchases") else None


#: Quantile of the customers' repeat orders up to which the P(alive) matrix goes.
P_ALIVE_QUANTILE = 0.99
#: Recency steps of the P(alive) matrix.
P_ALIVE_STEPS = 50
#: Rows of repeat purchases at most (past that, bands of several): the chart stays at
#: most 40 x 51 cells whatever the customers' history.
P_ALIVE_ROWS = 40


def p_alive_matrix(summary: dict, table: pd.DataFrame) -> alt.Chart | None:
    """P(alive) over repeat orders x days from the first to the last order, for a customer
    who first bought as long ago as the oldest customer (lifetimes' and pymc-marketing's
    probability-alive matrix), from the fitted purchase model."""
    clv = _clv_fitted(summary)
    if clv is None or not {"purchase_days", "tenure"} <= set(table):
        return None
    x = pd.to_numeric(table["purchase_days"], errors="coerce").dropna() - 1
    T = pd.to_numeric(table["tenure"], errors="coerce").dropna() - 1
    if x.empty or T.empty:
        return None
    x_max = max(1, int(np.ceil(x.quantile(P_ALIVE_QUANTILE))))
    t_end = max(1.0, float(T.max()))
    step = t_end / P_ALIVE_STEPS
    xs = np.unique(np.linspace(0, x_max, min(x_max + 1, P_ALIVE_ROWS)).round())
    band = float(np.diff(xs).max()) if len(xs) > 1 else 1.0
    recency = np.linspace(0.0, t_end, P_ALIVE_STEPS + 1)
    grid_x, grid_t = (a.ravel() for a in np.meshgrid(xs, recency, indexing="ij"))
    keep = (grid_x > 0) | (grid_t == 0)  # without a repeat order, first = last order
    grid_x, grid_t = grid_x[keep], grid_t[keep]
    purchases = clv["purchases"]
    model = {name: key for key, name in PURCHASES.items()}.get(purchases["name"])
    if model is None:  # a learned model: it predicts purchases, not whether one has left
        return None
    alive = Purchases(model, purchases["params"]).p_alive(grid_x, grid_t,
                                                          np.full_like(grid_x, t_end))
    frame = pd.DataFrame({
        "repeat_orders": grid_x, "x_lo": grid_x - band / 2, "x_hi": grid_x + band / 2,
        "days_first_to_last": grid_t, "t_lo": np.maximum(grid_t - step / 2, 0),
        "t_hi": np.minimum(grid_t + step / 2, t_end), "p_alive": np.round(alive, 4)})
    banded = (f"; repeat purchases in bands of {band:.0f}" if band > 1 else "")
    return Chart(frame, title=alt.TitleParams(
        f"Probability a customer is still active ({purchases['name']})",
        subtitle=f"for a first order {t_end:,.0f} days before the end of the data{banded}")
    ).mark_rect().encode(
        x=alt.X("t_lo:Q", title="days from first to last order",
                scale=alt.Scale(domain=[0, t_end], nice=False)),
        x2="t_hi:Q",
        y=alt.Y("x_lo:Q", title="repeat purchases (days with an order)",
                scale=alt.Scale(domain=[-band / 2, x_max + band / 2], nice=False),
                axis=alt.Axis(tickMinStep=1)),
        y2="x_hi:Q",
        color=alt.Color("p_alive:Q", title="P(alive)",
                        scale=alt.Scale(scheme="redyellowgreen", domain=[0, 1])),
        tooltip=[alt.Tooltip("repeat_orders:Q", title="repeat purchases"),
                 alt.Tooltip("days_first_to_last:Q", format=",.0f",
                             title="days from first to last order"),
                 alt.Tooltip("p_alive:Q", format=".1%", title="P(alive)")],
    ).properties(width=WIDTH, height=300)


#: Percentiles drawn per segment by :func:`value_by_segment` (whiskers, box, median).
VALUE_PERCENTILES = (0.05, 0.25, 0.5, 0.75, 0.95)


def value_by_segment(summary: dict, table: pd.DataFrame) -> alt.Chart | None:
    """The spread of predicted value (clv) in each segment: 5th-95th percentile whiskers,
    the middle half as a box, the median as a tick and the mean (the summary's) as a dot,
    on a symmetric log scale; percentiles over all customers, not a sample."""
    if "clv" not in table or _column(summary) not in table or not _groups(summary):
        return None
    values = pd.DataFrame({"segment": _labels(summary, table),
                           "clv": pd.to_numeric(table["clv"], errors="coerce")}).dropna()
    if values.empty:
        return None
    present = set(values["segment"].unique())
    order = [s for s in _order(summary) if s in present]
    q = values.groupby("segment")["clv"].quantile(list(VALUE_PERCENTILES)).unstack()
    q.columns = ["p05", "p25", "median", "p75", "p95"]
    means = {g["label"]: g["mean_value"] for g in _groups(summary)}
    frame = q.reset_index().assign(
        mean=lambda f: f["segment"].map(means),
        customers=lambda f: f["segment"].map(values["segment"].value_counts()))
    stats = ["p05", "p25", "median", "p75", "p95", "mean"]
    positive = frame[stats].to_numpy(dtype=float)
    positive = positive[np.isfinite(positive) & (positive > 0)]
    if positive.size == 0:
        return None
    floor = 10.0 ** np.floor(np.log10(positive.min()))
    for c in stats:  # drawn on a log scale: zero and below at its left edge
        frame[f"draw_{c}"] = frame[c].clip(lower=floor)
    y = alt.Y("segment:N", sort=order, title=None)
    scale = alt.Scale(type="log", domainMin=floor)
    tooltip = ["segment:N", "customers:Q"] + [
        alt.Tooltip(f"{c}:Q", format=",.2f", title=t) for c, t in
        (("p05", "5th percentile"), ("p25", "25th percentile"), ("median", "median"),
         ("p75", "75th percentile"), ("p95", "95th percentile"), ("mean", "mean"))]
    base = Chart(frame)
    whiskers = base.mark_rule(color="#627d98").encode(
        y=y, x=alt.X("draw_p05:Q", scale=scale,
                     title="predicted value per customer (log scale)"),
        x2="draw_p95:Q", tooltip=tooltip)
    box = base.mark_bar(size=14, color="#9fb3c8").encode(y=y, x="draw_p25:Q",
                                                         x2="draw_p75:Q", tooltip=tooltip)
    median = base.mark_tick(color="#102a43", thickness=2, size=14).encode(
        y=y, x="draw_median:Q", tooltip=tooltip)
    mean = base.transform_filter("isValid(datum.mean)").mark_point(
        color="#d64545", filled=True, size=40).encode(y=y, x="draw_mean:Q", tooltip=tooltip)
    return alt.layer(whiskers, box, median, mean).properties(
        width=WIDTH, title="Predicted value per customer, by segment")


BEFORE_SPLIT = "repeat purchases before the split (days with an order)"


def calibration_chart(backtest: dict | None) -> alt.Chart | None:
    """Predicted against actual mean holdout orders per calibration frequency (lifetimes'
    plot_calibration_purchases_vs_holdout_purchases); None without a fitted backtest."""
    if not backtest or not backtest.get("fitted") or not backtest.get("by_frequency"):
        return None
    groups = pd.DataFrame(backtest["by_frequency"])
    order = list(groups["repeat_orders"])
    long = groups.melt(id_vars=["repeat_orders", "customers"],
                       value_vars=["predicted", "actual"], var_name="orders",
                       value_name="mean").dropna()
    if long.empty:
        return None
    return Chart(long, title=f"Backtest: orders from {backtest['split']} on "
                     f"({backtest['horizon_days']:,} days), predicted and actual"
                     ).mark_line(point=True).encode(
        x=alt.X("repeat_orders:O", sort=order, title=BEFORE_SPLIT,
                axis=alt.Axis(labelAngle=0)),
        y=alt.Y("mean:Q", title="mean purchases per customer after the split"),
        color=alt.Color("orders:N", title=None, sort=["predicted", "actual"],
                        scale=alt.Scale(domain=["predicted", "actual"],
                                        range=["#d64545", "#243b53"])),
        strokeDash=alt.StrokeDash("orders:N", title=None,
                                  scale=alt.Scale(domain=["predicted", "actual"],
                                                  range=[[5, 3], [1, 0]])),
        tooltip=[alt.Tooltip("repeat_orders:O", title=BEFORE_SPLIT),
                 "customers:Q", "orders:N", alt.Tooltip("mean:Q", format=",.3f")],
    ).properties(width=WIDTH, height=260)


def calibration(summary: dict, table: pd.DataFrame) -> alt.Chart | None:
    """The backtest's calibration chart, when the run was backtested."""
    return calibration_chart(summary.get("backtest"))


ALL_CUSTOMERS = "All customers"


def cohorts(summary: dict, table: pd.DataFrame) -> alt.Chart | None:
    """Cohort retention: each monthly cohort of first purchase (rows) and the share of it
    buying 0, 1, 2, ... months later (columns); per segment, a menu picks the segment."""
    block = summary.get("cohorts")
    if not block or not block.get("rows"):
        return None
    frame = pd.DataFrame(block["rows"])
    if "segment" not in frame:
        frame["segment"] = None
    frame["segment"] = frame["segment"].fillna(ALL_CUSTOMERS).astype(str)
    # The colour scale ends at the 95th percentile of the later months: month 0 (always
    # 100%) and a one-customer cohort of a segment would wash out the rest.
    later = frame.loc[frame["months_since"] > 0, "share"]
    top = float(later.quantile(0.95)) if len(later) else 1.0
    notes = []
    if block.get("partial_month"):
        notes.append(f"The data ends before the end of {block['partial_month']}: its "
                     "shares are lower for that alone.")
    if block.get("left_out"):
        notes.append(f"The latest {block['cohorts']} cohorts; {block['left_out']} older ones "
                     "are left out.")
    base = Chart(frame)
    segments = list(dict.fromkeys(frame["segment"]))
    pick = None
    if len(segments) > 1:
        pick = alt.param(name="cohort_segment", value=ALL_CUSTOMERS,
                         bind=alt.binding_select(options=segments, name="Segment "))
        base = base.transform_filter(alt.datum.segment == pick)
    x = alt.X("months_since:O", title="months since the first purchase",
              axis=alt.Axis(labelAngle=0))
    y = alt.Y("cohort:O", title="month of the first purchase")
    tooltip = ["segment:N", "cohort:N", alt.Tooltip("months_since:O", title="months since"),
               alt.Tooltip("customers:Q", format=","), alt.Tooltip("share:Q", format=".1%")]
    heat = base.mark_rect().encode(
        x=x, y=y, tooltip=tooltip,
        color=alt.Color("share:Q", title="share buying",
                        scale=alt.Scale(scheme="greens", domain=[0, max(top, 0.01)],
                                        clamp=True),
                        legend=alt.Legend(format="%")))
    text = base.mark_text(fontSize=8).encode(
        x=x, y=y, text=alt.Text("share:Q", format=".0%"),
        color=alt.condition(alt.datum.share > top * 0.6, alt.value("white"),
                            alt.value("#102a43")))
    cells = int(frame["months_since"].max()) + 1
    chart = alt.layer(heat, text, title=alt.TitleParams(
        "Cohort retention: share of each month's new customers buying again",
        subtitle=notes or alt.Undefined)).properties(
        width=max(200, 24 * cells), height=max(120, 18 * frame["cohort"].nunique()))
    return chart if pick is None else chart.add_params(pick)


#: Charts in report order: (file name, builder).
CHARTS: list[tuple[str, Callable[[dict, pd.DataFrame], alt.Chart | None]]] = [
    ("segment_sizes", sizes),
    ("segment_zscores", zscores),
    ("snake_plot", snake),
    ("projection", projection),
    ("monthly_trend", trend),
    ("cohorts", cohorts),
    ("value_by_segment", value_by_segment),
    ("p_alive_matrix", p_alive_matrix),
    ("calibration", calibration),
    ("k_selection", k_curves),
    ("distributions", distributions),
    ("correlations", correlations),
    ("rfm", rfm_grid),
    ("dendrogram", dendrogram),
    ("comparison", comparison),
]
