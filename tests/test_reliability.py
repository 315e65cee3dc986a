"""Determinism, atomic outputs, --hash-ids, personal data and the dashboard's path check."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest

import custseg
from conftest import ONLINE_RETAIL, needs_online_retail
from custseg.app import inside_upload_area
from custseg.core.exceptions import InputError
from custseg.outputs import report as report_module
from test_bad_inputs import csv_file, orders
from test_bad_inputs import custseg as cli


def output_files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


def without_timings(path: Path) -> dict:
    summary = json.loads(path.read_text(encoding="utf-8"))
    summary.pop("timings_s")
    return summary


# ----------------------------------------------------------------------- determinism
def test_same_seed_gives_byte_identical_outputs(tmp_path):
    path = csv_file(orders(60, seed=5), tmp_path / "orders.csv")
    for command in ("run", "rfm"):
        first, second = tmp_path / f"{command}1", tmp_path / f"{command}2"
        for out in (first, second):
            run = cli(command, path, "--out", out, "--seed", "3", "-q") if command == "run" \
                else cli(command, path, "--out", out, "-q")
            assert run.returncode == 0, run.stderr
        a, b = output_files(first), output_files(second)
        for name in ("segments.csv", "excluded_customers.csv", "model.json"):
            if name in a:
                assert a[name] == b[name], name
        # summary.json differs only in its timings, kept in their own field
        assert without_timings(first / "summary.json") == without_timings(second / "summary.json")
        assert set(json.loads(a["summary.json"])["timings_s"]) >= {"read", "clean", "rfm"}
        if "report.html" in a:
            assert a["report.html"] == b["report.html"]


def test_shuffled_rows_give_identical_segments(tmp_path):
    frame = orders(80, seed=9)
    shuffled = frame.sample(frac=1, random_state=4).reset_index(drop=True)
    assert not shuffled.equals(frame)
    for command in ("run", "rfm"):
        outs = []
        for name, table in (("a", frame), ("b", shuffled)):
            out = tmp_path / f"{command}-{name}"
            run = cli(command, csv_file(table, tmp_path / f"{name}.csv"), "--out", out,
                      "--no-figures", "-q")
            assert run.returncode == 0, run.stderr
            outs.append(out)
        assert (outs[0] / "segments.csv").read_bytes() == (outs[1] / "segments.csv").read_bytes()
        a, b = (without_timings(o / "summary.json") for o in outs)
        a["input"].pop("path"), b["input"].pop("path")
        assert a == b


@needs_online_retail
def test_online_retail_shuffled_gives_identical_segments(tmp_path):
    frame = pd.read_parquet(ONLINE_RETAIL)
    frame.sample(frac=1, random_state=1).to_parquet(tmp_path / "shuffled.parquet", index=False)
    outs = {}
    for name, path in (("original", ONLINE_RETAIL), ("shuffled", tmp_path / "shuffled.parquet")):
        outs[name] = tmp_path / name
        run = cli("rfm", path, "--out", outs[name], "--no-figures", "-q")
        assert run.returncode == 0, run.stderr
    original = (outs["original"] / "segments.csv").read_bytes()
    assert original == (outs["shuffled"] / "segments.csv").read_bytes()
    assert len(pd.read_csv(outs["original"] / "segments.csv")) == 4338


# --------------------------------------------------------------------- atomic outputs
def test_a_failed_run_keeps_the_previous_output_and_leaves_no_temporary_folder(
        tmp_path, monkeypatch):
    frame = orders(40)
    out = tmp_path / "out"
    custseg.run_segments(frame=frame, out_dir=out, k=3)
    before = output_files(out)
    assert "report.html" in before

    def broken(*args, **kwargs):
        raise RuntimeError("disk full while writing the report")

    monkeypatch.setattr(report_module, "render_report", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        custseg.run_segments(frame=frame, out_dir=out, k=3)
    assert output_files(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_a_failed_first_run_leaves_no_folder(tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise OSError("no space left on device")

    monkeypatch.setattr(report_module, "render_report", broken)
    with pytest.raises(OSError):
        custseg.run_segments(frame=orders(40), out_dir=tmp_path / "out", k=3)
    assert list(tmp_path.iterdir()) == []


def test_bad_input_keeps_the_previous_output(tmp_path):
    good = csv_file(orders(30), tmp_path / "orders.csv")
    out = tmp_path / "out"
    assert cli("rfm", good, "--out", out, "-q").returncode == 0
    before = output_files(out)
    (tmp_path / "bad.csv").write_text("InvoiceNo,CustomerID\n")
    run = cli("rfm", tmp_path / "bad.csv", "--out", out)
    assert run.returncode == 1
    assert output_files(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.csv", "orders.csv", "out"]


# --------------------------------------------------------------------------- hash ids
def ids_frame() -> pd.DataFrame:
    frame = orders(40)
    frame["CustomerID"] = "CUST-" + frame["CustomerID"] + "-X"
    extra = frame.head(1).assign(CustomerID="CUST-RETURNS-ONLY", Quantity=-1)
    return pd.concat([frame, extra], ignore_index=True)


def test_hash_ids_replace_every_id_in_every_output(tmp_path):
    path = csv_file(ids_frame(), tmp_path / "orders.csv")
    for command in ("run", "rfm"):
        out = tmp_path / command
        run = cli(command, path, "--out", out, "--hash-ids", "--salt", "s3cret-pepper", "-q")
        assert run.returncode == 0, run.stderr
        files = output_files(out)
        for name, data in files.items():
            assert b"CUST-" not in data, name
            assert b"s3cret-pepper" not in data, name
        seg = pd.read_csv(out / "segments.csv", dtype={"customer_id": str})
        assert seg["customer_id"].str.fullmatch(r"[0-9a-f]{16}").all()
        assert seg["customer_id"].is_unique and len(seg) == 40
        assert list(seg["customer_id"]) == sorted(seg["customer_id"])
        excluded = pd.read_csv(out / "excluded_customers.csv", dtype={"customer_id": str})
        assert excluded["customer_id"].str.fullmatch(r"[0-9a-f]{16}").all()
        assert len(excluded) == 1
        summary = json.loads(files["summary.json"])
        assert "salted" in summary["customer_ids"]


def test_same_salt_same_hashes_and_no_salt_a_random_one(tmp_path):
    path = csv_file(ids_frame(), tmp_path / "orders.csv")

    def hashes(name, *salt):
        run = cli("rfm", path, "--out", tmp_path / name, "--hash-ids", *salt, "--no-figures",
                  "-q")
        assert run.returncode == 0, run.stderr
        seg = pd.read_csv(tmp_path / name / "segments.csv", dtype={"customer_id": str})
        return seg.sort_values("monetary", kind="stable")["customer_id"].tolist()

    a, b = hashes("a", "--salt", "one"), hashes("b", "--salt", "one")
    c = hashes("c", "--salt", "two")
    d, e = hashes("d"), hashes("e")
    assert a == b
    assert not set(a) & set(c)
    assert not set(d) & set(e) and not set(d) & set(a)


def test_score_hashes_with_the_same_salt_as_run(tmp_path):
    path = csv_file(ids_frame(), tmp_path / "orders.csv")
    run = cli("run", path, "--out", tmp_path / "run", "--hash-ids", "--salt", "k", "--k", "3",
              "-q")
    assert run.returncode == 0, run.stderr
    scored = tmp_path / "scored.csv"
    run = cli("score", tmp_path / "run" / "model.json", path, "--out", scored, "--hash-ids",
              "--salt", "k", "-q")
    assert run.returncode == 0, run.stderr
    assert b"CUST-" not in scored.read_bytes()
    seg = pd.read_csv(tmp_path / "run" / "segments.csv", dtype={"customer_id": str})
    new = pd.read_csv(scored, dtype={"customer_id": str})
    assert set(new["customer_id"]) == set(seg["customer_id"])


def test_leading_zero_warning_quotes_no_id_when_hashed():
    frame = orders(12)
    frame.loc[frame["CustomerID"] == "12000", "CustomerID"] = "012001"
    frame.loc[frame["CustomerID"] == "12005", "CustomerID"] = "12001"  # 012001 vs 12001
    shown = custseg.run_rfm(frame=frame).summary["audit"]["warnings"]
    hidden = custseg.run_rfm(frame=frame, config=custseg.Config(hash_ids=True))
    assert any("'012001'" in w for w in shown)
    hidden_warnings = hidden.summary["audit"]["warnings"]
    assert any("leading zeros" in w for w in hidden_warnings)
    assert not any("012001" in w for w in hidden_warnings)


# ---------------------------------------------------------------------- personal data
PEOPLE = {"Ann Baker": "ann.baker@example.org", "Bob Carter": "bob@example.net",
          "Chloé Dubois": "chloe.dubois@example.fr"}


def export_with_names(tmp_path: Path) -> tuple[Path, Path, list[str]]:
    """Order lines and a customer table as a shop exports them, names and all."""
    frame = orders(30)
    people = [(f"Person{i} Surname{i}", f"p{i}@mail.example.com", f"+44 20 7946 {i:04d}",
               f"{i} High Street, Leeds LS{i} 1AA") for i in range(30)]
    people[:3] = [(n, e, "020 7946 0000", "1 Rue de Rivoli") for n, e in PEOPLE.items()]
    by_id = dict(zip(sorted(frame["CustomerID"].unique()), people, strict=True))
    frame["Customer Name"] = frame["CustomerID"].map(lambda c: by_id[c][0])
    frame["E-mail"] = frame["CustomerID"].map(lambda c: by_id[c][1])
    frame["Phone"] = frame["CustomerID"].map(lambda c: by_id[c][2])
    frame["Address"] = frame["CustomerID"].map(lambda c: by_id[c][3])
    table = pd.DataFrame({"Customer ID": list(by_id), "Full Name": [p[0] for p in people],
                          "Contact": [p[1] for p in people],  # e-mails under a plain name
                          "Mobile": [p[2] for p in people], "Street": [p[3] for p in people],
                          "Age": [20 + i for i in range(30)],
                          "Segment Tier": ["gold", "silver", "bronze"] * 10})
    values = [v for p in people for v in p] + [p[0].split()[0] for p in people[3:]]
    return (csv_file(frame, tmp_path / "orders.csv"), csv_file(table, tmp_path / "people.csv"),
            values)


def test_names_emails_phones_addresses_reach_no_output(tmp_path):
    orders_path, people_path, values = export_with_names(tmp_path)
    runs = {"run": ("run", orders_path, "--customers", people_path, "--k", "3"),
            "rfm": ("rfm", orders_path, "--customers", people_path),
            "table": ("run", people_path, "--k", "2")}
    for name, args in runs.items():
        out = tmp_path / name
        run = cli(*args, "--out", out, "-q")
        assert run.returncode == 0, run.stderr
        files = output_files(out)
        assert "segments.csv" in files
        for file, data in files.items():
            text = data.decode("utf-8", errors="replace")
            for value in values:
                assert value not in text, (name, file, value)
        summary = json.loads(files["summary.json"])
        left_out = summary["customer_table"]["personal_columns_left_out"]
        assert set(left_out) == {"Full Name", "Contact", "Mobile", "Street"}
        seg = pd.read_csv(out / "segments.csv")
        assert "Age" in seg.columns and "Segment Tier" in seg.columns


def test_ids_that_are_emails_are_flagged(tmp_path):
    frame = orders(12)
    frame["CustomerID"] = "u" + frame["CustomerID"] + "@example.org"
    warnings = custseg.run_rfm(frame=frame).summary["audit"]["warnings"]
    assert any("e-mail addresses" in w and "--hash-ids" in w for w in warnings)
    assert not any("@example.org" in w for w in warnings)


# -------------------------------------------------------------------------- dashboard
def test_dashboard_reads_only_inside_its_upload_area(tmp_path):
    area = tmp_path / "uploads" / "session1"
    area.mkdir(parents=True)
    inside = area / "orders.csv"
    inside.write_text("x")
    (tmp_path / "secret.csv").write_text("secret")
    assert inside_upload_area(inside, area) == inside.resolve()
    assert inside_upload_area(str(area / "sub" / ".." / "orders.csv"), str(area)) == \
        inside.resolve()
    (area / "link.csv").symlink_to(tmp_path / "secret.csv")
    refused = [tmp_path / "secret.csv", area / ".." / ".." / "secret.csv", "/etc/passwd",
               area / "link.csv", area, tmp_path / "uploads" / "session2" / "x.csv",
               "relative.csv", Path(str(area) + "-evil") / "x.csv"]
    for path in refused:
        with pytest.raises(InputError, match=re.escape("only reads files uploaded")):
            inside_upload_area(path, area)
