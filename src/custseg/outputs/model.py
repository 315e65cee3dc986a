"""Saved models: plain JSON (no pickle), checked on load, used to score new customers.

``model.json`` holds what scoring needs: the column mapping and as-of rule, the feature
preparation (imputation, transforms, scaling, one-hot levels and weights), the RFM cut
points and segment map, the segment centres, the clustering's assignment rule and the
names, descriptions and actions. A SHA-256 checksum over the content catches edits and
damage; a file of another major format version, a malformed or tampered one is refused
with one line, never executed.

The assignment rule (``clustering.assignment``, format 1.1; see ``cluster/_rules.py``) is
the one the fit used, with the final segment ids:

* ``nearest_centre``: ``centers`` and the ``segments`` of each (k-means, k-prototypes on
  numeric data, affinity propagation exemplars; hierarchical: the micro-cluster centres);
* ``gaussian_mixture``: ``covariance_type``, ``weights``, ``means``,
  ``precisions_cholesky`` and the segment of each component;
* ``kprototypes``: numeric ``centers``, categorical ``modes`` (codes into the features'
  levels, -1 other) and ``gamma``;
* ``nearest_point``: ``points`` (training customers, prepared), their ``segments`` (-1
  for Unclustered), ``radius`` (one number, or one per segment 1..k), ``what`` they are
  and how many there were (``of``; more than stored when the set was thinned).

A 1.0 model has no ``assignment``: its customers go to the nearest of ``centers``.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

import msgspec
import numpy as np
import pandas as pd

from custseg.cluster._base import NOISE
from custseg.cluster._prepare import FeaturePrep
from custseg.cluster._rules import COVARIANCE_TYPES, KINDS, apply_rule
from custseg.core.config import Config
from custseg.core.exceptions import InputError
from custseg.core.summary import RunSummary, TableRunSummary
from custseg.core.version import __version__
from custseg.prep.predict import ValueModels
from custseg.prep.rfm import RFM_COLUMNS, rfm_scores
from custseg.profile.profiles import UNCLUSTERED

FORMAT = "custseg-model"
FORMAT_VERSION = "1.2"
MAX_BYTES = 64 * 1024 * 1024


def _checksum(body: dict[str, Any]) -> str:
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode("ascii")).hexdigest()


class ModelConfig(msgspec.Struct):
    """The reading and cleaning settings that scoring repeats."""

    dayfirst: bool | None
    cleaning: dict[str, bool]
    cancellation_pattern: str | None


class ModelFeatures(msgspec.Struct):
    """The feature preparation: columns, and per feature its imputation, transform and
    scaling (numeric) or levels and weight (categorical)."""

    numeric: list[str]
    categorical: list[str]
    spec: dict[str, dict[str, Any]]
    columns: list[str]


class ModelRfm(msgspec.Struct):
    """RFM cut points and the segment map."""

    edges: dict[str, list[float]]
    segments: dict[str, list[str]]


class ModelClustering(msgspec.Struct, omit_defaults=True):
    """The segment centres and the assignment rule (absent in format 1.0)."""

    algorithm: str
    k: int
    centers: list[list[float]]
    rule: str | msgspec.UnsetType = msgspec.UNSET
    assignment: dict[str, Any] | msgspec.UnsetType = msgspec.UNSET


#: The parameters of each value model a model file may store.
PARAMS = {"bgnbd": ("r", "alpha", "a", "b"), "mbgnbd": ("r", "alpha", "a", "b"),
          "pnbd": ("r", "alpha", "s", "beta"), "gamma_gamma": ("p", "q", "gamma"),
          "lognormal": ("mu", "tau2", "sigma2", "level")}


class ModelClv(msgspec.Struct):
    """The fitted value models (time in days) and the settings of their predictions."""

    model: Literal["bgnbd", "mbgnbd", "pnbd"]
    purchases: dict[str, float]
    spend: dict[str, float] | None
    horizon_days: int
    discount_rate: float
    spend_model: Literal["gamma_gamma", "lognormal"] = "gamma_gamma"


class ModelSegment(msgspec.Struct):
    """A segment's id (-1: Unclustered), name and words."""

    id: int
    name: str
    description: str
    actions: list[str]


class ModelFile(msgspec.Struct):
    """A saved custseg model (``model.json``)."""

    format: Literal["custseg-model"]
    format_version: str
    custseg_version: str
    kind: Literal["transactions", "customers"]
    as_of: str | None
    mapping: dict[str, str]
    config: ModelConfig
    features: ModelFeatures
    rfm: ModelRfm | None
    clustering: ModelClustering
    segments: list[ModelSegment]
    checksum: str
    clv: ModelClv | None = None  # absent before format 1.2, or without value models


def model_schema() -> dict[str, Any]:
    """The JSON Schema of ``model.json``."""
    return {"$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": "custseg model.json",
            "description": "A saved custseg model: what scoring new customers needs.",
            **msgspec.json.schema(ModelFile)}


def build_model(summary: RunSummary | TableRunSummary, segmenter, config: Config,
                value_models: ValueModels | None = None) -> dict[str, Any]:
    """The model of a finished ``custseg run`` (its summary, fitted Segmenter and value
    models)."""
    segments = [{"id": s.id, "name": s.name, "description": s.description,
                 "actions": s.actions} for s in summary.segments]
    if isinstance(summary, TableRunSummary):
        return _model(segmenter, config, segments)
    clv = None if value_models is None else {
        "model": value_models.model, "spend_model": value_models.spend_model,
        "purchases": value_models.purchases, "spend": value_models.spend,
        "horizon_days": value_models.horizon, "discount_rate": value_models.discount_rate}
    return _model(segmenter, config, segments, as_of=summary.as_of, mapping=summary.mapping,
                  edges=summary.rfm_edges, clv=clv)


def value_models(model: dict[str, Any]) -> ValueModels | None:
    """The value models a model file stores (None: it has none)."""
    clv = model.get("clv")
    if clv is None:
        return None
    return ValueModels(clv["purchases"], clv["spend"], clv["horizon_days"],
                       clv["discount_rate"], model=clv["model"],
                       spend_model=clv.get("spend_model", "gamma_gamma"))


def _model(segmenter, config: Config, segments: list[dict[str, Any]], *,
           as_of: str | None = None, mapping: dict[str, str] | None = None,
           edges: dict[str, list[float]] | None = None,
           clv: dict[str, Any] | None = None) -> dict[str, Any]:
    """The model of a fitted Segmenter with its segments' words (and, for order lines, the
    snapshot date, the mapping and the RFM cut points)."""
    prep = segmenter.prep_
    body = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "custseg_version": __version__,
        "kind": "customers" if edges is None else "transactions",
        "as_of": as_of,
        "mapping": mapping or {},
        "config": {"dayfirst": config.dayfirst, "cleaning": config.cleaning,
                   "cancellation_pattern": config.cancellation_pattern},
        "features": {"numeric": prep.numeric_, "categorical": prep.categorical_,
                     "spec": prep.spec_, "columns": prep.columns_},
        "rfm": None if edges is None else {"edges": edges, "segments": config.rfm_map},
        "clustering": {"algorithm": segmenter.algorithm, "k": segmenter.n_clusters_,
                       "rule": (staged_text(segmenter) if hasattr(segmenter, "groups_")
                                else rule_text(segmenter.algorithm, segmenter.assignment_)),
                       "centers": np.asarray(segmenter.cluster_centers_).round(12).tolist(),
                       "assignment": (staged_json(segmenter) if hasattr(segmenter, "groups_")
                                      else rule_json(segmenter.assignment_))},
        "segments": segments,
        **({"clv": clv} if clv is not None else {}),
    }
    return {**body, "checksum": _checksum(body)}


def _features_json(prep) -> dict[str, Any]:
    return {"numeric": prep.numeric_, "categorical": prep.categorical_, "spec": prep.spec_,
            "columns": prep.columns_}


def staged_json(staged) -> dict[str, Any]:
    """The assignment of a :class:`~custseg.cluster.StagedSegmenter`: per lifecycle group
    its stages, state and segment ids, and its split: none (one segment), by the level of
    a column, or its own features and rule (whose segments 1..k are the group's, in
    order)."""
    groups = []
    for g in staged.groups_:
        entry: dict[str, Any] = {"group": g["group"], "state": g["state"],
                                 "stages": list(g["stages"])}
        model = g["segmenter"]
        if g.get("levels"):
            split = g["levels"]
            entry["levels"] = {"column": split["column"],
                               "levels": {k: v + g["first"] + 1
                                          for k, v in split["levels"].items()},
                               "other": (None if split["other"] is None
                                         else split["other"] + g["first"] + 1)}
            entry["segments"] = list(range(g["first"] + 1, g["first"] + g["k"] + 1))
        elif model is None:
            entry["segments"] = [g["first"] + 1]
        else:  # the group's own rule, its segments numbered 1..k within it
            entry["features"] = _features_json(model.prep_)
            entry["assignment"] = rule_json(model.assignment_)
            entry["segments"] = list(range(g["first"] + 1, g["first"] + g["k"] + 1))
        groups.append(entry)
    return {"kind": "staged", "by": staged.by, "groups": groups}


def staged_text(staged) -> str:
    """The assignment of a StagedSegmenter in words."""
    parts = []
    for g in staged.groups_:
        model = g["segmenter"]
        how = (f"segments {g['first'] + 1}-{g['first'] + g['k']} by the level of "
               f"{g['levels']['column']}" if g.get("levels") else
               f"segment {g['first'] + 1}" if model is None else
               f"segments {g['first'] + 1}-{g['first'] + g['k']} by "
               + rule_text(model.algorithm, model.assignment_))
        parts.append(f"{' or '.join(g['stages'])}: {how}")
    return (f"the customer's lifecycle stage (column {staged.by!r}) first, then within it: "
            + "; ".join(parts))


def _segment_ids(labels) -> list[int]:
    return [NOISE if v == NOISE else int(v) + 1 for v in np.asarray(labels).tolist()]


def rule_json(rule: dict[str, Any]) -> dict[str, Any]:
    """The JSON form of a fitted assignment rule (labels as segment ids 1..k, -1)."""
    kind = rule["kind"]
    out: dict[str, Any] = {"kind": kind}
    if kind == "gaussian_mixture":
        out["covariance_type"] = rule["covariance_type"]
        out["weights"] = np.asarray(rule["weights"], dtype=float).tolist()
    elif kind == "kprototypes":
        out["gamma"] = float(rule["gamma"])
    elif kind == "nearest_point":
        radius = np.asarray(rule["radius"], dtype=float)
        out["radius"] = radius.tolist()
        out["what"], out["of"] = rule["what"], int(rule["of"])
        out["stored"] = len(rule["labels"])
    out["segments"] = _segment_ids(rule["labels"])
    for key in ("centers", "modes", "means", "precisions_cholesky", "points"):
        if key in rule:
            out[key] = np.asarray(rule[key]).tolist()
    return out


def rule_text(algorithm: str, rule: dict[str, Any]) -> str:
    """The assignment rule in words."""
    kind = rule["kind"]
    m = len(rule["labels"])
    if kind == "gaussian_mixture":
        return (f"the most likely of the {m} mixture components (highest log weight + log "
                f"density with the stored means and precision Cholesky factors, covariance "
                f"'{rule['covariance_type']}'), as scikit-learn's GaussianMixture.predict; "
                "each component is one segment")
    if kind == "kprototypes":
        return (f"the k-prototype of lowest cost: squared Euclidean distance over the "
                f"numeric columns plus gamma={float(rule['gamma']):.6g} times the number of "
                "categorical columns that differ from the prototype's modes")
    if kind == "nearest_point":
        kept = (f"{m:,} {rule['what']}" if int(rule["of"]) == m
                else f"{m:,} of the {int(rule['of']):,} {rule['what']} (a random sample, to "
                     "bound the file)")
        radius = np.asarray(rule["radius"], dtype=float)
        within = (f"within eps={float(radius):.6g}" if radius.ndim == 0 else
                  "within that segment's radius (99th percentile of its members' "
                  "nearest-member distances)")
        noise = ", Unclustered ones included," if (np.asarray(rule["labels"]) == NOISE).any() \
            else ""
        return (f"the nearest of the {kept}{noise} in the prepared feature space gives its "
                f"segment when it is {within}; otherwise Unclustered (-1)")
    if algorithm == "hierarchical":
        return (f"the nearest of the {m} k-means micro-cluster centres in the prepared "
                "feature space; each micro-cluster belongs to one segment of the merge tree "
                "cut at k")
    if algorithm == "affinity":
        return "the nearest exemplar (a customer affinity propagation chose) in the prepared " \
               "feature space"
    return "the nearest centre in the prepared feature space"


def _as_array(value: Any, ndim: int, shape: tuple[int | None, ...], what: str,
              dtype=float) -> np.ndarray:
    try:
        a = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"{what} is not an array of numbers") from None
    if a.ndim != ndim or any(want is not None and got != want
                             for got, want in zip(a.shape, shape, strict=True)):
        raise ValueError(f"{what} has shape {a.shape}, expected "
                         f"{tuple('*' if v is None else v for v in shape)}")
    if not np.isfinite(a).all():
        raise ValueError(f"{what} has a value that is not a finite number")
    if dtype is not float:
        if (a != np.round(a)).any():
            raise ValueError(f"{what} must hold whole numbers")
        return a.astype(dtype)
    return a


def rule_from_json(model: dict[str, Any]) -> dict[str, Any]:
    """The checked assignment rule of a loaded model (labels 0..k-1, -1), in the form
    ``custseg.cluster._rules.apply_rule`` takes; ValueError says what is wrong."""
    clustering = model["clustering"]
    features = model["features"]
    ncols, n_num = len(features["columns"]), len(features["numeric"])
    n_cat = len(features["categorical"])
    ids = {s["id"] for s in model["segments"]}
    a = clustering.get("assignment")
    if isinstance(a, dict) and a.get("kind") == "staged":
        return _staged_from_json(model, a)
    if a is None:  # format 1.0: nearest stored centre
        centers = _as_array(clustering["centers"], 2, (None, ncols), "centers")
        return {"kind": "nearest_centre", "centers": centers,
                "labels": np.arange(len(centers))}
    if not isinstance(a, dict) or a.get("kind") not in KINDS:
        raise ValueError(f"its kind is not one of {list(KINDS)}")
    kind = a["kind"]
    segs = a.get("segments")
    if (not isinstance(segs, list) or (not segs and kind != "nearest_point")
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in segs)):
        raise ValueError("'segments' is not a non-empty list of segment ids")
    allowed = ids - {NOISE} | ({NOISE} if kind == "nearest_point" else set())
    if not set(segs) <= allowed:
        raise ValueError(f"'segments' names segment(s) {sorted(set(segs) - allowed)} the model "
                         "does not have")
    m = len(segs)
    labels = np.array([NOISE if v == NOISE else v - 1 for v in segs], dtype=np.int64)
    rule: dict[str, Any] = {"kind": kind, "labels": labels}
    if kind == "nearest_centre":
        rule["centers"] = _as_array(a.get("centers"), 2, (m, ncols), "centers")
    elif kind == "gaussian_mixture":
        cov = a.get("covariance_type")
        if cov not in COVARIANCE_TYPES:
            raise ValueError(f"covariance_type is not one of {list(COVARIANCE_TYPES)}")
        rule["covariance_type"] = cov
        rule["weights"] = _as_array(a.get("weights"), 1, (m,), "weights")
        rule["means"] = _as_array(a.get("means"), 2, (m, ncols), "means")
        shape = {"full": (m, ncols, ncols), "tied": (ncols, ncols), "diag": (m, ncols),
                 "spherical": (m,)}[cov]
        prec = _as_array(a.get("precisions_cholesky"), len(shape), shape,
                         "precisions_cholesky")
        diag = (np.diagonal(prec, axis1=-2, axis2=-1) if cov in ("full", "tied") else prec)
        if (rule["weights"] <= 0).any() or (diag <= 0).any():
            raise ValueError("weights and the diagonals of precisions_cholesky must be "
                             "positive")
        rule["precisions_cholesky"] = prec
    elif kind == "kprototypes":
        rule["centers"] = _as_array(a.get("centers"), 2, (m, n_num), "centers")
        rule["modes"] = _as_array(a.get("modes"), 2, (m, n_cat), "modes", dtype=np.int64)
        gamma = a.get("gamma")
        if not isinstance(gamma, int | float) or not np.isfinite(gamma) or gamma < 0:
            raise ValueError("gamma is not a non-negative number")
        rule["gamma"] = float(gamma)
    else:
        points = a.get("points")
        rule["points"] = (np.empty((0, ncols)) if points == [] and m == 0
                          else _as_array(points, 2, (m, ncols), "points"))
        radius = a.get("radius")
        shape = () if isinstance(radius, int | float) else (None,)
        radius = _as_array(radius, len(shape), shape, "radius")
        if (radius < 0).any():
            raise ValueError("radius must not be negative")
        if radius.ndim == 1 and len(radius) <= labels.max():
            raise ValueError("radius has fewer entries than segments")
        of = a.get("of")
        if not isinstance(of, int) or isinstance(of, bool) or of < m:
            raise ValueError("'of' is not the number of points the stored ones came from")
        rule.update(radius=radius, what=str(a.get("what", "points")), of=of)
    return rule


def _staged_from_json(model: dict[str, Any], a: dict[str, Any]) -> dict[str, Any]:
    """The checked rule of a staged model: per group its stages, state, and its one
    segment or its feature preparation and rule."""
    from custseg.cluster._staged import GROUPS

    groups = a.get("groups")
    if not isinstance(a.get("by"), str) or not isinstance(groups, list) or not groups:
        raise ValueError("a staged assignment needs 'by' and a non-empty list of 'groups'")
    ids = {s["id"] for s in model["segments"]}
    out = []
    for g in groups:
        stages, state = g.get("stages"), g.get("state")
        if (not isinstance(stages, list) or not stages or not set(stages) <= set(GROUPS)
                or state not in set(GROUPS.values())):
            raise ValueError("a group's 'stages' and 'state' must be lifecycle stages and "
                             "states")
        segs = g.get("segments")
        if not isinstance(segs, list) or not segs or not set(segs) <= ids:
            raise ValueError("a group's 'segments' must be segment ids of the model")
        entry: dict[str, Any] = {"stages": stages, "state": state, "segments": segs}
        if "assignment" in g:
            local = [{"id": i} for i in range(1, len(segs) + 1)]
            sub = {"clustering": {"assignment": g["assignment"]}, "features": g["features"],
                   "segments": local + [{"id": NOISE}]}
            _check_features(g["features"], _invalid)
            entry["rule"] = rule_from_json(sub)
            entry["prep"] = _prep(g["features"])
        elif "levels" in g:
            split = g["levels"]
            if not (isinstance(split, dict) and isinstance(split.get("column"), str)
                    and isinstance(split.get("levels"), dict)
                    and {*split["levels"].values(), split.get("other")} - {None}
                    <= set(segs)):
                raise ValueError("a split by level needs a 'column' and 'levels' mapped to "
                                 "the group's segments")
            entry["levels"] = {**split, "levels": {k: v - 1 for k, v in
                                                   split["levels"].items()},
                               "other": None if split.get("other") is None
                               else split["other"] - 1}
        elif len(segs) != 1:
            raise ValueError("a group without a rule must have one segment")
        out.append(entry)
    return {"kind": "staged", "by": a["by"], "groups": out, "labels": np.asarray(
        sorted({v - 1 for g in out for v in g["segments"]}), dtype=np.int64)}


def _invalid(what: str) -> None:
    raise ValueError(f"a group's {what} do not match")


def _prep(features: dict[str, Any]) -> FeaturePrep:
    prep = FeaturePrep()
    prep.numeric_, prep.categorical_ = features["numeric"], features["categorical"]
    prep.spec_, prep.columns_ = features["spec"], features["columns"]
    return prep


def staged_labels(rule: dict[str, Any], table: pd.DataFrame) -> np.ndarray:
    """Labels (0.., -1) of customers under a staged rule: their stage's group (a stage no
    group held: the first group of its state), then the group's rule."""
    from custseg.cluster._staged import group_of_stage, level_labels

    if rule["by"] not in table.columns:
        raise InputError(f"The model segments by lifecycle stage: the customers need a "
                         f"{rule['by']!r} column (order lines give it).")
    group = table[rule["by"]].astype(str).map(group_of_stage(rule["groups"])).to_numpy()
    labels = np.full(len(table), NOISE, dtype=np.int64)
    for n, g in enumerate(rule["groups"]):
        rows = np.flatnonzero(group == n)
        if not len(rows):
            continue
        if "levels" in g:
            labels[rows] = level_labels(g["levels"], table.iloc[rows])
            continue
        if "rule" not in g:
            labels[rows] = g["segments"][0] - 1
            continue
        part = table.iloc[rows]
        sub = g["rule"]
        X = g["prep"].transform_frame(part)
        cats = g["prep"].category_codes(part) if sub["kind"] == "kprototypes" else None
        local = apply_rule(sub, X, cats)
        labels[rows] = np.where(local == NOISE, NOISE, local + g["segments"][0] - 1)
    return labels


def _dumps(value: Any, level: int = 0) -> str:
    """JSON text, indented by one space a level, with each list of plain values (a row of
    numbers, a list of segment ids) on one line."""
    pad = "\n" + " " * (level + 1)
    if isinstance(value, dict) and value:
        items = [json.dumps(str(k), ensure_ascii=False) + ": " + _dumps(v, level + 1)
                 for k, v in value.items()]
        return "{" + pad + ("," + pad).join(items) + "\n" + " " * level + "}"
    if isinstance(value, list) and any(isinstance(v, dict | list) for v in value):
        items = [_dumps(v, level + 1) for v in value]
        return "[" + pad + ("," + pad).join(items) + "\n" + " " * level + "]"
    return json.dumps(value, ensure_ascii=False)


def save_model(model: dict[str, Any], path: str | Path) -> None:
    Path(path).write_text(_dumps(model) + "\n", encoding="utf-8")


def load_model(path: str | Path) -> dict[str, Any]:
    """Read and check a model file; raises :class:`InputError` with one line if unusable."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"Model {path} does not exist; pass the model.json of a custseg run.")
    raw = path.read_bytes()[:MAX_BYTES + 1]
    if len(raw) > MAX_BYTES:
        raise InputError(f"Model {path} is larger than {MAX_BYTES >> 20} MB; not a custseg "
                         "model.")
    try:
        model = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise InputError(f"Model {path} is not a custseg model (not JSON text); it was not "
                         "loaded.") from None
    if not isinstance(model, dict) or model.get("format") != FORMAT:
        raise InputError(f"Model {path} is not a custseg model (no '{FORMAT}' format tag).")
    version = str(model.get("format_version", ""))
    if version.split(".")[0] != FORMAT_VERSION.split(".")[0]:
        raise InputError(f"Model {path} has format version {version!r}; this custseg reads "
                         f"{FORMAT_VERSION.split('.')[0]}.x. Re-run `custseg run` to make a new "
                         "model.")
    body = {k: v for k, v in model.items() if k != "checksum"}
    if model.get("checksum") != _checksum(body):
        raise InputError(f"Model {path} fails its checksum: it was edited or damaged. Re-run "
                         "`custseg run` to make a new model.")
    try:
        msgspec.convert(model, ModelFile)
    except msgspec.ValidationError as exc:
        raise InputError(f"Model {path} does not match the model schema ({exc}); re-run "
                         "`custseg run` to make a new model.") from None
    _check_values(model, path)
    _check_shapes(model, path)
    return model


def strings(value) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def number(value) -> bool:
    return (isinstance(value, int | float) and not isinstance(value, bool)
            and bool(np.isfinite(value)))


def _check_values(model: dict[str, Any], path: Path) -> None:
    """What the schema cannot say: known fields, valid settings, finite numbers, a feature
    spec that matches the columns, a valid segment map (a model whose checksum was
    recomputed after an edit must still fail with one line, not deep inside scoring)."""
    from custseg.core.exceptions import ConfigError
    from custseg.io import FIELDS
    from custseg.prep.rfm import check_segment_map

    def fail(what: str) -> None:
        raise InputError(f"Model {path} is inconsistent ({what}); re-run `custseg run` to "
                         "make a new model.")

    if not all(f in FIELDS for f in model["mapping"]):
        fail("mapping")
    conf = model["config"]
    try:
        Config(dayfirst=conf["dayfirst"], cleaning=conf["cleaning"],
               cancellation_pattern=conf["cancellation_pattern"], as_of=model["as_of"])
    except ConfigError:
        fail("config")
    _check_features(model["features"], fail)
    if model["kind"] == "transactions":
        rfm = model["rfm"]
        if not (rfm is not None and all(
                c in rfm["edges"] and all(number(v) for v in rfm["edges"][c])
                for c in RFM_COLUMNS)):
            fail("rfm")
        try:
            check_segment_map(rfm["segments"])
        except ConfigError:
            fail("rfm segments")
    clv = model.get("clv")
    if clv is not None and not (
            model["kind"] == "transactions"
            and set(clv["purchases"]) == set(PARAMS[clv["model"]])
            and all(number(v) and v > 0 for v in clv["purchases"].values())
            and (clv["spend"] is None or (
                set(clv["spend"]) == set(PARAMS[clv.get("spend_model", "gamma_gamma")])
                and all(number(v) and (v > 0 or k == "mu") for k, v in clv["spend"].items())))
            and clv["horizon_days"] >= 1 and number(clv["discount_rate"])):
        fail("clv")


def _check_features(features: dict[str, Any], fail) -> None:
    """A feature spec that matches its columns (``fail(what)`` otherwise)."""
    try:
        spec = features["spec"]
        expected = list(features["numeric"])
    except (KeyError, TypeError):
        fail("features")
    for col in features["numeric"]:
        s = spec.get(col)
        if not (isinstance(s, dict) and s.get("transform") in ("none", "log1p", "yeo-johnson")
                and all(number(s.get(k)) for k in ("impute", "center", "scale"))
                and s["scale"] != 0 and (s["transform"] != "yeo-johnson"
                                         or number(s.get("lambda")))
                and isinstance(s.get("impute_from", ""), str)):
            fail(f"feature {col!r}")
    for col in features["categorical"]:
        s = spec.get(col)
        if not (isinstance(s, dict) and strings(s.get("levels")) and number(s.get("weight"))):
            fail(f"feature {col!r}")
        expected += [f"{col}={lvl}" for lvl in [*s["levels"], "other"]]
    if features["columns"] != expected:
        fail("feature columns")


def _check_shapes(model: dict[str, Any], path: Path) -> None:
    try:
        columns = model["features"]["columns"]
        centers = np.asarray(model["clustering"]["centers"], dtype=float)
        if centers.shape == (0,):  # no cluster at all: every customer Unclustered
            centers = centers.reshape(0, len(columns))
        ids = {s["id"] for s in model["segments"]}
        ok = (centers.ndim == 2 and centers.shape[1] == len(columns)
              and np.isfinite(centers).all() and ids >= set(range(1, len(centers) + 1)))
    except (KeyError, TypeError, ValueError):
        ok = False
    if not ok:
        raise InputError(f"Model {path} is inconsistent (centres do not match the features); "
                         "re-run `custseg run`.")
    try:
        rule_from_json(model)
    except (KeyError, TypeError, AttributeError) as exc:
        raise InputError(f"Model {path} has a malformed assignment rule (missing or wrong "
                         f"field {exc}); re-run `custseg run`.") from None
    except ValueError as exc:
        raise InputError(f"Model {path} has a malformed assignment rule: {exc}; re-run "
                         "`custseg run`.") from None


def assign(model: dict[str, Any], table: pd.DataFrame) -> pd.DataFrame:
    """Add ``segment`` (1..k, -1 Unclustered, by the stored assignment rule) and
    ``segment_name`` to a customer feature table (and RFM scores from the stored cut
    points when the table has recency, frequency and monetary)."""
    if model.get("rfm") and all(c in table for c in RFM_COLUMNS):
        table = rfm_scores(table, model["rfm"]["edges"], model["rfm"]["segments"])
    else:
        table = table.copy()
    rule = rule_from_json(model)
    if rule["kind"] == "staged":
        labels = staged_labels(rule, table)
    else:
        prep = _prep(model["features"])
        X = prep.transform_frame(table)
        cats = prep.category_codes(table) if rule["kind"] == "kprototypes" else None
        labels = apply_rule(rule, X, cats)
    names = {s["id"]: s["name"] for s in model["segments"]}
    table["segment"] = np.where(labels == NOISE, NOISE, labels + 1)
    table["segment_name"] = table["segment"].map(names)
    return table


def save_segmenter(segmenter, path: str | Path) -> None:
    """Write a fitted :class:`~custseg.Segmenter` as a JSON model (see
    :func:`custseg.load_model`); its segments are numbered 1..k as ``segment``."""
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(segmenter, "labels_")
    ids = list(range(1, segmenter.n_clusters_ + 1))
    if (segmenter.labels_ == NOISE).any():
        ids.append(NOISE)
    segments = [{"id": i, "name": UNCLUSTERED if i == NOISE else f"Segment {i}",
                 "description": "", "actions": []} for i in ids]
    save_model(_model(segmenter, Config(), segments), path)
