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
        cards = page.locator(".card h3").all_inner_texts()
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "report.png"), full_page=True)
        browser.close()
    assert expected >= 8 and drawn >= expected
    assert errors == []
    assert requests == []
    assert cards and not any(c.startswith("Segment ") for c in cards)
    shutil.copy(report, ARTIFACTS / "report.html")
