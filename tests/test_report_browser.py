"""The report in a real browser: headless Chromium (Debian's), network blocked."""

import shutil
from pathlib import Path

import pytest

from conftest import ONLINE_RETAIL

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = pytest.mark.skipif(not CHROMIUM.exists(),
                                reason="Debian's chromium is not installed (make install adds it)")
playwright = pytest.importorskip("playwright.sync_api")

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
VALUE_CHARTS = ("value_by_segment", "p_alive_matrix", "calibration")


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    from custseg.jobs.run import run_segments

    out = tmp_path_factory.mktemp("browser") / "out"
    if ONLINE_RETAIL.exists():
        run_segments(ONLINE_RETAIL, out_dir=out)
    else:  # still a real run, on generated data
        from custseg.synth import generate

        data = tmp_path_factory.mktemp("synth")
        generate(2000, data, seed=1)
        run_segments(data / "transactions.parquet", out_dir=out)
    # The backtest block custseg backtest writes (made up here): its chart is drawn too.
    from custseg.core import summary as sm
    from custseg.outputs.report import rerender
    from test_report import sample_backtest

    summary = sm.load(out / "summary.json")
    if "backtest" not in summary:
        summary.backtest = sample_backtest()
        (out / "summary.json").write_text(sm.encode(summary), encoding="utf-8")
        rerender(out)
    return out / "report.html"


def test_report_draws_every_chart_offline_without_errors(report):
    errors, requests = [], []
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                    args=["--no-sandbox", "--disable-gpu",
                                          "--disable-background-networking",
                                          "--disable-component-update", "--disable-sync"])
        page = browser.new_page(viewport={"width": 1300, "height": 1000})
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))

        def block(route):
            if not route.request.url.startswith(("file:", "data:", "blob:")):
                requests.append(route.request.url)
                route.abort()
            else:
                route.continue_()

        page.route("**/*", block)
        page.goto(report.as_uri())
        charts = page.locator("div.chart")
        expected = charts.count()
        page.wait_for_function(
            f"document.querySelectorAll('div.chart svg').length >= {expected}", timeout=30_000)
        drawn = page.locator("div.chart svg").count()
        value_charts = {name: page.locator(f"#chart-{name} svg path, #chart-{name} svg rect, "
                                           f"#chart-{name} svg line").count()
                        for name in VALUE_CHARTS}
        value_text = page.locator("#value").inner_text()
        card_values = page.locator(".card .predicted-value").all_inner_texts()
        cards = page.locator(".card h3").all_inner_texts()
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "report.png"), full_page=True)
        browser.close()
    assert expected >= 8 and drawn >= expected
    assert errors == []
    assert requests == []
    assert cards and not any(c.startswith("Segment ") for c in cards)
    # the value charts drew marks, not an empty frame
    assert all(count > 20 for count in value_charts.values()), value_charts
    assert "Predicted value" in value_text and "Backtest" in value_text
    assert len(card_values) == len(cards)
    shutil.copy(report, ARTIFACTS / "report.html")
