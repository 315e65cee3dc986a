"""Engines: what reads, cleans and aggregates the order lines for the jobs.

Each engine is a class implementing :class:`~custseg.engines.base.Engine`, in its own
module; the jobs get one from :func:`open_engine` and never ask which it is. The registry
is ``custseg.core.config.ENGINES`` (engine name -> ``module:Class``), so that the config
can check the name without importing any engine.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from custseg.core.config import ENGINES, Config

if TYPE_CHECKING:
    from custseg.engines.base import Engine


def open_engine(config: Config | None = None) -> Engine:
    """A new engine of ``config.engine`` (close it when done)."""
    config = config or Config()
    module, _, name = ENGINES[config.engine].partition(":")
    return getattr(importlib.import_module(module), name)(config)


def __getattr__(name: str):
    """:class:`~custseg.engines.base.Engine` loads pandas and DuckDB: on first use, so
    that Spark's Python workers (:mod:`custseg.engines._batch`) start without them."""
    if name == "Engine":
        from custseg.engines.base import Engine

        return Engine
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["Engine", "open_engine"]
