"""custseg: customer segments from raw sales records.

>>> import custseg
>>> result = custseg.run_rfm("orders.csv", out_dir="out")  # doctest: +SKIP
>>> result.segments[["customer_id", "rfm_segment"]].head()  # doctest: +SKIP
"""

__version__ = "0.1.0"

from .cleaning import REASONS, Audit  # noqa: E402
from .config import Config  # noqa: E402
from .exceptions import (  # noqa: E402
    ConfigError,
    CustsegError,
    CustsegWarning,
    DataError,
    InputError,
    MappingError,
)
from .pipeline import (  # noqa: E402
    RfmResult,
    clean,
    customer_features,
    map_columns,
    read_table,
    run_rfm,
)
from .rfm import balanced_edges, rfm_scores  # noqa: E402


def read_customers(path, config=None):
    """A customer table (one row per customer) with a text ``customer_id`` column.

    Personal columns (names, emails, phones, addresses) are left out.
    """
    from .engines.duckdb import connect
    from .io._customers import load_customers

    config = config or Config()
    con = connect(config)
    try:
        return load_customers(con, path, config)[0]
    finally:
        con.close()


_LAZY = {"Segmenter": "cluster", "run_segments": "segment", "compare_algorithms": "segment",
         "SavedModel": "model"}


def load_model(path):
    """A saved ``model.json`` (checked; never executed) with ``predict``."""
    from .model import SavedModel

    return SavedModel.load(path)


def __getattr__(name: str):
    """Clustering names load scikit-learn, so they are imported on first use."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'custseg' has no attribute {name!r}")


__all__ = [
    "REASONS", "Audit", "Config", "ConfigError", "CustsegError", "CustsegWarning", "DataError",
    "InputError", "MappingError", "RfmResult", "SavedModel", "Segmenter", "balanced_edges",
    "clean", "compare_algorithms", "customer_features", "load_model", "map_columns",
    "read_customers", "read_table", "rfm_scores", "run_rfm", "run_segments",
]
