"""Segment migration between snapshots."""

import subprocess
import sys

import pandas as pd
import pytest

from conftest import ONLINE_RETAIL, needs_online_retail
from custseg.outputs.track import migration, top_movements, track


def snapshot(folder, rows):
    folder.mkdir()
    pd.DataFrame(rows, columns=["customer_id", "segment", "segment_name"]).to_csv(
        folder / "segments.csv", index=False)
    return folder


def test_matrix_counts_movers_and_words(tmp_path):
    old = snapshot(tmp_path / "old", [("a", 1, "Best"), ("b", 1, "Best"), ("c", 2, "Rest"),
                                      ("d", 2, "Rest")])
    new = snapshot(tmp_path / "new", [("a", 1, "Best"), ("b", 2, "Rest"), ("c", 2, "Rest"),
                                      ("e", 1, "<b>Best</b>")])
    info = track(old, new, tmp_path / "out")
    matrix = pd.read_csv(tmp_path / "out" / "migration_matrix.csv", index_col=0)
    assert list(matrix.index) == ["Best", "Rest", "new"]
    assert list(matrix.columns) == ["Best", "<b>Best</b>", "Rest", "gone"]
    assert matrix.loc["Best", "Rest"] == 1 and matrix.loc["Rest", "gone"] == 1
    assert matrix.loc["new", "<b>Best</b>"] == 1
    assert matrix.to_numpy().sum() == info["customers"] == 5
    share = pd.read_csv(tmp_path / "out" / "migration_share.csv", index_col=0)
    assert share.loc["Best"].sum() == pytest.approx(1)
    movers = pd.read_csv(tmp_path / "out" / "movers.csv")
    assert set(movers["customer_id"]) == {"b", "d", "e"}
    assert "1 Best became Rest" in info["top_movements"]
    page = (tmp_path / "out" / "track.html").read_text()
    assert "<b>Best</b>" not in page and "&lt;b&gt;Best&lt;/b&gt;" in page
    assert "<svg" in page


def test_words_for_new_and_gone():
    old = pd.Series({"x": "A", "y": "A"})
    new = pd.Series({"x": "B", "z": "B"})
    matrix, _ = migration(old, new)
    words = top_movements(matrix)
    assert "1 A became B" in words and "1 new customers joined B" in words
    assert "1 A are gone (no longer in the data)" in words


@needs_online_retail
def test_online_retail_snapshots_add_up(tmp_path):
    for as_of, name in (("2011-06-30", "june"), ("2011-12-10", "december")):
        run = subprocess.run([sys.executable, "-m", "custseg.cli", "rfm", str(ONLINE_RETAIL),
                              "--as-of", as_of, "--out", str(tmp_path / name), "-q"],
                             capture_output=True, text=True)
        assert run.returncode == 0, run.stderr
    run = subprocess.run([sys.executable, "-m", "custseg.cli", "track", str(tmp_path / "june"),
                          str(tmp_path / "december"), "--by", "rfm", "--out",
                          str(tmp_path / "track")], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    matrix = pd.read_csv(tmp_path / "track" / "migration_matrix.csv", index_col=0)
    june = pd.read_csv(tmp_path / "june" / "segments.csv", dtype={"customer_id": str})
    december = pd.read_csv(tmp_path / "december" / "segments.csv", dtype={"customer_id": str})
    both = set(june["customer_id"]) | set(december["customer_id"])
    assert matrix.to_numpy().sum() == len(both)
    assert matrix.drop(index="new").sum(axis=1).sum() == len(june)
    assert matrix.drop(columns="gone").sum(axis=0).sum() == len(december)
