"""Engines: what reads, cleans and aggregates the order lines for the jobs.

Each engine is a class implementing :class:`~custseg.engines.base.Engine`, in its own
module; the jobs get one from :func:`open_engine` and never ask which it is. The registry
is ``custseg.core.config.ENGINES`` (engine name -> ``module:Class``), so that the config
can check the name without importing any engine.
"""

from __future__ import annotations

import importlib

from custseg.core.config import ENGINES, Config
from custseg.engines.base import Engine


def open_engine(config: Config | None = None) -> Engine:
    """A new engine of ``config.engine`` (close it when done)."""
    config = config or Config()
    module, _, name = ENGINES[config.engine].partition(":")
    return getattr(importlib.import_module(module), name)(config)


__all__ = ["Engine", "open_engine"]
