"""Saved models: JSON only, checked on load, scoring reproduces the training labels."""

import json
import pickle
import subprocess
import sys

import pandas as pd
import pytest

import custseg
from conftest import MALL, ONLINE_RETAIL, needs_mall, needs_online_retail
from custseg import InputError
from custseg.segment import run_segments
from test_cluster import PLANTED_MAP, planted_lines


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    frame, _ = planted_lines(seed=6, per_group=60)
    out = tmp_path_factory.mktemp("model") / "out"
    result = run_segments(frame=frame, config=custseg.Config(mapping=PLANTED_MAP), out_dir=out)
    return frame, result, out / "model.json"


def test_model_is_plain_json_and_scoring_reproduces_labels(trained):
    frame, result, path = trained
    data = json.loads(path.read_text())
    assert data["format"] == "custseg-model" and data["kind"] == "transactions"
    assert len(data["clustering"]["centers"]) == result.summary["k"]
    model = custseg.load_model(path)
    scored = model.predict(frame=frame, config=custseg.Config(mapping=PLANTED_MAP))
    pd.testing.assert_series_equal(scored["segment"], result.segments["segment"])
    pd.testing.assert_series_equal(scored["rfm_segment"], result.segments["rfm_segment"])
    assert set(scored["segment_name"]) == {s["name"] for s in data["segments"]}


@pytest.mark.parametrize("content, message", [
    (b"\x00\x01garbage", "not JSON text"),
    (pickle.dumps({"format": "custseg-model"}), "not JSON text"),
    (b'{"hello": "world"}', "no 'custseg-model' format tag"),
])
def test_garbage_and_pickle_are_refused(tmp_path, content, message):
    path = tmp_path / "model.json"
    path.write_bytes(content)
    with pytest.raises(InputError, match=message):
        custseg.load_model(path)


def test_foreign_version_and_tampering_are_refused(trained, tmp_path):
    _, _, path = trained
    data = json.loads(path.read_text())
    foreign = {**data, "format_version": "2.0"}
    (tmp_path / "v2.json").write_text(json.dumps(foreign))
    with pytest.raises(InputError, match="format version '2.0'"):
        custseg.load_model(tmp_path / "v2.json")
    data["clustering"]["centers"][0][0] += 1.0
    (tmp_path / "edited.json").write_text(json.dumps(data))
    with pytest.raises(InputError, match="fails its checksum"):
        custseg.load_model(tmp_path / "edited.json")
    run = subprocess.run([sys.executable, "-m", "custseg.cli", "score",
                          str(tmp_path / "edited.json"), "whatever.csv"],
                         capture_output=True, text=True)
    assert run.returncode == 1 and "checksum" in run.stderr and "Traceback" not in run.stderr


@needs_online_retail
def test_online_retail_scored_with_its_own_model(tmp_path):
    run_segments(ONLINE_RETAIL, out_dir=tmp_path / "out")
    run = subprocess.run([sys.executable, "-m", "custseg.cli", "score",
                          str(tmp_path / "out" / "model.json"), str(ONLINE_RETAIL),
                          "--out", str(tmp_path / "scored.csv"), "-q"],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    a = pd.read_csv(tmp_path / "out" / "segments.csv", dtype={"customer_id": str})
    b = pd.read_csv(tmp_path / "scored.csv", dtype={"customer_id": str})
    assert len(a) == len(b) == 4338
    merged = a.merge(b, on="customer_id", suffixes=("", "_scored"))
    assert (merged["segment"] == merged["segment_scored"]).all()
    assert (merged["rfm_segment"] == merged["rfm_segment_scored"]).all()


@needs_mall
def test_customer_table_model(tmp_path):
    result = run_segments(MALL, k=5, out_dir=tmp_path / "out")
    scored = custseg.load_model(tmp_path / "out" / "model.json").predict(MALL)
    assert (scored["segment"].to_numpy() == result.segments["segment"].to_numpy()).all()


def test_segmenter_save_and_load_predicts_the_same(tmp_path):
    from sklearn.datasets import make_blobs

    X, _ = make_blobs(500, 3, centers=3, random_state=0)
    frame = pd.DataFrame(X, columns=["a", "b", "c"])
    model = custseg.Segmenter(k=3, n_bootstrap=0).fit(frame)
    model.save(tmp_path / "m.json")
    scored = custseg.load_model(tmp_path / "m.json").predict(frame=frame)
    assert (scored["segment"].to_numpy() == model.labels_ + 1).all()


@needs_online_retail
def test_track_with_the_old_model_keeps_segment_meanings(tmp_path):
    old = run_segments(ONLINE_RETAIL, config=custseg.Config(as_of="2011-06-30"), k=4,
                       out_dir=tmp_path / "june")
    run_segments(ONLINE_RETAIL, k=4, out_dir=tmp_path / "december")
    from custseg.track import track

    info = track(tmp_path / "june", tmp_path / "december", tmp_path / "moves",
                 model=tmp_path / "june" / "model.json")
    matrix = pd.read_csv(tmp_path / "moves" / "migration_matrix.csv", index_col=0)
    names = {s["name"] for s in old.summary["segments"]}
    assert set(matrix.columns) - {"gone"} <= names  # the new snapshot speaks the old names
    june = pd.read_csv(tmp_path / "june" / "segments.csv", dtype={"customer_id": str})
    assert matrix.drop(index="new").to_numpy().sum() == len(june)
    assert info["customers"] == matrix.to_numpy().sum()
