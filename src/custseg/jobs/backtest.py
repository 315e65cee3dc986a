"""The backtest job (``custseg backtest``): the value models fitted on the order lines before
a split date, their predictions for the period from the split to the end of the data
compared with what happened."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd

from custseg.core import summary as sm
from custseg.core.config import Config
from custseg.core.exceptions import InputError
from custseg.engines import open_engine
from custseg.jobs.rfm import Reporter, _stage, closed_on_error, read_input
from custseg.jobs.value import backtest_files, backtest_on
from custseg.outputs.rundir import atomic_folder


def backtest(input: str | Path | list | None = None, *, split: str | dt.date | None = None,
             out_dir: str | Path | None = None, config: Config | None = None,
             db: str | None = None, sql: str | None = None, frame: pd.DataFrame | None = None,
             reporter: Reporter | None = None) -> sm.Backtest:
    """Fit the value models on the lines before ``split`` (default: ``config.backtest.split``),
    predict each customer's orders from the split to the end of the data and compare.

    With ``out_dir`` writes ``backtest.json`` and the calibration chart ``calibration.png``.
    """
    config = config or Config()
    split = split or config.backtest.split
    if split is None:
        raise InputError("A backtest needs a split date: --split YYYY-MM-DD (the models are "
                         "fitted on the lines before it).")
    day = split if isinstance(split, dt.date) else dt.date.fromisoformat(split)
    timings: dict[str, float] = {}
    engine = open_engine(config)
    with closed_on_error(engine):
        source, reading = read_input(engine, input, config, timings, reporter, db=db, sql=sql,
                                     frame=frame)
        if reading is None:
            raise InputError(f"{source.name} is a customer table (one row per customer): a "
                             "backtest needs order lines with dates.")
        with _stage("backtest", timings, reporter):
            result = backtest_on(engine, source, reading.mapping, config, day)
    engine.close()
    if out_dir is not None:
        write_backtest(result, Path(out_dir))
    return result


def write_backtest(result: sm.Backtest, out_dir: Path) -> None:
    """``backtest.json`` and ``calibration.png`` in ``out_dir`` (all or nothing)."""
    with atomic_folder(out_dir) as tmp:
        backtest_files(result, tmp)
