"""The typed run summary and the published JSON Schemas of summary.json and model.json."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import jsonschema
import pytest

import custseg
from custseg.core import summary as sm
from custseg.core.exceptions import CustsegWarning, InputError
from custseg.outputs import schemas
from custseg.outputs.report import rerender
from custseg.synth import generate

SCHEMAS = Path(__file__).resolve().parents[1] / "schemas"


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """Output folders of rfm, run (order lines with a customer table), run on a customer
    table alone, and run --compare, on small synthetic data."""
    root = tmp_path_factory.mktemp("runs")
    data = generate(300, root / "data", seed=3)
    lines, table = data["transactions"], data["customers_table"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CustsegWarning)
        custseg.run_rfm(lines, out_dir=root / "rfm")
        custseg.run_segments(lines, customers=table, out_dir=root / "run", k=3)
        custseg.run_segments(table, out_dir=root / "table", k=3)
        custseg.run_segments(lines, out_dir=root / "compare", k=3, compare=True)
    return {name: root / name for name in ("rfm", "run", "table", "compare")}


def _schema(name: str) -> dict:
    return json.loads((SCHEMAS / name).read_text(encoding="utf-8"))


def test_published_schemas_are_the_generated_ones():
    for name, text in schemas.texts().items():
        assert (SCHEMAS / name).read_text(encoding="utf-8") == text, (
            f"schemas/{name} is out of date: run `python -m custseg.outputs.schemas`")


@pytest.mark.parametrize("name", ["rfm", "run", "table", "compare"])
def test_every_summary_validates_and_reads_back_unchanged(runs, name):
    path = runs[name] / "summary.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    jsonschema.validate(data, _schema("summary.schema.json"))
    assert sm.encode(sm.load(path)) == path.read_text(encoding="utf-8")


def test_each_run_reads_back_as_its_kind(runs):
    kinds = {name: type(sm.load(runs[name] / "summary.json")) for name in runs}
    assert kinds == {"rfm": sm.RfmSummary, "run": sm.RunSummary,
                     "table": sm.TableRunSummary, "compare": sm.RunSummary}
    run = sm.load(runs["run"] / "summary.json")
    assert run.demographics is not sm.UNSET and run.comparison is sm.UNSET
    assert sm.load(runs["compare"] / "summary.json").comparison.recommendation


def test_absent_parts_stay_absent(runs):
    table = json.loads((runs["table"] / "summary.json").read_text(encoding="utf-8"))
    assert not {"custseg_version", "mapping", "rfm_segments", "comparison", "demographics",
                "monthly_trend"} & set(table)
    rfm = json.loads((runs["rfm"] / "summary.json").read_text(encoding="utf-8"))
    assert not {"customer_table", "columns", "customer_ids", "segments"} & set(rfm)


@pytest.mark.parametrize("name", ["run", "table", "compare"])
def test_every_model_validates(runs, name):
    data = json.loads((runs[name] / "model.json").read_text(encoding="utf-8"))
    jsonschema.validate(data, _schema("model.schema.json"))


def _resealed(data: dict) -> dict:
    """The model with a checksum matching its edited content (SHA-256 of the sorted,
    compact, ASCII JSON of everything else, as the format defines it)."""
    body = {k: v for k, v in data.items() if k != "checksum"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return {**body, "checksum": hashlib.sha256(text.encode("ascii")).hexdigest()}


@pytest.mark.parametrize("edit, field", [
    (lambda m: m["clustering"].update(k="five"), "$.clustering.k"),
    (lambda m: m.update(segments="1,2,3"), "$.segments"),
    (lambda m: m.update(kind="pickle"), "$.kind"),
    (lambda m: m["segments"][0].update(id="1"), "$.segments[0].id"),
])
def test_tampered_model_is_refused_by_the_schema(runs, tmp_path, edit, field):
    data = json.loads((runs["run"] / "model.json").read_text(encoding="utf-8"))
    edit(data)
    sealed = _resealed(data)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(sealed, _schema("model.schema.json"))
    path = tmp_path / "model.json"
    path.write_text(json.dumps(sealed), encoding="utf-8")
    with pytest.raises(InputError, match="does not match the model schema") as caught:
        custseg.load_model(path)
    assert field in str(caught.value) and "\n" not in str(caught.value)


def test_report_refuses_a_summary_of_the_wrong_type(runs, tmp_path):
    folder = tmp_path / "run"
    shutil.copytree(runs["table"], folder)
    data = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    data["metrics"]["silhouette"] = "high"
    (folder / "summary.json").write_text(json.dumps(data), encoding="utf-8")
    run = subprocess.run([sys.executable, "-m", "custseg.cli", "report", str(folder)],
                         capture_output=True, text=True)
    assert run.returncode == 1 and "Traceback" not in run.stderr
    message = run.stderr.strip()
    assert "summary.json" in message and "$.metrics.silhouette" in message
    assert message.count("\n") == 0


def test_report_rerenders_from_the_read_back_summary(runs, tmp_path):
    folder = tmp_path / "run"
    shutil.copytree(runs["run"], folder)
    written = (folder / "report.html").read_text(encoding="utf-8")
    (folder / "report.html").unlink()
    rerender(folder)
    assert (folder / "report.html").read_text(encoding="utf-8") == written
