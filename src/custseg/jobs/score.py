"""The scoring job (``custseg score``): segments of new customers under a saved model,
without refitting."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from custseg.core.config import Config
from custseg.engines.duckdb import connect
from custseg.io._customers import load_customers
from custseg.jobs.rfm import run_rfm
from custseg.outputs.model import assign, load_model, value_models
from custseg.prep.predict import value_inputs


def score(model: dict[str, Any], input: str | Path | None = None, *,
          config: Config | None = None, frame: pd.DataFrame | None = None,
          as_of: str | None = None) -> pd.DataFrame:
    """Segments of new customers under a saved model (features with the model's
    definitions, RFM with its stored cut points, the stored assignment rule) and, when it
    stores value models, their predictions (P(alive), expected orders, CLV, churn risk)."""
    base = config or Config()
    if model["kind"] == "transactions":
        mapping = {**model["mapping"], **base.mapping}  # --map wins over the model's
        cfg = base.replace(mapping=mapping or None, dayfirst=model["config"]["dayfirst"],
                           cancellation_pattern=model["config"]["cancellation_pattern"],
                           cleaning=model["config"]["cleaning"],
                           rfm_segments=model["rfm"]["segments"], as_of=as_of,
                           clv=base.clv.replace(enabled=False))  # the stored models score
        needed = _model_columns(model)
        result = run_rfm(input, config=cfg, frame=frame, db=base.db, sql=base.sql,
                         keep_lines=True)
        table = result.customers
        try:
            from custseg.jobs.run import level_columns, with_main_levels

            wanted = {n: c for n, c in level_columns(result.summary).items()
                      if n in needed and n not in table.columns}
            table = with_main_levels(result.engine, table, wanted)
        finally:
            result.engine.close()
        models = value_models(model)
        if models is not None:
            table = pd.concat([table, models.predict(value_inputs(table),
                                                     result.summary.as_of)], axis=1)
    else:
        con = connect(base)
        try:
            table = (load_customers(con, input, base, db=base.db, sql=base.sql)[0]
                     if frame is None else frame.copy())
        finally:
            con.close()
    return assign(model, table)



def _model_columns(model: dict[str, Any]) -> set[str]:
    """Every column a model's features read (a staged model: each group's too)."""
    features = [model["features"], *(g["features"] for g in
                                     model["clustering"].get("assignment", {}).get("groups", [])
                                     if "features" in g)]
    groups = model["clustering"].get("assignment", {}).get("groups", [])
    return ({c for f in features for c in f["numeric"] + f["categorical"]}
            | {g["levels"]["column"] for g in groups if "levels" in g})


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
