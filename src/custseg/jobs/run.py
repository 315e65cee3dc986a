"""The segmentation jobs: ``run_segments`` (``custseg run``) and ``compare_algorithms``
(``custseg compare``), on transactions (after RFM) or on a customer table alone."""

from __future__ import annotations

import datetime as dt
import json
import re
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from custseg.cluster._base import NOISE
from custseg.core import preload
from custseg.core import summary as sm
from custseg.core.config import Config
from custseg.core.exceptions import ConfigError, CustsegError, CustsegWarning
from custseg.core.threads import config_threads, sharing
from custseg.engines import open_engine
from custseg.engines.lines import main_levels
from custseg.io._customers import customers_from_source
from custseg.jobs.rfm import (
    Reporter,
    RunResult,
    _stage,
    closed_on_error,
    currency_code,
    currency_for,
    line_attributes,
    line_profiles,
    read_input,
    rfm_of,
    start_timings,
    waited,
)
from custseg.outputs.report._png import start_deferred
from custseg.outputs.rundir import atomic_file, write_run
from custseg.prep import privacy
from custseg.prep.checks import check_segmentable
from custseg.prep.lifecycle import STATE
from custseg.profile.labels import read_dictionary
from custseg.profile.lines import monthly_trend
from custseg.profile.outcomes import outcome_drivers
from custseg.profile.priorities import first_actions
from custseg.profile.profiles import (
    build_profiles,
    name_segments,
    naming_clashes,
    outcome_columns,
)
from custseg.profile.rules import segment_rules
from custseg.profile.stage_names import action_fit, misfit, stage_names

if TYPE_CHECKING:
    from custseg.cluster import Segmenter

# scikit-learn and SciPy (custseg.cluster, the value models, the customer table's tests)
# are imported where they are used, and loaded beside the job's cleaning
# (custseg.core.preload).


@config_threads
def run_segments(input: str | Path | list | None = None, *, out_dir: str | Path | None = None,
                 customers: str | Path | None = None, config: Config | None = None,
                 db: str | None = None, sql: str | None = None,
                 frame: pd.DataFrame | None = None, algorithm: str | None = None,
                 k: int | str | None = None, k_range: tuple[int, int] | None = None,
                 seed: int | None = None, features: list[str] | None = None,
                 reporter: Reporter | None = None, compare: bool | None = None,
                 skew: str | None = None, scaler: str | None = None, linkage: str | None = None,
                 options: dict[str, Any] | None = None, started: float | None = None,
                 strategy: str | None = None, **params: Any) -> RunResult:
    """RFM (for order lines) plus clustering into segments; or clustering of a customer
    table alone. Writes what :func:`~custseg.run_rfm` writes, with ``segment`` and
    ``segment_name`` columns and the clustering in ``summary.json``. With ``compare`` every
    algorithm is also run and ranked (``summary["comparison"]``). The clustering keywords
    (``algorithm``, ``k``, ``k_range``, ``seed``, ``features``, ``compare``, ``skew``,
    ``scaler``, ``linkage``, ``options``, ``strategy``) left None take the config's
    ``[clustering]`` values; other keyword arguments (``n_init``, ...) go to
    :class:`~custseg.Segmenter`. Order lines are segmented lifecycle stage first
    (:class:`~custseg.cluster.StagedSegmenter`) unless ``strategy`` is "clusters" or k
    is given.
    ``started`` (a ``time.perf_counter()``) times the start-up as stage ``start``."""
    config = config or Config()
    if config.dictionary:
        config = config.replace(labels={**read_dictionary(config.dictionary),
                                        **config.labels})
    c = config.clustering.replace(algorithm=algorithm, k=k, k_range=k_range, seed=seed,
                                  features=features, compare=compare, skew=skew,
                                  scaler=scaler, linkage=linkage, options=options,
                                  strategy=strategy)
    # a library call's libraries load beside its cleaning too (a command line's: started)
    preload.start(command_line=False, report=out_dir is not None and config.report)
    base = _base_table(input, customers=customers, config=config, db=db, sql=sql, frame=frame,
                       reporter=reporter, keep_lines=True, started=started)
    try:
        return _segment(base, out_dir=out_dir, config=config, algorithm=c.algorithm, k=c.k,
                        k_range=c.k_range, seed=c.seed, features=c.features, reporter=reporter,
                        compare=c.compare, skew=c.skew, scaler=c.scaler, linkage=c.linkage,
                        options=c.options, strategy=c.strategy, **params)
    finally:
        if base.engine is not None:
            base.engine.close()
            base.engine = None


def _segment(base: RunResult, *, out_dir, config: Config, algorithm, k, k_range, seed,
             features, reporter, compare: bool = False, strategy: str = "auto",
             **params) -> RunResult:
    from custseg.cluster import Segmenter, StagedSegmenter
    from custseg.profile.demographics import customer_table_differences

    timings = base.summary.timings_s
    features, table_notes, cluster_on = _cluster_on(base, config, features)
    check_segmentable(base.customers, base.summary.input.path, features)
    strategy, why = choose_strategy(strategy, base.customers, k, k_range)
    fallback = None
    if strategy == "stages" and features is None and base.lines:
        features, fallback, note = _what_where_how(base, config)
        if note:
            why += f"; {note}"
    comparison = sm.UNSET
    if compare:
        table, recommendation = compare_on(base.customers, k=k, k_range=k_range, seed=seed,
                                           features=features, timings=timings,
                                           reporter=reporter,
                                           least_fit=config.lifecycle.min_action_fit,
                                           k_sample=config.clustering.k_sample,
                                           **{p: v for p, v in params.items()
                                              if p in ("skew", "scaler")})
        comparison = sm.Comparison(
            table=[sm.ComparisonRow(**row) for row in json.loads(table.to_json(
                orient="records"))], recommendation=recommendation)
    with _stage("cluster", timings, reporter), sharing():
        backend = base.engine.cluster_backend() if base.engine else None
        if strategy == "stages":
            model = StagedSegmenter(algorithm=algorithm, seed=seed, features=features,
                                    backend=backend, min_share=config.min_segment_share,
                                    min_stability=config.min_stability,
                                    k_sample=config.clustering.k_sample,
                                    least_fit=config.lifecycle.min_action_fit,
                                    fallback=fallback, **params)
        else:
            model = Segmenter(algorithm=algorithm, k=k, k_range=k_range, seed=seed,
                              features=features, backend=backend,
                              min_share=config.min_segment_share,
                              min_stability=config.min_stability, namer=clash_finder(
                                  config, base.summary.get("customer_table", {}).get(
                                      "columns")),
                              k_sample=config.clustering.k_sample, **params)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", CustsegWarning)  # kept in model.warnings_
            model.fit(base.customers)
    with _stage("profile", timings, reporter):
        start_deferred()  # the PNG renderers of a long run, if it deferred them
        labelled = with_segments(base.customers, model.labels_)
        roles = base.summary.get("customer_table", {}).get("columns")
        outcomes = outcome_columns(labelled, roles)
        # The rules are fitted in a thread beside the profiles (a decision tree a segment,
        # much of it outside Python's lock, while DuckDB profiles the lines), on their
        # own copy of the columns they read; stage "rules" is what is left of them.
        categorical = model.prep_.categorical_ + (["stage"] if strategy == "stages" else [])
        read = [c for c in dict.fromkeys(["segment", *model.prep_.numeric_, *categorical,
                                          *outcomes]) if c in labelled.columns]
        beside = ThreadPoolExecutor(max_workers=1, thread_name_prefix="custseg-rules")
        ruled = beside.submit(_rules, labelled[read].copy(), model.prep_.numeric_,
                              model.prep_.categorical_, categorical, outcomes, seed,
                              config.labels)
        beside.shutdown(wait=False)
        profiles = build_profiles(labelled, outcomes)
        currency = currency_code(base.summary)
        staged = strategy == "stages"  # its own names, but for the unclustered
        names = name_segments({i: p for i, p in profiles.items() if i == -1 or not staged},
                              config.naming_rules, at_risk_share=config.at_risk_share,
                              labels=config.labels, roles=roles, currency=currency)
        if staged:
            names.update(stage_names(
                {i: p for i, p in profiles.items() if i != -1},
                {i + 1: g for i, g in enumerate(model.segment_groups_)},
                labels=config.labels, roles=roles, currency=currency,
                levels=segment_levels(model.groups_)))
        labelled["segment_name"] = labelled["segment"].map(
            {i: n["name"] for i, n in names.items()})
        values = _segment_values(labelled, base.summary, config, names,
                                 first=strategy != "stages")
        _fit_actions(profiles, names, config.lifecycle.min_action_fit,
                     base.summary.audit.warnings)
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
        rules, drivers = ruled.result()
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
                                         values=values, over=found and found.over,
                                         strategy=strategy_summary(strategy, why, model)),
        comparison=comparison, demographics=tests, outcomes=drivers or sm.UNSET,
        **({} if found is None else {
            "monthly_trend": [sm.TrendRow(**row) for row in monthly_trend(found.months)],
            "lift": found.lift, "cohorts": found.cohorts}))
    base.summary.audit.warnings.extend(model.warnings_)
    if isinstance(base.summary, sm.RunSummary):
        base.summary.first_actions = first_actions(base.summary)
    if base.engine is not None:
        with _stage("teardown", timings, reporter):
            base.engine.close()
            base.engine = None
    if out_dir is not None:
        from custseg.jobs.value import with_backtest
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


def _rules(table: pd.DataFrame, numeric: list[str], categorical: list[str],
           rule_categorical: list[str], outcomes: list[str], seed: int,
           labels) -> tuple[dict[int, dict[str, Any]], list[sm.Outcome]]:
    """Each segment's rule and each outcome's drivers (see :func:`_segment`)."""
    rules = segment_rules(table, numeric, rule_categorical, seed=seed, labels=labels)
    drivers = [sm.Outcome(**{**found, "drivers": [sm.OutcomeDriver(**d)
                                                  for d in found["drivers"]]})
               for found in (outcome_drivers(table, o, numeric, categorical, labels)
                             for o in outcomes)]
    return rules, drivers


def choose_strategy(strategy: str, customers: pd.DataFrame, k, k_range) -> tuple[str, str]:
    """The strategy of a run ("stages" or "clusters") and why."""
    staged = "stage" in customers.columns
    if strategy == "stages":
        if not staged:
            raise ConfigError("--strategy stages needs order lines (each customer's lifecycle "
                              "stage is read from his orders); a customer table alone is "
                              "clustered: use --strategy clusters.")
        return "stages", ("asked for (--strategy stages): each customer's lifecycle stage "
                          "first, then value and behaviour within it")
    if strategy == "clusters":
        return "clusters", ("asked for (--strategy clusters): all customers clustered at "
                            "once; a segment may then mix lifecycle stages")
    if not staged:
        return "clusters", ("a customer table has no order history to read lifecycle stages "
                            "from, so its customers are clustered at once")
    if k != "auto" or k_range is not None:
        return "clusters", (f"{'--k' if k != 'auto' else '--k-range'} asks for a number of "
                            "segments over all customers, so they are clustered at once "
                            "(--strategy stages splits each lifecycle stage instead)")
    return "stages", ("order lines: each customer's lifecycle stage comes first, so that one "
                      "action fits a segment (recency decides the conversation), then value "
                      "and behaviour split each stage; --strategy clusters clusters all "
                      "customers at once")


#: At least this share of one-time buyers: their orders are segmented by what, where and
#: how they bought and by who they are, as their rhythm says nothing.
ONE_TIME_DATA = 0.9


def _what_where_how(base: RunResult, config: Config
                    ) -> tuple[list[str] | None, str | None, str]:
    """Features for order lines where nearly every customer bought once: the transaction
    features, each customer's main category and line attributes (channel, payment, store:
    what he spent most on) and the customer attributes of the lines (gender, age); None
    (the default features) otherwise. Also the column that splits a stage clustering
    cannot split (the category, else the first line attribute), and what was done, in
    words."""
    table = base.customers
    once = float((table["frequency"] <= 1).mean())
    if once < ONE_TIME_DATA:
        return None, None, ""
    columns = {n: c for n, c in level_columns(base.summary).items() if n not in table.columns}
    table = base.customers = with_main_levels(base.engine, table, columns)
    roles = base.summary.get("roles")
    people = [c for c in (roles.customer_attributes if roles else []) if c in table.columns]
    added = [c for c in columns if c in table.columns]
    if not added and not people:
        return None, None, ""
    from custseg.cluster._prepare import behaviour_and_table_features

    chosen, _ = behaviour_and_table_features(table, added + people, config.max_missing)
    kept = [c for c in added + people if c in chosen]
    return chosen, next(iter(added), None), (
        f"{once:.0%} of the customers bought once, so each stage is also split by what, "
        f"where and how they bought and who they are: {', '.join(kept)}")


def level_columns(summary: sm.Summary) -> dict[str, str]:
    """What, where and how customers bought, by name -> column of the engine's lines: the
    category, and the line attributes (channel, payment method, store)."""
    columns = {"category": "category"} if "category" in summary.mapping else {}
    return columns | {name: f"line_attr_{i}" for i, name in
                      enumerate(line_attributes(summary), start=1)}


def with_main_levels(engine, table: pd.DataFrame, columns: dict[str, str]) -> pd.DataFrame:
    """``table`` with each customer's main level of ``columns`` (see
    :func:`~custseg.engines.lines.main_levels`)."""
    levels = main_levels(engine, columns) if columns else None
    if levels is None or len(levels.columns) < 2:
        return table
    return table.merge(levels, on="customer_id", how="left")


def segment_levels(groups: list[dict[str, Any]]) -> dict[int, tuple[str, str | None]]:
    """Segment id (1..) -> (column, level) of the segments of groups split by a category's
    levels (level None: the other levels together)."""
    out: dict[int, tuple[str, str | None]] = {}
    for g in groups:
        split = g.get("levels")
        if split:
            for level, local in split["levels"].items():
                out[g["first"] + local + 1] = (split["column"], level)
            if split["other"] is not None:
                out[g["first"] + split["other"] + 1] = (split["column"], None)
    return out


def strategy_summary(strategy: str, why: str, model) -> sm.Strategy:
    groups = sm.UNSET
    if strategy == "stages":
        groups = [sm.StageGroup(group=g["group"], state=g["state"], stages=g["stages"],
                                customers=g["customers"], k=g["k"], reason=g["reason"])
                  for g in model.groups_]
    return sm.Strategy(name=strategy, reason=why, groups=groups)


def _fit_actions(profiles: dict[int, dict[str, Any]], names: dict[int, dict[str, Any]],
                 least: float, warnings_out: list[str]) -> None:
    """Each segment's action fit (the share of its customers in the states its first
    action is for), and a warning naming the others where it is under ``least``."""
    for seg_id, p in profiles.items():
        if seg_id == -1:
            continue
        states = names[seg_id].get("action_for")
        fit = action_fit(p, states)
        if fit is None:
            continue
        names[seg_id]["action_for"] = states or [p["state"]]
        names[seg_id]["action_fit"] = fit
        why = misfit(p, states, least)
        if why:
            names[seg_id]["action_warning"] = why
            warnings_out.append(f"Segment {seg_id} ({names[seg_id]['name']}) {why}.")


def _segment_values(labelled: pd.DataFrame, summary, config: Config,
                    names: dict[int, dict[str, Any]], first: bool = True
                    ) -> dict[int, sm.SegmentValue]:
    """Each segment's predicted value, with the action its at-risk customers call for put
    in its actions (first when most of it is at risk and ``first``, its first action then
    for cooling and lapsed customers); a customer table read alone gets the ``clv`` block
    saying why it has none."""
    from custseg.jobs.value import at_risk_of, unavailable, values_by, with_value_action

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
        before = names[seg_id]["actions"][:1]
        names[seg_id]["actions"] = with_value_action(names[seg_id]["actions"], value, rule,
                                                     first=first, currency=currency_code(
                                                         summary))
        if names[seg_id]["actions"][:1] != before:
            names[seg_id]["action_for"] = ["cooling", "lapsed"]
    return values


@config_threads
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
                                       least_fit=config.lifecycle.min_action_fit, **params)
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        with atomic_file(out / "comparison.csv") as tmp:
            table.to_csv(tmp, index=False)
        (out / "recommendation.txt").write_text(recommendation + "\n", encoding="utf-8")
    return table, recommendation


def compare_on(customers: pd.DataFrame, *, k, k_range, seed, features, algorithms=None,
               timings: dict[str, float], reporter: Reporter | None = None,
               least_fit: float = 0.8, **params: Any) -> tuple[pd.DataFrame, str]:
    """Fit every algorithm on one customer table; the ranked table and the recommendation.
    Order lines (customers with a lifecycle ``stage``) also get the default strategy,
    lifecycle stage first with k-means within each stage (algorithm "stages+kmeans"), and
    every row its best action fit: the share of its least uniform segment held by that
    segment's largest state (engaged, cooling, lapsed), what a first action for that state
    would fit."""
    from custseg.cluster import ALGORITHMS, Segmenter, StagedSegmenter
    from custseg.cluster._evaluate import ACTION_RANGE

    rows = []
    staged = "stage" in customers.columns
    names = list(algorithms or ALGORITHMS) + (["stages+kmeans"] if staged else [])
    for name in names:
        with _stage(name, timings, reporter):
            start = time.perf_counter()
            model = (StagedSegmenter(seed=seed, features=features, least_fit=least_fit,
                                     **params)
                     if name == "stages+kmeans" else
                     Segmenter(algorithm=name, k=k, k_range=k_range, seed=seed,
                               features=features, **params))
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
                         **({"best_action_fit": best_action_fit(customers["stage"],
                                                                model.labels_)}
                            if staged else {}),
                         "seconds": round(time.perf_counter() - start, 2), "error": None})
    max_k = k if isinstance(k, int) else (k_range[1] if k_range else ACTION_RANGE[1])
    return rank(pd.DataFrame(rows), max_k=max_k, least_fit=least_fit)


def best_action_fit(stage: pd.Series, labels: np.ndarray) -> float:
    """The lowest, over segments, of the share of a segment held by its largest state."""
    state = stage.map(STATE).to_numpy()
    shares = (pd.crosstab(labels[labels != NOISE], state[labels != NOISE], normalize="index")
              .max(axis=1))
    return round(float(shares.min()), 4)


def rank(table: pd.DataFrame, max_k: int | None = None, least_fit: float = 0.8
         ) -> tuple[pd.DataFrame, str]:
    """Order algorithms best first by their mean rank over silhouette (high), Calinski-
    Harabasz (high), Davies-Bouldin (low) and stability (high). Results with a segment no
    one action can fit (``best_action_fit`` under ``least_fit``), then those with more
    segments than ``max_k`` (too many to act on), come after the others; failures last.
    The stage-first strategy is not held to ``max_k``: its segments are one per stage and
    value."""
    ok = table[table["error"].isna()].copy()
    if ok.empty:
        return table, "No algorithm could segment these customers."
    ranks = pd.concat([ok["silhouette"].rank(ascending=False),
                       ok["calinski_harabasz"].rank(ascending=False),
                       ok["davies_bouldin"].rank(ascending=True),
                       ok["stability_ari"].rank(ascending=False)], axis=1)
    ok["mean_rank"] = ranks.mean(axis=1, skipna=True).round(2)
    staged = ok["algorithm"].str.startswith("stages")
    ok["too_many"] = (ok["k"] > max_k) & ~staged if max_k else False
    ok["mixed"] = (ok["best_action_fit"] < least_fit if "best_action_fit" in ok
                   else False)
    ok = ok.sort_values(["mixed", "too_many", "mean_rank", "algorithm"], kind="stable")
    mixed = ", ".join(ok.loc[ok["mixed"], "algorithm"])
    many_k = ok.loc[ok["too_many"], "algorithm"]
    ok = ok.drop(columns=["too_many", "mixed"])
    ranked = pd.concat([ok, table[table["error"].notna()]], ignore_index=True)
    best = ok.iloc[0]
    why = (f"silhouette {best['silhouette']}, Calinski-Harabasz {best['calinski_harabasz']}, "
           f"Davies-Bouldin {best['davies_bouldin']}, stability {best['stability_ari']}")
    text = (f"Recommended: {best['algorithm']} with k={int(best['k'])}: best mean rank "
            f"({best['mean_rank']}) over silhouette, Calinski-Harabasz, Davies-Bouldin and "
            f"stability ({why}).")
    if "best_action_fit" in best and best["best_action_fit"] == best["best_action_fit"]:
        text += (f" Its least uniform segment is {best['best_action_fit']:.0%} one "
                 "lifecycle state, so one action can fit it that well.")
    if mixed:
        text += (f" Ranked after it for a segment under {least_fit:.0%} one lifecycle state "
                 f"(no one action fits it): {mixed}.")
    if len(many_k):
        text += f" Ranked last for more than {max_k} segments: {', '.join(many_k)}."
    return ranked, text


def _base_table(input, *, customers, config, db, sql, frame, reporter,
                keep_lines: bool = False, started: float | None = None) -> RunResult:
    """RFM features of order lines, or a customer table read with a role for every column
    (``summary["columns"]``)."""
    engine = open_engine(config)  # a Spark session starting: part of the start-up
    timings = start_timings(started)
    with closed_on_error(engine):
        source, reading = read_input(engine, input, config, timings, reporter, db=db, sql=sql,
                                     frame=frame)
        if reading is not None:
            base = rfm_of(engine, source, reading, config, timings, reporter,
                          customers=customers)
            return _kept(base, engine, keep_lines)
        start_deferred(early=True)  # the PNG renderers: a table's reading is Python's
        waited(timings)  # a customer table's reading uses SciPy
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
        timings_s=timings, currency=currency_for(config, None, ""),
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
    from custseg.cluster._prepare import behaviour_and_table_features

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
    """Add ``segment``: 1..k, and -1 for customers no cluster claims (a new column on a
    shallow copy: the customers' table is not copied, 2 GB at 5M customers)."""
    out = frame.copy(deep=False)
    out["segment"] = np.where(labels == NOISE, -1, labels + 1)
    return out


def clustering_summary(model: Segmenter, profiles: dict[int, dict[str, Any]],
                       names: dict[int, dict[str, Any]],
                       rules: dict[int, dict[str, Any]] | None = None,
                       demographics: dict[int, list[dict[str, Any]]] | None = None, *,
                       cluster_on: str = "behaviour", notes: list[str] | None = None,
                       values: dict[int, sm.SegmentValue] | None = None,
                       over: dict[int, dict[str, list[sm.Item]]] | None = None,
                       strategy: sm.Strategy | None = None) -> sm.Clustering:
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
            stage_group=names[seg_id].get("stage_group", sm.UNSET),
            action_for=names[seg_id].get("action_for") or sm.UNSET,
            action_fit=names[seg_id].get("action_fit", sm.UNSET),
            action_warning=names[seg_id].get("action_warning", sm.UNSET),
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
        strategy=strategy or sm.UNSET, algorithm=model.algorithm, k=model.n_clusters_,
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
