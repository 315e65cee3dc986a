"""Audience exports (`custseg export`): exactly the chosen segments' customers, and contact
columns only in the export file, only when asked for."""

import subprocess
import sys

import pandas as pd
import pytest

import custseg
from custseg.core.config import Config
from custseg.core.exceptions import ConfigError, InputError
from custseg.jobs.export import export_audience
from custseg.synth import generate


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A run on synthetic lines joined with a customer table that holds e-mail addresses."""
    root = tmp_path_factory.mktemp("audience")
    paths = generate(1500, root / "data", seed=7)
    people = pd.read_parquet(paths["customers_table"])
    people["email"] = [f"buyer{i}@example.org" for i in range(len(people))]
    people["phone"] = [f"+44 20 7946 {i:04d}" for i in range(len(people))]
    people.to_csv(root / "people.csv", index=False)
    custseg.run_segments(paths["transactions"], out_dir=root / "out",
                         customers=str(root / "people.csv"), seed=0)
    return root


def test_an_export_holds_exactly_the_chosen_segments(run, tmp_path):
    table = pd.read_csv(run / "out" / "segments.csv", dtype={"customer_id": str})
    names = table["segment_name"].value_counts().index
    first, second = names[0], int(table.loc[table["segment_name"] == names[1],
                                            "segment"].iloc[0])
    whole = Config().overridden({"campaign.holdout": 0.0})
    audience = export_audience(run / "out", [first.upper(), str(second)], tmp_path / "a.csv",
                               config=whole)
    written = pd.read_csv(tmp_path / "a.csv", dtype={"customer_id": str})
    expected = table[(table["segment_name"] == first) | (table["segment"] == second)]
    assert set(written["customer_id"]) == set(expected["customer_id"])
    assert len(written) == len(expected) == audience.rows
    assert audience.segments == {first: int((table["segment_name"] == first).sum()),
                                 names[1]: int((table["segment"] == second).sum())}
    assert {"customer_id", "segment_name", "clv"} <= set(written.columns)
    assert "email" not in written.columns
    assert audience.control is None and not (tmp_path / "a.control.csv").exists()
    # by default 10% of each segment is its control group, in a file of its own
    held = export_audience(run / "out", [first, str(second)], tmp_path / "b.csv")
    target = pd.read_csv(tmp_path / "b.csv", dtype={"customer_id": str})
    control = pd.read_csv(held.control, dtype={"customer_id": str})
    assert set(target["customer_id"]) | set(control["customer_id"]) == set(
        expected["customer_id"])
    assert not set(target["customer_id"]) & set(control["customer_id"])
    assert len(control) == sum(round(0.1 * n) for n in audience.segments.values())
    assert held.rows == len(target) and held.manifest.is_file()


def test_parquet_and_chosen_columns(run, tmp_path):
    table = pd.read_csv(run / "out" / "segments.csv", dtype={"customer_id": str})
    name = table["segment_name"].iloc[0]
    export_audience(run / "out", [name], tmp_path / "a.parquet", columns=["clv", "recency"])
    target = pd.read_parquet(tmp_path / "a.parquet")
    control = pd.read_parquet(tmp_path / "a.control.parquet")
    # the segment is kept (measure reads it) and each file says its group
    assert list(target.columns) == ["customer_id", "segment", "clv", "recency", "group"]
    assert len(target) + len(control) == int((table["segment_name"] == name).sum())
    assert set(control["group"]) == {"control"} and set(target["group"]) == {"target"}


def test_contacts_reach_the_export_only(run, tmp_path):
    table = pd.read_csv(run / "out" / "segments.csv", dtype={"customer_id": str})
    name = table["segment_name"].iloc[0]
    people = pd.read_csv(run / "people.csv", dtype=str)
    proc = subprocess.run([sys.executable, "-m", "custseg.cli", "export", run / "out",
                           "--segment", name, "--with-contacts", run / "people.csv",
                           "--contact-columns", "email", "--out", tmp_path / "mail.csv"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    written = pd.read_csv(tmp_path / "mail.csv", dtype=str)
    assert "phone" not in written.columns  # only the contact columns named
    key = next(c for c in people.columns if c.lower().startswith("customer"))
    emails = dict(zip(people[key].str.replace(r"\.0$", "", regex=True), people["email"],
                      strict=True))
    assert written["email"].notna().all()
    assert (written["email"] == written["customer_id"].map(emails)).all()
    for path in (run / "out").rglob("*"):
        if path.is_file() and path.suffix in (".csv", ".json", ".html"):
            text = path.read_text(encoding="utf-8", errors="replace")
            assert "@example.org" not in text and "+44 20 7946" not in text, path


def test_wrong_requests_are_one_line(run, tmp_path):
    with pytest.raises(InputError, match=r"No segment 'Nobody' in .*; its segments are 1: "):
        export_audience(run / "out", ["Nobody"], tmp_path / "a.csv")
    with pytest.raises(InputError, match="has no column 'shoe_size'"):
        export_audience(run / "out", ["1"], tmp_path / "a.csv", columns=["shoe_size"])
    with pytest.raises(ConfigError, match="--contact-columns needs --with-contacts"):
        export_audience(run / "out", ["1"], tmp_path / "a.csv", contact_columns=["email"])
    with pytest.raises(InputError, match="has no column 'fax'"):
        export_audience(run / "out", ["1"], tmp_path / "a.csv", contacts=run / "people.csv",
                        contact_columns=["fax"])
    proc = subprocess.run([sys.executable, "-m", "custseg.cli", "export", run / "out",
                           "--segment", "Nobody", "--out", tmp_path / "b.csv"],
                          capture_output=True, text=True)
    assert proc.returncode == 1 and len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "a.csv").exists() and not (tmp_path / "b.csv").exists()


def test_an_rfm_folder_exports_by_rfm_segment(tmp_path):
    paths = generate(400, tmp_path / "data", seed=2)
    custseg.run_rfm(paths["transactions"], out_dir=tmp_path / "rfm")
    table = pd.read_csv(tmp_path / "rfm" / "segments.csv", dtype={"customer_id": str})
    audience = export_audience(tmp_path / "rfm", ["champions"], tmp_path / "c.csv")
    champions = int((table["rfm_segment"] == "Champions").sum())
    assert audience.rows + audience.split.control == champions > 0
    assert audience.split.control == round(0.1 * champions)
    assert [s.segment for s in audience.split.segments] == ["Champions"]


def test_a_run_with_hashed_ids_is_measured_with_its_salt(tmp_path):
    from custseg.jobs.campaign import measure_campaign

    paths = generate(500, tmp_path / "data", seed=3)
    lines = pd.read_parquet(paths["transactions"])
    cut = pd.Timestamp("2023-10-01")
    lines[lines["InvoiceDate"] < cut].to_parquet(tmp_path / "before.parquet")
    lines[lines["InvoiceDate"] >= cut].to_parquet(tmp_path / "after.parquet")
    salted = Config(hash_ids=True, salt="pepper", report=False, figures=False, currency="EUR")
    custseg.run_segments(str(tmp_path / "before.parquet"), out_dir=tmp_path / "run",
                         config=salted)
    table = pd.read_csv(tmp_path / "run" / "segments.csv", dtype={"customer_id": str})
    ids = table["segment"].astype(str).unique().tolist()
    audience = export_audience(tmp_path / "run", ids, tmp_path / "a.csv",
                               config=Config().overridden({"campaign.seed": 2}))
    assert audience.split.run.customer_ids == "salted hashes"
    assert audience.split.currency.code == "EUR"  # the run's, kept for the measurement
    with pytest.raises(InputError, match="give its salt"):
        measure_campaign(audience.manifest, str(tmp_path / "after.parquet"))
    result = measure_campaign(audience.manifest, str(tmp_path / "after.parquet"),
                              config=Config(salt="pepper"))
    later = pd.read_parquet(tmp_path / "after.parquet")
    window = audience.split.window
    within = later["InvoiceDate"].between(pd.Timestamp(window.start), pd.Timestamp(window.end),
                                          inclusive="left")
    buyers = later.loc[(later["Quantity"] > 0) & (later["UnitPrice"] > 0) & within,
                       "CustomerID"]
    # every buyer of the window is in a group or counted outside: nothing lost to hashing
    grouped = result.total.buyers_target + result.total.buyers_control
    assert result.currency.code == "EUR"
    assert grouped + result.outsiders.customers == buyers.dropna().nunique()
    assert grouped > 0
