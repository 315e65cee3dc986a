"""The report's charts: one Vega-Lite definition each (Altair), shown interactive in the
HTML report and written as PNG by vl-convert, so both outputs come from one definition.

Every function takes the summary dict (as written to ``summary.json``) and the
per-customer table, and returns an Altair chart or None when it does not apply.
"""

from __future__ import annotations

from collections.abc import Callable

import altair as alt
import numpy as np
import pandas as pd

#: Customers drawn for scatter plots and histograms (all for the numbers themselves).
PLOT_SAMPLE = 5_000
WIDTH = 560


def _segments(summary: dict) -> pd.DataFrame:
    rows = []
    for s in summary.get("segments", []):
        rows.append({"segment": f"{s['id']}. {s['name']}" if s["id"] != -1 else s["name"],
                     "customers": s["size"], "share": s["share"],
                     "revenue_share": s.get("revenue_share")})
    return pd.DataFrame(rows)


def _order(summary: dict) -> list[str]:
    return list(_segments(summary)["segment"])


def _labels(summary: dict, table: pd.DataFrame) -> pd.Series:
    names = {s["id"]: (f"{s['id']}. {s['name']}" if s["id"] != -1 else s["name"])
             for s in summary.get("segments", [])}
    return table["segment"].map(names)


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
    return alt.Chart(long, title="Segment size and revenue share").mark_bar().encode(
        y=alt.Y("segment:N", sort=_order(summary), title=None),
        x=alt.X("value:Q", axis=alt.Axis(format="%"), title="share"),
        yOffset="measure:N", color=alt.Color("measure:N", title=None),
        tooltip=["segment", "measure", alt.Tooltip("value:Q", format=".1%")],
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
    base = alt.Chart(frame, title="How each segment differs from all customers (z-score)")
    heat = base.mark_rect().encode(
        x=alt.X("feature:N", title=None), y=alt.Y("segment:N", sort=_order(summary), title=None),
        color=alt.Color("z:Q", scale=alt.Scale(scheme="redblue", domainMid=0, reverse=True)),
        tooltip=["segment", "feature", alt.Tooltip("z:Q", format=".2f"),
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
    return alt.Chart(pd.DataFrame(rows), title="Snake plot of the clustering features"
                     ).mark_line(point=True).encode(
        x=alt.X("feature:N", sort=used, title=None), y=alt.Y("z:Q", title="z-score"),
        color=alt.Color("segment:N", sort=_order(summary)),
        tooltip=["segment", "feature", alt.Tooltip("z:Q", format=".2f")],
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
    lines = alt.Chart().mark_line(point=True).encode(
        x=alt.X("k:Q", axis=alt.Axis(tickMinStep=1)), y=alt.Y("value:Q", title=None),
        color=alt.Color("series:N", title=None,
                        scale=alt.Scale(domain=["customers", "featureless reference"],
                                        range=["#1f77b4", "#aaaaaa"])),
        tooltip=["k", "metric", "series", alt.Tooltip("value:Q", format=",.3f")])
    rule = alt.Chart().transform_filter(alt.datum.k == ks["chosen"]).mark_rule(
        color="black", strokeDash=[4, 3]).encode(x="k:Q")
    structure = ks.get("structure")
    title = f"Choosing k: {ks['chosen']}" + (f" ({structure})" if structure else "")
    return alt.layer(lines, rule, data=long).properties(width=250, height=160).facet(
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
    return alt.Chart(frame, title=f"Customers in two dimensions (PCA of {len(frame):,} "
                     f"customers; {explained.sum():.0%} of the variance)").mark_circle(
        size=14, opacity=0.6).encode(
        x=alt.X("PC1:Q", title=f"PC1 ({explained[0]:.0%})"),
        y=alt.Y("PC2:Q", title=f"PC2 ({explained[1]:.0%})"),
        color=alt.Color("segment:N", sort=_order(summary)), tooltip=["segment"],
    ).properties(width=WIDTH, height=360).interactive()


def distributions(summary: dict, table: pd.DataFrame) -> alt.Chart | None:
    """Histograms of the main features (log scale where skewed)."""
    main = [c for c in ("recency", "frequency", "monetary") if c in table]
    if not main:
        main = [c for c in summary.get("features", {}).get("used", [])
                if c in table and pd.api.types.is_numeric_dtype(table[c])][:3]
    if not main:
        return None
    sample = _sample(table)
    charts = []
    for col in main:
        values = pd.to_numeric(sample[col], errors="coerce").dropna()
        skewed = values.min() >= 0 and values.skew() > 1
        frame = pd.DataFrame({col: np.log10(values + 1) if skewed else values})
        title = f"log10({col} + 1)" if skewed else col
        charts.append(alt.Chart(frame).mark_bar().encode(
            x=alt.X(f"{col}:Q", bin=alt.Bin(maxbins=30), title=title),
            y=alt.Y("count():Q", title="customers")).properties(width=170, height=140))
    return alt.hconcat(*charts, title="Distributions of the main features")


def correlations(summary: dict, table: pd.DataFrame) -> alt.Chart | None:
    """Spearman correlations between the numeric features."""
    cols = [c for s in summary.get("segments", [])[:1] for c in s["profile"]["features"]]
    cols = [c for c in cols if c in table][:12]
    if len(cols) < 2:
        return None
    corr = table[cols].apply(pd.to_numeric, errors="coerce").corr(method="spearman")
    frame = corr.reset_index(names="a").melt("a", var_name="b", value_name="rho")
    base = alt.Chart(frame, title="Correlations between features (Spearman)")
    return (base.mark_rect().encode(
        x=alt.X("a:N", title=None, sort=cols), y=alt.Y("b:N", title=None, sort=cols),
        color=alt.Color("rho:Q", scale=alt.Scale(scheme="redblue", domain=[-1, 1],
                                                 reverse=True)),
        tooltip=["a", "b", alt.Tooltip("rho:Q", format=".2f")])
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
    heat = alt.Chart(grid, title="RFM grid: customers by recency and frequency score"
                     ).mark_rect().encode(
        x=alt.X("r_score:O", title="R score (5 = most recent)"),
        y=alt.Y("f_score:O", sort="descending", title="F score (5 = most orders)"),
        color=alt.Color("customers:Q", scale=alt.Scale(scheme="blues")),
        tooltip=["r_score", "f_score", "customers", alt.Tooltip("monetary:Q", format=",.2f")],
    ).properties(width=250, height=250)
    named = pd.DataFrame(summary.get("rfm_segments", []))
    if named.empty:
        return heat
    named = named[named["customers"] > 0]
    bars = alt.Chart(named, title="Named RFM segments").mark_bar().encode(
        y=alt.Y("name:N", sort="-x", title=None), x=alt.X("customers:Q"),
        tooltip=["name", "customers", alt.Tooltip("share:Q", format=".1%"),
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
    return alt.Chart(frame, title="Dendrogram: height of the last merges (a jump marks a "
                     "natural number of segments)").mark_line(point=True).encode(
        x=alt.X("clusters left:Q", scale=alt.Scale(reverse=True)),
        y=alt.Y("merge height:Q"), tooltip=["clusters left", "merge height"],
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
    base = alt.Chart(frame).mark_line(point=True).encode(
        x=alt.X("yearmonth(month):T", title=None), color=color,
        tooltip=["segment", alt.Tooltip("yearmonth(month):T", title="month"),
                 alt.Tooltip("revenue:Q", format=",.0f"), "active_customers"])
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
    return alt.Chart(long, title="Algorithms compared (best first): " + cmp["recommendation"]
                     ).mark_bar().encode(
        y=alt.Y("label:N", sort=order, title=None), x=alt.X("value:Q", title=None),
        yOffset="metric:N", color=alt.Color("metric:N", title=None),
        tooltip=["label", "metric", alt.Tooltip("value:Q", format=".3f")],
    ).properties(width=WIDTH)


#: Charts in report order: (file name, builder).
CHARTS: list[tuple[str, Callable[[dict, pd.DataFrame], alt.Chart | None]]] = [
    ("segment_sizes", sizes),
    ("segment_zscores", zscores),
    ("snake_plot", snake),
    ("projection", projection),
    ("monthly_trend", trend),
    ("k_selection", k_curves),
    ("distributions", distributions),
    ("correlations", correlations),
    ("rfm", rfm_grid),
    ("dendrogram", dendrogram),
    ("comparison", comparison),
]
