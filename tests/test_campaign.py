"""The campaign loop through the command line on Online Retail: a run on the history up
to a date, an audience exported with a control group, "campaign" lines planted for one
segment's target group in the weeks after, and the uplift measured: found where it was
planted, not found where it was not, and the checks a careful analyst makes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import numpy as np
import pandas as pd
import pytest

from conftest import ONLINE_RETAIL, needs_online_retail

SPLIT, END = pd.Timestamp("2011-09-01"), pd.Timestamp("2011-10-01")
SCHEMAS = Path(__file__).resolve().parents[1] / "schemas"
pytestmark = needs_online_retail


def cli(*args, check=True):
    proc = subprocess.run([sys.executable, "-m", "custseg.cli", *map(str, args)],
                          capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"})
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


@pytest.fixture(scope="module")
def loop(tmp_path_factory):
    root = tmp_path_factory.mktemp("campaign")
    lines = pd.read_parquet(ONLINE_RETAIL)
    date = pd.to_datetime(lines["InvoiceDate"])
    lines[date < SPLIT].to_parquet(root / "before.parquet")
    later = lines[(date >= SPLIT) & (date < END)].copy()
    cli("run", root / "before.parquet", "--out", root / "run", "--no-figures", "-q")
    segments = pd.read_csv(root / "run" / "segments.csv", dtype={"customer_id": str})
    chosen = segments["segment"].value_counts().index[:3].astype(str).tolist()
    export = ["export", root / "run", "--out", root / "aud" / "audience.csv", "--seed", 5,
              "--holdout", "25%"]
    for s in chosen:
        export += ["--segment", s]
    exported = cli(*export)
    target = pd.read_csv(root / "aud" / "audience.csv", dtype=str)
    # the campaign: 30% of the first segment's target group buy once more, on 8 September
    rng = np.random.default_rng(1)
    lucky = target.loc[target["segment"] == chosen[0], "customer_id"]
    lucky = lucky[rng.random(len(lucky)) < 0.3]
    planted = pd.DataFrame({
        "InvoiceNo": [f"9{i:05d}" for i in range(len(lucky))], "StockCode": "85123A",
        "Description": "WHITE HANGING HEART T-LIGHT HOLDER", "Quantity": 6,
        "InvoiceDate": pd.Timestamp("2011-09-08 11:00"), "UnitPrice": 2.95,
        "CustomerID": lucky.astype(float).to_numpy(), "Country": "United Kingdom"})
    later = pd.concat([later, planted.astype(later.dtypes.to_dict())], ignore_index=True)
    later.to_parquet(root / "later.parquet")
    measured = cli("measure", root / "aud" / "audience.manifest.json", "--orders",
                   root / "later.parquet", "--out", root / "measure")
    result = json.loads((root / "measure" / "measure.json").read_text())
    return {"root": root, "chosen": chosen, "later": later, "result": result,
            "export": exported, "measure": measured, "planted": len(lucky)}


def test_the_planted_uplift_is_found_and_the_others_are_not(loop):
    result = loop["result"]
    by_id = {s["segment"]: s for s in result["segments"]}
    hit = by_id[loop["chosen"][0]]
    assert hit["significant"] and hit["buying"]["uplift"] > 0.1
    low, high = hit["buying"]["interval"]
    assert low > 0 and low < hit["buying"]["uplift"] < high
    assert hit["incremental_revenue"] > 0
    for other in loop["chosen"][1:]:
        assert not by_id[other]["significant"], by_id[other]["verdict"]
    assert result["correction"] == "holm" and not result["sample_ratio_mismatch"]
    assert "brought more buyers" in hit["verdict"]
    assert "significant" in loop["measure"].stdout


def test_files_and_manifest_agree_and_follow_their_schemas(loop):
    root = loop["root"]
    manifest = json.loads((root / "aud" / "audience.manifest.json").read_text())
    jsonschema.validate(manifest, json.loads((SCHEMAS / "manifest.schema.json").read_text()))
    jsonschema.validate(loop["result"],
                        json.loads((SCHEMAS / "measure.schema.json").read_text()))
    target = pd.read_csv(root / "aud" / "audience.csv", dtype=str)
    control = pd.read_csv(root / "aud" / "audience.control.csv", dtype=str)
    assert not set(target["customer_id"]) & set(control["customer_id"])
    segments = pd.read_csv(root / "run" / "segments.csv", dtype={"customer_id": str})
    for part in manifest["segments"]:
        members = segments[segments["segment"].astype(str) == part["segment"]]
        assert part["customers"] == len(members)
        assert part["control"] == (control["segment"] == part["segment"]).sum() \
            == round(0.25 * len(members))
        assert set(members["customer_id"]) == set(
            pd.concat([target, control]).query("segment == @part['segment']")["customer_id"])
        assert 0 < part["min_detectable_uplift"] < 1
    assert manifest["seed"] == 5 and manifest["holdout"] == 0.25
    assert manifest["window"] == {"start": "2011-09-01", "end": "2011-10-01", "days": 30}


def test_the_same_seed_gives_the_same_groups(loop, tmp_path):
    root, chosen = loop["root"], loop["chosen"]
    args = ["export", root / "run", "--seed", 5, "--holdout", "25%",
            *[x for s in chosen for x in ("--segment", s)]]
    cli(*args, "--out", tmp_path / "again.csv")
    first = pd.read_csv(root / "aud" / "audience.control.csv", dtype=str)
    again = pd.read_csv(tmp_path / "again.control.csv", dtype=str)
    assert set(first["customer_id"]) == set(again["customer_id"])
    args[3] = 6
    cli(*args, "--out", tmp_path / "other.csv")
    other = pd.read_csv(tmp_path / "other.control.csv", dtype=str)
    assert set(first["customer_id"]) != set(other["customer_id"])


def test_buyers_in_neither_group_are_counted_and_left_out(loop):
    later, root = loop["later"], loop["root"]
    kept = later[(later["Quantity"] > 0) & (later["UnitPrice"] > 0)
                 & ~later["InvoiceNo"].astype(str).str.startswith("C")
                 & later["CustomerID"].notna()]
    buyers = set(kept["CustomerID"].astype(int).astype(str))
    grouped = set(pd.read_csv(root / "aud" / "audience.csv", dtype=str)["customer_id"]) | set(
        pd.read_csv(root / "aud" / "audience.control.csv", dtype=str)["customer_id"])
    assert loop["result"]["outsiders"]["customers"] == len(buyers - grouped)
    result = loop["result"]
    assert result["total"]["buyers_target"] + result["total"]["buyers_control"] \
        == len(buyers & grouped)


def test_a_changed_run_folder_is_refused_in_one_line(loop, tmp_path):
    root = loop["root"]
    shutil.copytree(root / "run", tmp_path / "run")
    cli("export", tmp_path / "run", "--segment", loop["chosen"][0], "--out",
        tmp_path / "a.csv", "--seed", 1)
    table = pd.read_csv(tmp_path / "run" / "segments.csv", dtype={"customer_id": str})
    table.loc[0, "segment"] = int(loop["chosen"][1])  # one customer moved
    table.to_csv(tmp_path / "run" / "segments.csv", index=False)
    proc = cli("measure", tmp_path / "a.manifest.json", "--orders", root / "later.parquet",
               "--out", tmp_path / "m", check=False)
    assert proc.returncode == 1
    assert "has changed since the split" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr


def test_an_unbalanced_split_is_a_loud_sample_ratio_warning(loop, tmp_path):
    root = loop["root"]
    shutil.copytree(root / "aud", tmp_path / "aud")
    target = pd.read_csv(tmp_path / "aud" / "audience.csv", dtype=str)
    target.iloc[: len(target) // 3 * 2].to_csv(tmp_path / "aud" / "audience.csv", index=False)
    proc = cli("measure", tmp_path / "aud" / "audience.manifest.json", "--orders",
               root / "later.parquet", "--out", tmp_path / "m")
    result = json.loads((tmp_path / "m" / "measure.json").read_text())
    assert result["sample_ratio_mismatch"] and result["sample_ratio_p"] < 0.001
    assert "SAMPLE RATIO MISMATCH" in proc.stdout
    assert result["warnings"][0].startswith("SAMPLE RATIO MISMATCH")
    page = (tmp_path / "m" / "measure.html").read_text()
    assert 'class="alarm"' in page


def test_a_window_not_yet_closed_says_how_many_days_are_to_come(loop, tmp_path):
    later = loop["later"]
    early = later[pd.to_datetime(later["InvoiceDate"]) < pd.Timestamp("2011-09-11")]
    early.to_parquet(tmp_path / "early.parquet")
    last = pd.to_datetime(early["InvoiceDate"]).max().date()
    cli("measure", loop["root"] / "aud" / "audience.manifest.json", "--orders",
        tmp_path / "early.parquet", "--out", tmp_path / "m")
    result = json.loads((tmp_path / "m" / "measure.json").read_text())
    expected = (pd.Timestamp("2011-10-01").date() - last).days - 1
    assert result["days_to_come"] == expected > 0
    assert any(f"{expected} of its 30 days are still to come" in w for w in result["warnings"])


def test_later_orders_from_a_database_measure_the_same(loop, tmp_path):
    import sqlite3

    later = loop["later"].copy()
    later["InvoiceDate"] = pd.to_datetime(later["InvoiceDate"]).dt.strftime("%Y-%m-%d %H:%M")
    with sqlite3.connect(tmp_path / "shop.db") as con:
        later.to_sql("order_lines", con, index=False)
    cli("measure", loop["root"] / "aud" / "audience.manifest.json", "--db",
        f"sqlite:///{tmp_path / 'shop.db'}", "--sql", "select * from order_lines", "--out",
        tmp_path / "m")
    result = json.loads((tmp_path / "m" / "measure.json").read_text())
    for part in ("segments", "total", "outsiders", "lines"):
        assert result[part] == loop["result"][part]
