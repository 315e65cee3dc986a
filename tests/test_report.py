"""The HTML report: self-contained, escaped, with PNG figures; re-rendered on demand."""

import re
import subprocess
import sys

import pytest

import custseg
from custseg.jobs.run import run_segments
from test_cluster import PLANTED_MAP, planted_lines

EVIL = '<img src=x onerror="alert(1)">'


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    frame, _ = planted_lines(seed=2)
    frame["place"] = "UK"
    frame.loc[frame["shopper"] == frame["shopper"].iloc[0], "place"] = EVIL
    out = tmp_path_factory.mktemp("report") / "out"
    config = custseg.Config(mapping={**PLANTED_MAP, "country": "place"})
    run_segments(frame=frame, config=config, out_dir=out)
    return out


def test_report_is_self_contained_and_small(run_dir):
    html = (run_dir / "report.html").read_text(encoding="utf-8")
    assert not re.search(r"<script[^>]+src=", html)
    assert not re.search(r"<link[^>]+href=", html)
    assert "vegaEmbed" in html
    assert (run_dir / "report.html").stat().st_size < 6 * 1024 * 1024
    names = re.findall(r"<h3>(.*?) <span", html)
    assert len(names) == len(set(names)) >= 2
    assert not any(name.startswith("Segment ") for name in names)


def test_report_has_at_least_8_figures(run_dir):
    pngs = sorted((run_dir / "figures").glob("*.png"))
    assert len(pngs) >= 8
    for png in pngs:
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert png.stat().st_size > 5_000


def test_markup_in_the_data_never_runs(run_dir):
    html = (run_dir / "report.html").read_text(encoding="utf-8")
    assert EVIL not in html
    assert "onerror=\\\"alert" not in html
    # the value is still there, as text: escaped in HTML or in the chart data
    assert "&lt;img src=x" in html or "\\u003cimg src=x" in html


def test_report_command_renders_again(run_dir):
    (run_dir / "report.html").unlink()
    run = subprocess.run([sys.executable, "-m", "custseg.cli", "report", str(run_dir)],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert (run_dir / "report.html").exists()


def test_report_command_on_a_wrong_folder(tmp_path):
    run = subprocess.run([sys.executable, "-m", "custseg.cli", "report", str(tmp_path)],
                         capture_output=True, text=True)
    assert run.returncode == 1 and "has no summary.json" in run.stderr


def test_result_shows_inline_in_a_notebook(tmp_path):
    frame, _ = planted_lines(seed=3, per_group=40)
    frame.loc[0, "article"] = "<b>bold</b>"
    result = run_segments(frame=frame, config=custseg.Config(mapping=PLANTED_MAP), k=4)
    table = result._repr_html_()
    assert table.startswith("<table>") and "New customers" in table
    written = run_segments(frame=frame, config=custseg.Config(mapping=PLANTED_MAP), k=4,
                           out_dir=tmp_path / "out")
    frame_html = written._repr_html_()
    assert frame_html.startswith("<iframe srcdoc=") and "<b>bold</b>" not in frame_html


def test_run_with_compare_puts_the_comparison_in_the_report(tmp_path):
    frame, _ = planted_lines(seed=4, per_group=40)
    result = run_segments(frame=frame, config=custseg.Config(mapping=PLANTED_MAP),
                          out_dir=tmp_path / "out", compare=True)
    cmp = result.summary["comparison"]
    assert {row["algorithm"] for row in cmp["table"]} == set(custseg.cluster.ALGORITHMS)
    assert cmp["recommendation"].startswith("Recommended:")
    assert (tmp_path / "out" / "figures" / "comparison.png").exists()
    assert 'id="chart-comparison"' in (tmp_path / "out" / "report.html").read_text()
