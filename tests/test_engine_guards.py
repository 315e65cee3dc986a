"""Every data guard holds on every engine: the same input gives the same warning, drop
count or one-line error whether DuckDB or Spark computes the run."""

from __future__ import annotations

import datetime as dt
import importlib.util
import os
import shutil
import sys

import pandas as pd
import pytest

import custseg
from custseg import Config, DataError, InputError

HAVE_SPARK = importlib.util.find_spec("pyspark") is not None and shutil.which("java")
ENGINES = [
    pytest.param(Config(), id="duckdb"),
    pytest.param(Config(engine="spark", spark_master="local[2]"), id="spark",
                 marks=pytest.mark.skipif(not HAVE_SPARK, reason="the Spark engine needs "
                                          "pyspark and a Java runtime")),
]
HEADER = "InvoiceNo,StockCode,Quantity,InvoiceDate,UnitPrice,CustomerID,Country"


def orders(dates: list[str], quantity: int = 2) -> str:
    """One order line per date, each by its own customer."""
    rows = [f"{1000 + i},P{i % 3},{quantity},{day},3.5,C{i},France"
            for i, day in enumerate(dates)]
    return "\n".join([HEADER, *rows]) + "\n"


@pytest.mark.parametrize("config", ENGINES)
def test_lines_dated_after_today_are_ignored_with_a_warning(tmp_path, config):
    future = (dt.date.today() + dt.timedelta(days=400)).isoformat()
    path = tmp_path / "orders.csv"
    path.write_text(orders(["2011-01-10 09:00", "2011-02-03 10:00", f"{future} 08:00"]))
    result = custseg.run_rfm(path, config=config)
    assert result.summary["as_of"] == "2011-02-04"
    assert result.summary["audit"]["dropped"]["after_as_of"] == 1
    assert any("dated in the future" in w and future in w
               for w in result.summary["audit"]["warnings"])
    assert result.summary["customers"] == 2


@pytest.mark.parametrize("config", ENGINES)
def test_years_out_of_range_are_unreadable_dates(tmp_path, config):
    path = tmp_path / "orders.csv"
    dates = ["2011-01-10 09:00"] * 6 + ["0211-01-12 10:00", "2311-03-01 11:00"]
    path.write_text(orders(dates))
    result = custseg.run_rfm(path, config=config)
    assert result.summary["audit"]["dropped"]["unparseable_date"] == 2
    assert any("'InvoiceDate'" in w and "0211-01-12" in w
               for w in result.summary["audit"]["warnings"])
    assert result.summary["customers"] == 6


@pytest.mark.parametrize("config", ENGINES)
def test_a_latin1_byte_deep_in_a_utf8_file_is_one_error(tmp_path, config):
    text = orders([f"2011-01-{1 + i % 28:02d} 09:00" for i in range(3000)]).replace(
        "France", "Caf\u00e9 land").encode("utf-8")
    cut = text.index(b"\n", 120_000) + 1  # beyond what is sniffed (the first 64 KB)
    path = tmp_path / "orders.csv"
    path.write_bytes(text[:cut] + b"9,P1,1,2011-01-05 09:00,1.0,X,Caf\xe9\n" + text[cut:])
    with pytest.raises(InputError, match=r"byte 0xE9 at offset [\d,]+, line [\d,]+, is not "
                                         "valid UTF-8") as err:
        custseg.run_rfm(path, config=config)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("config", ENGINES)
def test_every_line_dropped_is_one_error_naming_the_reasons(tmp_path, config):
    path = tmp_path / "orders.csv"
    path.write_text(orders(["2011-01-10 09:00", "2011-01-11 09:00"], quantity=0))
    with pytest.raises(DataError, match=r"Every line of \S*orders.csv was dropped "
                                        r"\(zero_quantity: 2\)"):
        custseg.run_rfm(path, config=config)


@pytest.mark.skipif(not HAVE_SPARK, reason="the Spark engine needs pyspark and Java")
def test_the_engines_agree_on_a_guarded_input(tmp_path):
    future = (dt.date.today() + dt.timedelta(days=30)).isoformat()
    dates = ["2011-01-10 09:00", "2011-01-10 09:00", "0211-01-12 10:00", f"{future} 08:00",
             "2011-03-01 12:00"]
    path = tmp_path / "orders.csv"
    path.write_text(orders(dates))
    duck = custseg.run_rfm(path)
    spark = custseg.run_rfm(path, config=Config(engine="spark", spark_master="local[2]"))
    assert spark.summary["audit"] == duck.summary["audit"]
    assert spark.summary["as_of"] == duck.summary["as_of"]
    pd.testing.assert_frame_equal(duck.customers, spark.customers, check_dtype=False)


def test_lines_stay_in_memory_when_half_the_free_memory_holds_them(monkeypatch):
    """With memory_limit 'auto' the limit grows to hold the classified lines in memory when
    half the memory available allows it; else they go to the scratch file and the limit
    stays; a limit the user set is never raised."""
    import custseg.engines.duckdb as engine

    def limit(con):
        return engine.limit_bytes(con)

    rows = 30_000_000  # 4.2 GB of lines with descriptions: 7 GB of limit at 60%
    mapping = {"description": "Description"}
    for free, auto, kept in [(64 << 30, True, True), (8 << 30, True, False),
                             (64 << 30, False, False)]:
        monkeypatch.setattr(engine, "available_memory", lambda free=free: free)
        config = Config(memory_limit="2GB")
        con = engine.connect(config)
        scratch = engine.attach_scratch(con, config)
        before = limit(con)
        assert engine.lines_in_memory(con, rows, mapping, auto=auto) is kept
        where = con.execute("SELECT current_database()").fetchone()[0]
        if kept:
            assert limit(con) >= 0.99 * rows * 140 / 0.6
            assert where == "memory"
        else:
            assert limit(con) == before
            assert where == engine.SCRATCH
        con.close()
        engine.remove_scratch(scratch)


def test_the_memory_custseg_sized_is_given_back_once_the_lines_are_aggregated(monkeypatch):
    """After the passes over every line, an 'auto' limit falls to its floor when the lines
    are in the scratch file (DuckDB drops its cached blocks, the process's memory falls);
    lines kept in memory, and a limit the user set, are left as they are."""
    import custseg.engines.duckdb as engine

    def rss_mb() -> int:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") >> 20

    monkeypatch.setattr(engine, "available_memory", lambda: 8 << 30)  # auto: 4 GB
    for setting, in_memory, lowered in [("auto", False, True), ("auto", True, False),
                                        ("3GB", False, False)]:
        duck = engine.DuckDBEngine(Config(memory_limit=setting))
        con = duck.sample
        con.execute("CREATE TABLE lines AS SELECT range AS i, range % 977 AS c, "
                    "md5(range::VARCHAR) AS t FROM range(3000000)")
        con.execute("SELECT c, count(DISTINCT t) FROM lines GROUP BY c").fetchall()
        before, held = engine.limit_bytes(con), rss_mb()
        duck.in_memory = in_memory
        duck.release()
        after = engine.limit_bytes(con)
        if lowered:
            assert after == engine.AUTO_MEMORY_MIN and before > after
            if sys.platform.startswith("linux"):
                assert rss_mb() < held - 100
        else:
            assert after == before
        assert con.execute("SELECT count(*) FROM lines").fetchone()[0] == 3_000_000
        duck.close()


def test_a_large_result_becomes_a_frame_beside_a_lowered_limit(monkeypatch):
    """The customer features of a run whose lines are in the scratch file become a frame
    while DuckDB's 'auto' limit is down at its floor (its cached blocks given back: the
    process's memory falls), and the limit is up again afterwards for the queries that
    follow; without ``spare`` the limit never moves (the memory may fall then too, as the
    allocator gives back pages on its own: CI once saw 142 MB). The frame is the query's
    either way."""
    import custseg.engines.duckdb as engine

    def rss_mb() -> int:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") >> 20

    monkeypatch.setattr(engine, "available_memory", lambda: 8 << 30)  # auto: 4 GB
    sql = "SELECT c, count(DISTINCT t) AS n FROM lines GROUP BY c ORDER BY c"
    frames, convert = [], engine.arrow_frame
    for spare in (True, False):
        duck = engine.DuckDBEngine(Config(memory_limit="auto"))
        con = duck.sample
        con.execute("CREATE TABLE lines AS SELECT range AS i, range % 977 AS c, "
                    "md5(range::VARCHAR) AS t FROM range(3000000)")
        con.execute("SELECT c, count(DISTINCT t) FROM lines GROUP BY c").fetchall()
        before, held, seen = engine.limit_bytes(con), rss_mb(), {}
        probe = con.cursor()  # a setting of the database, read while the frame is made

        def watched(*args, seen=seen, probe=probe, **kwargs):  # Arrow's result to pandas
            seen.setdefault("rss", rss_mb())
            seen.setdefault("limit", engine.limit_bytes(probe))
            return convert(*args, **kwargs)

        monkeypatch.setattr(engine, "arrow_frame", watched)
        frames.append(engine.fetched_lean(con, sql, spare))
        monkeypatch.setattr(engine, "arrow_frame", convert)
        assert abs(engine.limit_bytes(con) - before) < 0.05 * before  # up again
        assert "rss" in seen  # the frame was made from Arrow's result
        assert (seen["limit"] < 0.5 * before) is spare
        if spare and sys.platform.startswith("linux"):
            assert seen["rss"] < held - 100
        probe.close()
        duck.close()
    assert len(frames[0]) == 977 and frames[0]["n"].sum() == 3_000_000
    pd.testing.assert_frame_equal(frames[0], frames[1])


def test_a_result_larger_than_the_floor_is_converted_whole(monkeypatch):
    """A sorted result larger than the floor (here 32 MB against a result of about
    150 MB) is held by Arrow, outside DuckDB's limit, while the limit is down: it is
    converted whole and in order, not refused for want of memory."""
    import custseg.engines.duckdb as engine

    monkeypatch.setattr(engine, "available_memory", lambda: 8 << 30)  # auto: 4 GB
    monkeypatch.setattr(engine, "AUTO_MEMORY_MIN", 32 << 20)
    duck = engine.DuckDBEngine(Config(memory_limit="auto"))
    con = duck.sample
    con.execute("CREATE TABLE lines AS SELECT range AS i, md5(range::VARCHAR) AS t "
                "FROM range(2000000)")
    before = engine.limit_bytes(con)
    frame = engine.fetched_lean(con, "SELECT i, t, i * 2 AS j FROM lines ORDER BY t", True)
    assert len(frame) == 2_000_000 and frame["t"].is_monotonic_increasing
    assert abs(engine.limit_bytes(con) - before) < 0.05 * before
    duck.close()
