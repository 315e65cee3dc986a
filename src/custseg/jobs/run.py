"""The segmentation jobs: ``run_segments`` (``custseg run``) and ``compare_algorithms``
(``custseg compare``), on transactions (after RFM) or on a customer table alone."""

from __future__ import annotations

import datetime as dt
import json
import re
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from custseg.cluster import ALGORITHMS, NOISE, Segmenter
from custseg.cluster._evaluate import ACTION_RANGE
from custseg.cluster._prepare import behaviour_and_table_features
from custseg.core import summary as sm
from custseg.core.config import Config
from custseg.core.exceptions import CustsegError, CustsegWarning
from custseg.engines import open_engine
from custseg.io._customers import customers_from_source
from custseg.jobs.rfm import (
    Reporter,
    RunResult,
    _stage,
    closed_on_error,
    line_attributes,
    line_profiles,
    read_input,
    rfm_of,
    start_timings,
)
from custseg.jobs.value import (
    at_risk_of,
    unavailable,
    values_by,
    with_backtest,
    with_value_action,
)
from custseg.outputs.rundir import atomic_file, write_run
from custseg.prep import privacy
from custseg.prep.checks import check_segmentable
from custseg.profile.demographics import customer_table_differences
from custseg.profile.lines import monthly_trend
from custseg.profile.outcomes import outcome_drivers
from custseg.profile.profiles import (
    build_profiles,
    mixed_stages,
    name_segments,
    naming_clashes,
    outcome_columns,
)
from custseg.profile.rules import segment_rules


def run_segments(input: str | Path | list | None = None, *, out_dir: str | Path | None = None,
                 customers: str | Path | None = None, config: Config | None = None,
                 db: str | None = None, sql: str | None = None,
                 frame: pd.DataFrame | None = None, algorithm: str | None = None,
                 k: int | str | None = None, k_range: tuple[int, int] | None = None,
                 seed: int | None = None, features: list[str] | None = None,
                 reporter: Reporter | None = None, compare: bool | None = None,
                 skew: str | None = None, scaler: str | None = None, linkage: str | None = None,
                 options: dict[str, Any] | None = None, started: float | None = None,
                 **params: Any) -> RunResult:
    """RFM (for order lines) plus clustering into segments; or clustering of a customer
    table alone. Writes what :func:`~custseg.run_rfm` writes, with ``segment`` and
    ``segment_name`` columns and the clustering in ``summary.json``. With ``compare`` every
    algorithm is also run and ranked (``summary["comparison"]``). The clustering keywords
    (``algorithm``, ``k``, ``k_range``, ``seed``, ``features``, ``compare``, ``skew``,
    ``scaler``, ``linkage``, ``options``) left None take the config's ``[clustering]``
    values; other keyword arguments (``n_init``, ...) go to :class:`~custseg.Segmenter`.
    ``started`` (a ``time.perf_counter()``) times the start-up as stage ``start``."""
    config = config or Config()
    c = config.clustering.replace(algorithm=algorithm, k=k, k_range=k_range, seed=seed,
                                  features=features, compare=compare, skew=skew,
                                  scaler=scaler, linkage=linkage, options=options)
    base = _base_table(input, customers=customers, config=config, db=db, sql=sql, frame=frame,
                       reporter=reporter, keep_lines=True, started=started)
    try:
        return _segment(base, out_dir=out_dir, config=config, algorithm=c.algorithm, k=c.k,
                        k_range=c.k_range, seed=c.seed, features=c.features, reporter=reporter,
                        compare=c.compare, skew=c.skew, scaler=c.scaler, linkage=c.linkage,
                        options=c.options, **params)
    finally:
        if base.engine is not None:
            base.engine.close()
            base.engine = None


def _segment(base: RunResult, *, out_dir, config: Config, algorithm, k, k_range, seed,
             features, reporter, compare: bool = False, **params) -> RunResult:
    timings = base.summary.timings_s
    features, table_notes, cluster_on = _cluster_on(base, config, features)
    check_segmentable(base.customers, base.summary.input.path, features)
    comparison = sm.UNSET
    if compare:
        table, recommendation = compare_on(base.customers, k=k, k_range=k_range, seed=seed,
                                           features=features, timings=timings,
                                           reporter=reporter,
                                           k_sample=config.clustering.k_sample,
                                           **{p: v for p, v in params.items()
                                              if p in ("skew", "scaler")})
        comparison = sm.Comparison(
            table=[sm.ComparisonRow(**row) for row in json.loads(table.to_json(
                orient="records"))], recommendation=recommendation)
    with _stage("cluster", timings, reporter):
        model = Segmenter(algorithm=algorithm, k=k, k_range=k_range, seed=seed,
                          features=features,
                          backend=base.engine.cluster_backend() if base.engine else None,
                          min_share=config.min_segment_share,
                          min_stability=config.min_stability, namer=clash_finder(
                              config, base.summary.get("customer_table", {}).get("columns")),
                          k_sample=config.clustering.k_sample, **params)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", CustsegWarning)  # kept in model.warnings_
            model.fit(base.customers)
    with _stage("profile", timings, reporter):
        labelled = with_segments(base.customers, model.labels_)
        roles = base.summary.get("customer_table", {}).get("columns")
        outcomes = outcome_columns(labelled, roles)
        profiles = build_profiles(labelled, outcomes)
        names = name_segments(profiles, config.naming_rules, at_risk_share=config.at_risk_share,
                              labels=config.labels,
                              roles=base.summary.get("customer_table", {}).get("columns"))
        labelled["segment_name"] = labelled["segment"].map(
            {i: n["name"] for i, n in names.items()})
        for seg_id, p in profiles.items():
            why = mixed_stages(p, config.lifecycle.min_action_fit)
            if why and seg_id != -1:
                names[seg_id]["mixed_stages"] = why
                base.summary.audit.warnings.append(
                    f"Segment {seg_id} ({names[seg_id]['name']}) {why}.")
        values = _segment_values(labelled, base.summary, config, names)
        found = None
        if base.lines:
            found = line_profiles(base.engine, labelled, base.summary.mapping, config,
                                  dt.date.fromisoformat(base.summary.as_of),
                                  {i: n["name"] for i, n in names.items()},
                                  line_attributes(base.summary))
            for seg_id, products in found.best.items():
                profiles[seg_id]["top_products"] = products
    with _stage("rules", timings, reporter):
        used = model.prep_.numeric_ + model.prep_.categorical_
        rules = segment_rules(labelled, model.prep_.numeric_, model.prep_.categorical_,
                              seed=seed, labels=config.labels)
        drivers = [sm.Outcome(**{**found, "drivers": [sm.OutcomeDriver(**d)
                                                      for d in found["drivers"]]})
                   for found in (outcome_drivers(labelled, o, model.prep_.numeric_,
                                                 model.prep_.categorical_, config.labels)
                                 for o in outcomes)]
        demographics, tests = None, sm.UNSET  # with a customer table joined to order lines
        if "join" in base.summary.get("customer_table", {}):
            demographics, info = customer_table_differences(
                labelled, base.summary.customer_table, used, labels=config.labels)
            tests = sm.Demographics(**info)
    base.customers = labelled
    base.segmenter = model
    base.summary = sm.clustered(
        base.summary, clustering_summary(model, profiles, names, rules, demographics,
                                         cluster_on=cluster_on, notes=table_notes,
                                         values=values, over=found and found.over),
        comparison=comparison, demographics=tests, outcomes=drivers or sm.UNSET,
        **({} if found is None else {
            "monthly_trend": [sm.TrendRow(**row) for row in monthly_trend(found.months)],
            "lift": found.lift, "cohorts": found.cohorts}))
    base.summary.audit.warnings.extend(model.warnings_)
    if base.engine is not None:
        with _stage("teardown", timings, reporter):
            base.engine.close()
            base.engine = None
    if out_dir is not None:
        from custseg.outputs.model import build_model, save_model
        from custseg.outputs.report import render_report

        with _stage("write", timings, reporter):
            saved = build_model(base.summary, base.segmenter, config, base.value_models)

            def extra(folder: Path) -> None:
                if config.report:
                    render_report(base.summary, base.customers, folder,
                                  figures=config.figures)
                save_model(saved, folder / "model.json")

            write_run(base, Path(out_dir), extra=with_backtest(base.summary, extra))
        base.out_dir = Path(out_dir)
    return base


def _segment_values(labelled: pd.DataFrame, summary, config: Config,
                    names: dict[int, dict[str, Any]]) -> dict[int, sm.SegmentValue]:
    """Each segment's predicted value, with the action its at-risk customers call for put
    in its actions (first when most of it is at risk); a customer table read alone gets
    the ``clv`` block saying why it has none."""
    if not config.clv.enabled:
        return {}
    if isinstance(summary, sm.TableSummary):
        summary.clv = unavailable(config)
        return {}
    if not summary.clv.fitted:
        return {}
    rule = at_risk_of(summary.clv)
    values = values_by(labelled, "segment", rule)
    for seg_id, value in values.items():
        names[seg_id]["actions"] = with_value_action(names[seg_id]["actions"], value, rule)
    return values


def compare_algorithms(input: str | Path | list | None = None, *, out_dir: str | Path | None = None,
                       customers: str | Path | None = None, config: Config | None = None,
                       db: str | None = None, sql: str | None = None,
                       frame: pd.DataFrame | None = None, k: int | str | None = None,
                       k_range: tuple[int, int] | None = None, seed: int | None = None,
                       features: list[str] | None = None, algorithms: list[str] | None = None,
                       reporter: Reporter | None = None, skew: str | None = None,
                       scaler: str | None = None, **params: Any
                       ) -> tuple[pd.DataFrame, str]:
    """Run every algorithm on the same prepared customers; rank them best first.

    Returns the comparison table and the recommendation in words; with ``out_dir`` also
    writes ``comparison.csv`` and ``recommendation.txt``. ``k``, ``k_range``, ``seed``,
    ``features``, ``skew`` and ``scaler`` left None take the config's ``[clustering]``
    values.
    """
    config = config or Config()
    c = config.clustering.replace(k=k, k_range=k_range, seed=seed, features=features,
                                  skew=skew, scaler=scaler)
    base = _base_table(input, customers=customers, config=config, db=db, sql=sql, frame=frame,
                       reporter=reporter)
    table, recommendation = compare_on(base.customers, k=c.k, k_range=c.k_range, seed=c.seed,
                                       features=c.features, algorithms=algorithms,
                                       timings=base.summary.timings_s, reporter=reporter,
                                       skew=c.skew, scaler=c.scaler, k_sample=c.k_sample,
                                       **params)
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        with atomic_file(out / "comparison.csv") as tmp:
            table.to_csv(tmp, index=False)
        (out / "recommendation.txt").write_text(recommendation + "\n", encoding="utf-8")
    return table, recommendation


def compare_on(customers: pd.DataFrame, *, k, k_range, seed, features, algorithms=None,
               timings: dict[str, float], reporter: Reporter | None = None, **params: Any
               ) -> tuple[pd.DataFrame, str]:
    """Fit every algorithm on one customer table; the ranked table and the recommendation."""
    rows = []
    for name in algorithms or list(ALGORITHMS):
        with _stage(name, timings, reporter):
            start = time.perf_counter()
            model = Segmenter(algorithm=name, k=k, k_range=k_range, seed=seed, features=features,
                              **params)
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", CustsegWarning)
                    model.fit(customers)
            except CustsegError as exc:
                rows.append({"algorithm": name, "k": None, "error": str(exc)})
                continue
            m = model.metrics_
            rows.append({"algorithm": name, "k": model.n_clusters_,
                         "silhouette": m["silhouette"],
                         "calinski_harabasz": m["calinski_harabasz"],
                         "davies_bouldin": m["davies_bouldin"],
                         "stability_ari": m["stability_ari"], "unclustered": m["unclustered"],
                         "seconds": round(time.perf_counter() - start, 2), "error": None})
    max_k = k if isinstance(k, int) else (k_range[1] if k_range else ACTION_RANGE[1])
    return rank(pd.DataFrame(rows), max_k=max_k)


def rank(table: pd.DataFrame, max_k: int | None = None) -> tuple[pd.DataFrame, str]:
    """Order algorithms best first by their mean rank over silhouette (high), Calinski-
    Harabasz (high), Davies-Bouldin (low) and stability (high). Results with more segments
    than ``max_k`` (too many to act on) come after the others, failures last."""
    ok = table[table["error"].isna()].copy()
    if ok.empty:
        return table, "No algorithm could segment these customers."
    ranks = pd.concat([ok["silhouette"].rank(ascending=False),
                       ok["calinski_harabasz"].rank(ascending=False),
                       ok["davies_bouldin"].rank(ascending=True),
                       ok["stability_ari"].rank(ascending=False)], axis=1)
    ok["mean_rank"] = ranks.mean(axis=1, skipna=True).round(2)
    ok["too_many"] = ok["k"] > max_k if max_k else False
    ok = ok.sort_values(["too_many", "mean_rank", "algorithm"], kind="stable")
    ok = ok.drop(columns="too_many")
    ranked = pd.concat([ok, table[table["error"].notna()]], ignore_index=True)
    best = ok.iloc[0]
    why = (f"silhouette {best['silhouette']}, Calinski-Harabasz {best['calinski_harabasz']}, "
           f"Davies-Bouldin {best['davies_bouldin']}, stability {best['stability_ari']}")
    text = (f"Recommended: {best['algorithm']} with k={int(best['k'])}: best mean rank "
            f"({best['mean_rank']}) over silhouette, Calinski-Harabasz, Davies-Bouldin and "
            f"stability ({why}).")
    if max_k and (ok["k"] > max_k).any():
        many = ", ".join(ok.loc[ok["k"] > max_k, "algorithm"])
        text += f" Ranked last for more than {max_k} segments: {many}."
    return ranked, text


def _base_table(input, *, customers, config, db, sql, frame, reporter,
                keep_lines: bool = False, started: float | None = None) -> RunResult:
    """RFM features of order lines, or a customer table read with a role for every column
    (``summary["columns"]``)."""
    timings = start_timings(started)
    engine = open_engine(config)
    with closed_on_error(engine):
        source, reading = read_input(engine, input, config, timings, reporter, db=db, sql=sql,
                                     frame=frame)
        if reading is not None:
            base = rfm_of(engine, source, reading, config, timings, reporter,
                          customers=customers)
            return _kept(base, engine, keep_lines)
        with _stage("read", timings, reporter):
            table, info = customers_from_source(engine.sample, engine.whole(source), config)
    notes = {}
    if info["key"] is None:
        notes["customer_id"] = info["notes"][0]
    if info["reference_day"] or any(v["role"] == "year" for v in info["columns"].values()):
        notes["reference_day"] = (
            f"Dates count days up to {info['reference_day']}, years up to "
            f"{info['reference_year']}." if info["reference_day"]
            else f"Years count up to {info['reference_year']}.")
    summary = sm.TableSummary(
        input=sm.Input(path=info["path"], rows=info["rows"], format=info["format"]),
        customer_table=info, columns=info["columns"], customers=len(table),
        audit=sm.Audit(rows_in=info["rows"], rows_used=len(table),
                       dropped={"missing_or_repeated_id": info["rows"] - len(table)},
                       warnings=list(info["warnings"]), notes=notes),
        timings_s=timings,
        customer_ids=privacy.DESCRIPTION if config.hash_ids else sm.UNSET)
    base = RunResult(customers=table, excluded=pd.DataFrame(columns=["customer_id", "reason"]),
                     summary=summary, id_salt=privacy.salt_for(config))
    return _kept(base, engine, keep_lines)


def _kept(base: RunResult, engine, keep: bool) -> RunResult:
    """The result with its engine kept open (clustering may run on it), or closed."""
    if keep:
        base.engine = engine
    else:
        engine.close()
    return base


def _cluster_on(base: RunResult, config: Config, features: list[str] | None
                ) -> tuple[list[str] | None, list[str], str]:
    """Features, notes and what was clustered on: "table" (a customer table alone),
    "behaviour" (transaction features), or "all" (``--cluster-on all`` with a joined
    customer table: its usable columns too)."""
    info = base.summary.get("customer_table")
    if info is None:
        return features, [], "behaviour"
    if "join" not in info:  # the columns read but not passed on are noted here
        notes = [f"Left out {c}: {why}." for c, why in info["left_out"].items()
                 if c not in base.customers.columns]
        return features, notes if features is None else [], "table"
    if config.cluster_on != "all" or features is not None:
        return features, [], config.cluster_on if features is None else "features"
    chosen, notes = behaviour_and_table_features(base.customers, info["usable_columns"],
                                                 config.max_missing)
    return chosen, notes, "all"


#: Segments whose names and first actions are checked for a candidate k are profiled on at
#: most this many customers (a seeded sample).
NAMING_SAMPLE = 50_000


def clash_finder(config: Config, roles: dict | None = None):
    """``namer(frame, labels) -> list of str`` for :class:`Segmenter`: the segments of a
    candidate k that would share a name or a first action (empty when all are distinct)."""
    def namer(frame: pd.DataFrame, labels: np.ndarray) -> list[str]:
        if len(frame) > NAMING_SAMPLE:
            rows = np.sort(np.random.default_rng(0).choice(len(frame), NAMING_SAMPLE,
                                                           replace=False))
            frame, labels = frame.iloc[rows].reset_index(drop=True), labels[rows]
        profiles = build_profiles(with_segments(frame, labels),
                                  outcome_columns(frame, roles))
        clashes = naming_clashes(profiles, config.naming_rules,
                                 at_risk_share=config.at_risk_share, labels=config.labels,
                                 roles=roles)
        # a candidate's segments are not yet numbered as the output's will be
        return [re.sub(r"^segments \d+ and \d+", "two segments", c) for c in clashes]
    return namer


def with_segments(frame: pd.DataFrame, labels: np.ndarray) -> pd.DataFrame:
    """Add ``segment``: 1..k, and -1 for customers no cluster claims."""
    out = frame.copy()
    out["segment"] = np.where(labels == NOISE, -1, labels + 1)
    return out


def clustering_summary(model: Segmenter, profiles: dict[int, dict[str, Any]],
                       names: dict[int, dict[str, Any]],
                       rules: dict[int, dict[str, Any]] | None = None,
                       demographics: dict[int, list[dict[str, Any]]] | None = None, *,
                       cluster_on: str = "behaviour", notes: list[str] | None = None,
                       values: dict[int, sm.SegmentValue] | None = None,
                       over: dict[int, dict[str, list[sm.Item]]] | None = None
                       ) -> sm.Clustering:
    """The clustering part of summary.json (with each segment's rule, its demographic
    differences when a customer table was joined, and what it buys more often than all
    customers with ``over``); ``notes`` come before the model's."""
    groups = []
    for seg_id in sorted(profiles, key=lambda s: (s == -1, s)):
        p = profiles[seg_id]
        groups.append(sm.Segment(
            id=seg_id, name=names[seg_id]["name"], size=p["customers"], share=p["share"],
            revenue_share=p.get("revenue_share", sm.UNSET),
            description=names[seg_id]["description"], actions=names[seg_id]["actions"],
            mixed_stages=names[seg_id].get("mixed_stages", sm.UNSET),
            profile=p, rule=sm.Rule(**rules[seg_id]) if rules and seg_id in rules else sm.UNSET,
            demographics=(demographics.get(seg_id, [])
                          if demographics is not None and seg_id != -1 else sm.UNSET),
            value=(values or {}).get(seg_id, sm.UNSET),
            over_represented=(over or {}).get(seg_id, {}) if over is not None else sm.UNSET))
    selection = model.k_selection_
    if selection is not None:
        selection = sm.KSelection(**{
            **selection, "candidates": [sm.Candidate(**c) for c in selection["candidates"]]
            if "candidates" in selection else sm.UNSET})
    return sm.Clustering(
        algorithm=model.algorithm, k=model.n_clusters_,
        features=sm.ClusterFeatures(used=model.prep_.numeric_ + model.prep_.categorical_,
                                    notes=[*(notes or []), *model.notes_],
                                    cluster_on=cluster_on),
        k_selection=selection,
        clustering_params=model.fitted_params_,
        clustering_extra=model.extra_,
        metrics=sm.Metrics(**{key: model.metrics_[key] for key in
                              ("silhouette", "calinski_harabasz", "davies_bouldin",
                               "stability_ari", "silhouette_sample")}),
        segments=groups)
