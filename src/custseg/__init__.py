"""custseg: customer segments from raw sales records.

>>> import custseg
>>> result = custseg.run_rfm("orders.csv", out_dir="out")  # doctest: +SKIP
>>> result.customers[["customer_id", "rfm_segment"]].head()  # doctest: +SKIP
"""

import time as _time

#: When the package was first imported: the command line's start-up is timed from here.
STARTED = _time.perf_counter()

from custseg.core.threads import wait_passively as _wait_passively  # noqa: E402

_wait_passively()  # before scikit-learn loads OpenMP (core/threads.py)

from custseg.core.config import Config  # noqa: E402
from custseg.core.exceptions import (  # noqa: E402
    ConfigError,
    CustsegError,
    CustsegWarning,
    DataError,
    InputError,
    MappingError,
)
from custseg.core.version import __version__  # noqa: E402, F401


def read_customers(path, config=None):
    """A customer table (one row per customer) with a text ``customer_id`` column.

    Personal columns (names, emails, phones, addresses) are left out.
    """
    from custseg.engines.duckdb import connect
    from custseg.io._customers import load_customers

    config = config or Config()
    con = connect(config)
    try:
        return load_customers(con, path, config)[0]
    finally:
        con.close()


#: The API's names, by the module each comes from: imported on first use, so that
#: ``import custseg`` (the command line, Spark's Python workers) loads no pandas,
#: DuckDB or scikit-learn until a job needs them.
_LAZY = {"RunResult": "jobs.rfm", "clean": "jobs.rfm", "customer_features": "jobs.rfm",
         "map_columns": "jobs.rfm", "read_table": "jobs.rfm", "run_rfm": "jobs.rfm",
         "REASONS": "prep.cleaning", "Audit": "prep.cleaning",
         "balanced_edges": "prep.rfm", "rfm_scores": "prep.rfm",
         "Segmenter": "cluster._segmenter", "StagedSegmenter": "cluster._staged",
         "run_segments": "jobs.run", "compare_algorithms": "jobs.run",
         "SavedModel": "jobs.score", "backtest": "jobs.backtest",
         "export_audience": "jobs.export", "measure_campaign": "jobs.campaign"}


def load_model(path):
    """A saved ``model.json`` (checked; never executed) with ``predict``."""
    from custseg.jobs.score import SavedModel

    return SavedModel.load(path)


def save_model(segmenter, path):
    """Write a fitted :class:`Segmenter` as a JSON model, read back by :func:`load_model`."""
    from custseg.outputs.model import save_segmenter

    save_segmenter(segmenter, path)


def __getattr__(name: str):
    """The API's names (:data:`_LAZY`), imported on first use."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'custseg' has no attribute {name!r}")


__all__ = [
    "REASONS", "Audit", "Config", "ConfigError", "CustsegError", "CustsegWarning", "DataError",
    "InputError", "MappingError", "RunResult", "SavedModel", "Segmenter", "StagedSegmenter",
    "backtest",
    "balanced_edges",
    "clean", "compare_algorithms", "customer_features", "export_audience", "load_model",
    "map_columns", "measure_campaign",
    "read_customers", "read_table", "rfm_scores", "run_rfm", "run_segments", "save_model",
]
