"""Saved models: plain JSON (no pickle), checked on load, used to score new customers.

``model.json`` holds what scoring needs: the column mapping and as-of rule, the feature
preparation (imputation, transforms, scaling, one-hot levels and weights), the RFM cut
points and segment map, the segment centres and the names, descriptions and actions. A
SHA-256 checksum over the content catches edits and damage; a file of another major
format version, a malformed or tampered one is refused with one line, never executed.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import __version__
from .config import Config
from .exceptions import InputError

FORMAT = "custseg-model"
FORMAT_VERSION = "1.0"
MAX_BYTES = 64 * 1024 * 1024


def _checksum(body: dict[str, Any]) -> str:
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def build_model(summary: dict[str, Any], segmenter, config: Config) -> dict[str, Any]:
    """The model of a finished ``custseg run`` (summary dict and fitted Segmenter)."""
    prep = segmenter.prep_
    body = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "custseg_version": __version__,
        "kind": "transactions" if "rfm_edges" in summary else "customers",
        "as_of": summary.get("as_of"),
        "mapping": summary.get("mapping", {}),
        "config": {"dayfirst": config.dayfirst, "cleaning": config.cleaning,
                   "cancellation_pattern": config.cancellation_pattern},
        "features": {"numeric": prep.numeric_, "categorical": prep.categorical_,
                     "spec": prep.spec_, "columns": prep.columns_},
        "rfm": ({"edges": summary["rfm_edges"], "segments": config.segments}
                if "rfm_edges" in summary else None),
        "clustering": {"algorithm": segmenter.algorithm, "k": segmenter.n_clusters_,
                       "rule": "nearest centre in the prepared feature space",
                       "centers": np.asarray(segmenter.cluster_centers_).round(12).tolist()},
        "segments": [{"id": s["id"], "name": s["name"], "description": s["description"],
                      "actions": s["actions"]} for s in summary.get("segments", [])],
    }
    return {**body, "checksum": _checksum(body)}


def save_model(model: dict[str, Any], path: str | Path) -> None:
    Path(path).write_text(json.dumps(model, indent=1, ensure_ascii=False) + "\n",
                          encoding="utf-8")


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
    _check_schema(model, path)
    _check_shapes(model, path)
    return model


def _check_schema(model: dict[str, Any], path: Path) -> None:
    """Every part scoring uses has the kind of value it needs (a model whose checksum was
    recomputed after an edit must still fail with one line, not deep inside scoring)."""
    from .config import Config
    from .exceptions import ConfigError
    from .io import FIELDS
    from .rfm import RFM_COLUMNS, check_segment_map

    def fail(what: str) -> None:
        raise InputError(f"Model {path} is inconsistent ({what}); re-run `custseg run` to "
                         "make a new model.")

    def strings(value) -> bool:
        return isinstance(value, list) and all(isinstance(v, str) for v in value)

    def number(value) -> bool:
        return (isinstance(value, int | float) and not isinstance(value, bool)
                and bool(np.isfinite(value)))

    if model.get("kind") not in ("transactions", "customers"):
        fail("kind")
    mapping = model.get("mapping")
    if not isinstance(mapping, dict) or not all(
            f in FIELDS and isinstance(c, str) for f, c in mapping.items()):
        fail("mapping")
    conf = model.get("config")
    if not isinstance(conf, dict):
        fail("config")
    try:
        Config(dayfirst=conf.get("dayfirst"), cleaning=conf.get("cleaning"),
               cancellation_pattern=conf.get("cancellation_pattern"), as_of=model.get("as_of"))
    except (ConfigError, TypeError, AttributeError):
        fail("config")
    features = model.get("features")
    if not isinstance(features, dict) or not all(
            strings(features.get(k)) for k in ("numeric", "categorical", "columns")):
        fail("features")
    spec = features.get("spec")
    if not isinstance(spec, dict):
        fail("features")
    expected = list(features["numeric"])
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
    if model["kind"] == "transactions":
        rfm = model.get("rfm")
        if not (isinstance(rfm, dict) and isinstance(rfm.get("edges"), dict)
                and isinstance(rfm.get("segments"), dict)
                and all(isinstance(rfm["edges"].get(c), list)
                        and all(number(v) for v in rfm["edges"][c]) for c in RFM_COLUMNS)
                and all(isinstance(v, list) for v in rfm["segments"].values())):
            fail("rfm")
        try:
            check_segment_map(rfm["segments"])
        except ConfigError:
            fail("rfm segments")
    segments = model.get("segments")
    if not (isinstance(segments, list) and all(
            isinstance(g, dict) and isinstance(g.get("id"), int) and isinstance(g.get("name"), str)
            for g in segments)):
        fail("segments")


def _check_shapes(model: dict[str, Any], path: Path) -> None:
    try:
        centers = np.asarray(model["clustering"]["centers"], dtype=float)
        columns = model["features"]["columns"]
        ids = {s["id"] for s in model["segments"]}
        ok = (centers.ndim == 2 and centers.shape[1] == len(columns)
              and np.isfinite(centers).all() and len(centers) >= 1
              and ids >= set(range(1, len(centers) + 1)))
    except (KeyError, TypeError, ValueError):
        ok = False
    if not ok:
        raise InputError(f"Model {path} is inconsistent (centres do not match the features); "
                         "re-run `custseg run`.")


def score(model: dict[str, Any], input: str | Path | None = None, *,
          config: Config | None = None, frame: pd.DataFrame | None = None,
          as_of: str | None = None) -> pd.DataFrame:
    """Segments of new customers under a saved model (features with the model's
    definitions, RFM with its stored cut points, nearest stored centre)."""
    from .pipeline import run_rfm

    base = config or Config()
    if model["kind"] == "transactions":
        mapping = {**model["mapping"], **base.mapping}  # --map wins over the model's
        cfg = base.replace(mapping=mapping or None, dayfirst=model["config"]["dayfirst"],
                           cancellation_pattern=model["config"]["cancellation_pattern"],
                           cleaning=model["config"]["cleaning"],
                           rfm_segments=model["rfm"]["segments"], as_of=as_of)
        table = run_rfm(input, config=cfg, frame=frame).segments
    else:
        from .engines.duckdb import connect
        from .io._customers import load_customers

        con = connect(base)
        try:
            table = load_customers(con, input, base)[0] if frame is None else frame.copy()
        finally:
            con.close()
    return assign(model, table)


def assign(model: dict[str, Any], table: pd.DataFrame) -> pd.DataFrame:
    """Add ``segment`` and ``segment_name`` to a customer feature table (and RFM scores
    from the stored cut points when the table has recency, frequency and monetary)."""
    from .cluster._base import nearest
    from .cluster._prepare import FeaturePrep
    from .rfm import RFM_COLUMNS
    from .rfm import score as rfm_score

    table = table.copy()
    if model.get("rfm") and all(c in table for c in RFM_COLUMNS):
        owner = {code: name for name, codes in model["rfm"]["segments"].items()
                 for code in codes}
        for col, letter in zip(RFM_COLUMNS, "rfm", strict=True):
            table[f"{letter}_score"] = rfm_score(table[col], model["rfm"]["edges"][col],
                                                 RFM_COLUMNS[col])
        table["rfm_code"] = (table["r_score"].astype(str) + table["f_score"].astype(str)
                             + table["m_score"].astype(str))
        table["rfm_segment"] = table["rfm_code"].map(owner)
    f = model["features"]
    prep = FeaturePrep()
    prep.numeric_, prep.categorical_, prep.spec_ = f["numeric"], f["categorical"], f["spec"]
    prep.columns_ = f["columns"]
    X = prep.transform_frame(table)
    labels = nearest(X, np.asarray(model["clustering"]["centers"], dtype=float))[0]
    names = {s["id"]: s["name"] for s in model["segments"]}
    table["segment"] = labels + 1
    table["segment_name"] = table["segment"].map(names)
    return table


class SavedModel:
    """A loaded model: ``predict`` scores new customers (see :func:`score`)."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data

    @classmethod
    def load(cls, path: str | Path) -> SavedModel:
        return cls(load_model(path))

    @property
    def segments(self) -> list[dict[str, Any]]:
        return self.data["segments"]

    def predict(self, input: str | Path | None = None, *, frame: pd.DataFrame | None = None,
                config: Config | None = None, as_of: str | None = None) -> pd.DataFrame:
        return score(self.data, input, frame=frame, config=config, as_of=as_of)
