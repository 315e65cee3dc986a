"""The report in a real browser: headless Chromium (Debian's), network blocked."""

import re
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
def data(tmp_path_factory) -> Path:
    if ONLINE_RETAIL.exists():
        return ONLINE_RETAIL
    from custseg.synth import generate  # still a real run, on generated data

    folder = tmp_path_factory.mktemp("synth")
    generate(2000, folder, seed=1)
    return folder / "transactions.parquet"


@pytest.fixture(scope="module")
def rfm_report(tmp_path_factory, data):
    import custseg

    out = tmp_path_factory.mktemp("browser-rfm") / "out"
    custseg.run_rfm(data, out_dir=out,
                    config=custseg.Config(profile={"cohorts_by_segment": True}))
    return out / "report.html"


@pytest.fixture(scope="module")
def report(tmp_path_factory, data):
    from custseg.jobs.run import run_segments

    out = tmp_path_factory.mktemp("browser") / "out"
    run_segments(data, out_dir=out)
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


def _open(p, report: Path, errors: list, requests: list, width: int = 1300,
          height: int = 1000):
    """The report in headless Chromium with the network blocked, every chart drawn."""
    browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                args=["--no-sandbox", "--disable-gpu",
                                      "--disable-background-networking",
                                      "--disable-component-update", "--disable-sync"])
    page = browser.new_page(viewport={"width": width, "height": height})
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
    expected = page.locator("div.chart").count()
    page.wait_for_function(
        f"document.querySelectorAll('div.chart svg').length >= {expected}", timeout=30_000)
    return browser, page, expected


def _cells(page) -> int:
    return page.locator("#chart-cohorts svg path").count()


def test_report_draws_every_chart_offline_without_errors(report):
    errors, requests = [], []
    with playwright.sync_playwright() as p:
        browser, page, expected = _open(p, report, errors, requests)
        drawn = page.locator("div.chart svg").count()
        cohort_cells = _cells(page)
        listed = page.locator(".card .lift .item").count()
        # the charts the report has (no P(alive) matrix under a learned purchase model)
        value_charts = {name: page.locator(f"#chart-{name} svg path, #chart-{name} svg rect, "
                                           f"#chart-{name} svg line").count()
                        for name in VALUE_CHARTS if page.locator(f"#chart-{name}").count()}
        value_text = page.locator("#value").inner_text()
        method_text = page.locator("#method").inner_text()
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
    assert {"value_by_segment", "calibration"} <= set(value_charts), value_charts
    assert all(count > 20 for count in value_charts.values()), value_charts
    assert "Predicted value" in value_text and "Backtest" in method_text
    assert len(card_values) == len(cards)
    assert cohort_cells > 20 and listed > 0
    shutil.copy(report, ARTIFACTS / "report.html")


def test_rfm_report_has_its_cards_and_cohorts_per_segment(rfm_report):
    from custseg.core.summary import load as load_summary

    summary = load_summary(rfm_report.parent / "summary.json")
    named = [s for s in summary.rfm_segments if s.customers]
    errors, requests = [], []
    with playwright.sync_playwright() as p:
        browser, page, expected = _open(p, rfm_report, errors, requests)
        cards = page.locator(".rfm-card h3").all_inner_texts()
        sizes = page.locator(".rfm-card .customers").all_inner_texts()
        actions = page.locator(".rfm-card li").count()
        data_text = page.locator("#data").inner_text()
        all_cells = _cells(page)
        menu = page.locator("#chart-cohorts select")
        menu.select_option(named[0].name)
        page.wait_for_timeout(500)
        one_cells = _cells(page)
        page.screenshot(path=str(ARTIFACTS / "report-rfm.png"), full_page=True)
        browser.close()
    assert errors == [] and requests == []
    assert expected >= 5  # sizes, cohorts, RFM grid, value, distributions, ...
    assert cards == [s.name for s in named]
    assert [int(n.replace(",", "")) for n in sizes] == [s.customers for s in named]
    assert actions >= 2 * len(named)
    assert "rows read" in data_text and f"{summary.audit.rows_in:,}" in data_text
    # the menu redraws the heat map for one segment: fewer cohort cells than for all
    assert 0 < one_cells < all_cells


#: Text in the viewport: every text node with a line inside the window.
VISIBLE_TEXT = """() => {
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  const seen = [];
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const range = document.createRange();
    range.selectNodeContents(node);
    for (const r of range.getClientRects()) {
      if (r.bottom > 0 && r.top < window.innerHeight && r.width > 0) {
        seen.push(node.textContent); break;
      }
    }
  }
  return seen.join(" ");
}"""
#: How the report writes a fitted parameter: "alpha = 4.414".
PARAMETER = re.compile(r"\b\w+ = -?\d")
#: The tables and charts of the models' internals (under Method).
INTERNALS = ("#value-params", "#holdout-models", "#holdout-deciles", "#backtest-numbers",
             "#quality", "#chart-k_selection", "#chart-calibration")


def test_the_first_screen_is_what_to_do_first_without_model_parameters(report):
    from custseg.core.summary import load as load_summary

    actions = load_summary(report.parent / "summary.json").first_actions.actions
    errors, requests = [], []
    with playwright.sync_playwright() as p:
        browser, page, _ = _open(p, report, errors, requests, width=1280, height=800)
        page.evaluate("window.scrollTo(0, 0)")
        seen = page.evaluate(VISIBLE_TEXT)
        heading = page.locator("#first-actions h2").bounding_box()
        rows = [page.locator(".first-action").nth(i).bounding_box()
                for i in range(page.locator(".first-action").count())]
        internals = {sel: page.locator(sel).first.bounding_box() for sel in INTERNALS
                     if page.locator(sel).count()}
        page.screenshot(path=str(ARTIFACTS / "report-first-screen.png"))
        browser.close()
    assert errors == [] and requests == []
    assert "What to do first" in seen and heading["y"] < 200
    assert len(rows) == len(actions) >= 3
    assert all(r["y"] + r["height"] <= 800 for r in rows)  # every action on the first screen
    for a in actions:
        assert a.name in seen and a.action in seen
    assert not PARAMETER.search(seen), PARAMETER.search(seen)
    assert {"#value-params", "#holdout-models", "#backtest-numbers"} <= set(internals)
    assert all(box["y"] >= 800 for box in internals.values()), internals


def test_print_hides_the_interactive_bits_and_keeps_cards_whole(rfm_report):
    errors, requests = [], []
    with playwright.sync_playwright() as p:
        browser, page, _ = _open(p, rfm_report, errors, requests)
        menu = page.locator("#chart-cohorts .vega-bindings")
        on_screen = menu.count() == 1 and menu.is_visible()
        page.emulate_media(media="print")
        printed = {
            "menu": menu.is_visible(),
            "first": page.locator("#first-actions").is_visible(),
            "charts": page.locator("div.chart svg").count(),
            "break": page.locator(".card").first.evaluate(
                "e => getComputedStyle(e).breakInside"),
            "page": page.locator("#method, #data").first.evaluate(
                "e => getComputedStyle(e).breakBefore"),
            "shadow": page.locator("section").first.evaluate(
                "e => getComputedStyle(e).boxShadow"),
        }
        pdf = page.pdf(format="A4")
        (ARTIFACTS / "report-rfm.pdf").write_bytes(pdf)
        page.emulate_media(media="screen")
        back = menu.is_visible()
        browser.close()
    assert errors == [] and requests == []
    assert on_screen and back  # the cohort menu is there on screen ...
    assert printed["menu"] is False  # ... and not on paper
    assert printed["first"] and printed["charts"] >= 5
    assert printed["break"] == "avoid" and printed["page"] == "page"
    assert printed["shadow"] == "none"
    assert pdf[:5] == b"%PDF-" and pdf.count(b"/Type /Page") - pdf.count(b"/Type /Pages") > 3
