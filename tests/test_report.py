"""The HTML report: self-contained, escaped, with PNG figures; re-rendered on demand."""

import json
import re
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from markupsafe import escape

import custseg
from custseg.core import threads
from custseg.jobs.run import run_segments
from custseg.outputs.report import CAPTIONS, charts
from custseg.outputs.rundir import read_segments
from custseg.prep import pnbd
from custseg.prep.predict import PURCHASES, Purchases
from test_cluster import PLANTED_MAP, planted_lines

EVIL = '<img src=x onerror="alert(1)">'


def html_escape(text: str) -> str:
    """As Jinja's autoescape writes it."""
    return str(escape(text))


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    frame, _ = planted_lines(seed=2)
    frame["place"] = "UK"
    frame.loc[frame["shopper"].str.startswith("V"), "place"] = EVIL  # a segment's country
    frame["label"] = "Plain " + frame["article"]
    frame.loc[frame["article"] == "SKU7", "label"] = EVIL + " SKU7"
    out = tmp_path_factory.mktemp("report") / "out"
    config = custseg.Config(mapping={**PLANTED_MAP, "country": "place",
                                     "description": "label"})
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


def test_every_chart_is_valid_vega_lite(run_dir):
    """The report skips Altair's schema validation (0.5 s a run); it is done here."""
    summary, table = _summary(run_dir), read_segments(run_dir)
    built = [name for name, build in charts.CHARTS
             if (chart := build(summary, table)) is not None and chart.to_dict(validate=True)]
    assert len(built) >= 8


def _specs(run_dir, folder, n: int = 3) -> list:
    summary, table = _summary(run_dir), read_segments(run_dir)
    built = [(name, chart) for name, build in charts.CHARTS
             if (chart := build(summary, table)) is not None][:n]
    return [(folder / f"{name}.png", chart.to_dict()) for name, chart in built]


def _spied(monkeypatch) -> tuple[list, list]:
    """The renderers started and the PNGs drawn in this process, from now on."""
    from custseg.outputs.report import _png

    started, here = [], []
    real, write = _png._renderer, _png._write
    monkeypatch.setattr(_png, "_renderer", lambda: started.append(1) or real())
    monkeypatch.setattr(_png, "_write", lambda p, s: here.append(p) or write(p, s))
    return started, here


def _pixels(path):
    from PIL import Image

    return np.asarray(Image.open(path).convert("L"), dtype=int)


def test_pngs_rendered_by_a_second_process_equal_those_rendered_here(run_dir, tmp_path,
                                                                     monkeypatch):
    """A cold process gives half the charts to a renderer it starts; renderers started
    ahead get them all; a warm process renders in itself; a renderer that cannot start
    leaves the work to this process. Each way writes the same PNGs: byte for byte where
    the same fonts drew them (renderers use vl-convert's own Liberation Sans, this
    process the system's), else the same size and drawing but for the glyphs' edges."""
    from custseg.outputs.report import _png

    monkeypatch.setattr(_png, "_warm", False)
    started, rendered_here = _spied(monkeypatch)

    def folder(name):
        (tmp_path / name).mkdir()
        return _specs(run_dir, tmp_path / name)

    _png.start_ahead(2)
    assert len(started) == 1 and _png._deferred == 1  # the second once the cleaning is done
    _png.start_deferred(early=True)
    assert len(started) == 2
    _png.start_ahead(2)  # started already: no more
    _png.start_deferred()
    assert len(started) == 2
    _png.write_pngs(ahead := folder("ahead"))
    assert not rendered_here and not _png._warm and not _png._ahead
    _png.write_pngs(split := folder("split"))  # cold: half here, half in a renderer
    assert len(started) == 3 and rendered_here == [split[0][0], split[2][0]] and _png._warm
    _png.start_ahead(2)  # warm: none started
    _png.write_pngs(here := folder("here"))
    assert len(started) == 3 and len(rendered_here) == 5
    monkeypatch.setattr(_png, "_warm", False)
    monkeypatch.setattr(sys, "executable", str(tmp_path / "no-python"))
    _png.write_pngs(alone := folder("alone"))
    assert len(rendered_here) == 8
    for i, (a, b, c, d) in enumerate(zip(ahead, split, here, alone, strict=True)):
        by_renderer = a[0].read_bytes()
        assert b[0].read_bytes() == (c[0].read_bytes() if i % 2 == 0 else by_renderer)
        assert c[0].read_bytes() == d[0].read_bytes()
        mine, theirs = _pixels(c[0]), _pixels(a[0])
        assert mine.shape == theirs.shape
        assert (np.abs(mine - theirs) > 64).mean() < 0.005  # antialiasing, not drawing
    assert not list(tmp_path.rglob("*.part"))


def test_a_chart_the_renderers_own_font_cannot_draw_is_rendered_here(run_dir, tmp_path,
                                                                     monkeypatch):
    """Renderers draw with vl-convert's own font only; a chart with other scripts (here
    a segment named in Chinese) is drawn in this process, with the system's fonts."""
    from custseg.outputs.report import _png

    monkeypatch.setattr(_png, "_warm", False)
    _, rendered_here = _spied(monkeypatch)
    specs = _specs(run_dir, tmp_path)
    latin = json.dumps(specs[1][1])
    specs[1] = (specs[1][0], json.loads(latin.replace("Regulars", "\u8001\u987e\u5ba2")))
    assert not _png.own_font_covers(specs[1][1]) and _png.own_font_covers(specs[0][1])
    _png.start_ahead(2)
    _png.write_pngs(specs)
    assert rendered_here == [specs[1][0]]
    assert all(path.read_bytes()[:4] == b"\x89PNG" for path, _ in specs)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.floats(-1e9, 1e9, allow_nan=False), min_size=1, max_size=50))
def test_the_histograms_count_every_customer_in_at_most_30_round_bins(values):
    """The distributions chart's bins (counted here, not in the browser) hold every
    value, at most 30 of them, each as wide as the others."""
    from custseg.outputs.report.charts import nice_edges

    v = np.array(values)
    edges = nice_edges(v.min(), v.max())
    counts, _ = np.histogram(v, bins=edges)
    assert counts.sum() == len(v) and 1 <= len(counts) <= 30
    widths = np.diff(edges)
    assert np.all(widths > 0)
    if len(widths) > 2:
        assert np.allclose(widths[1:-1], widths[1], rtol=1e-6)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=12))
def test_the_font_check_on_the_encoded_spec_agrees_with_the_check_of_its_characters(word):
    """The check on a spec's JSON (encoded once for the page and the renderers) says what
    the check of each character says: a text without an escape is printable ASCII."""
    from custseg.outputs.report import _png

    spec = {"title": f"Segment {word}", "data": {"values": [{"name": word, "n": 1}]}}
    assert _png.own_font_covers(spec, _png.spec_json(spec)) == _png.own_font_covers(spec)
    assert json.loads(_png.spec_json(spec)) == spec


def test_the_renderers_own_font_draws_every_character_it_is_given():
    """Each character sent to a renderer (``OWN_FONT_COVERS``; a sample of 160 and each
    range's ends) has a glyph in vl-convert's own font: its PNG differs from that of a
    character no font has. A CJK character has none there (the check can fail)."""
    from custseg.outputs.report import _png

    chars = sorted(_png.OWN_FONT_COVERS - set("\t\n\r "))
    rng = np.random.default_rng(0)
    ends = [c for c in chars if chr(ord(c) - 1) not in _png.OWN_FONT_COVERS
            or chr(ord(c) + 1) not in _png.OWN_FONT_COVERS]
    sample = sorted(set(ends) | set(rng.choice(chars, 160, replace=False)))
    script = """
import json, sys, tempfile
from custseg.outputs.report import _png
with tempfile.TemporaryDirectory() as fonts:
    _png._own_font_only(fonts)
    def draw(ch):
        return _png.png({"data": {"values": [{"t": ch}]}, "width": 40, "height": 40,
                         "mark": {"type": "text", "fontSize": 30},
                         "encoding": {"text": {"field": "t"}}})
    none = draw("\\ue000")
    chars = json.loads(sys.stdin.read())
    print(json.dumps([c for c in chars if draw(c) == none]))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          input=json.dumps([*sample, "\u4e00"]), timeout=300, check=True)
    assert json.loads(done.stdout.strip().splitlines()[-1]) == ["\u4e00"]


def test_renderers_started_ahead_stop_when_the_job_ends_without_charts(monkeypatch):
    from custseg.outputs.report import _png

    monkeypatch.setattr(_png, "_warm", False)
    _png.start_ahead(2)
    _png.start_deferred(early=True)
    children = list(_png._ahead)
    assert len(children) == 2
    _png.start_ahead(2)  # a second job's deferred renderer, which never comes
    _png.stop_ahead()
    assert [c.wait(timeout=60) for c in children] == [0, 0] and not _png._ahead
    assert not _png._deferred


def test_renderers_of_a_long_run_start_as_its_profiles_begin(tmp_path, monkeypatch):
    """An input file over RENDERERS_LATER_BYTES defers the renderers (its run is long:
    they would only wait, holding memory) to the profile stage, which starts them and
    the write stage uses; a small file starts one at once and the other as the value
    models begin, once the cleaning (which keeps every core busy) is done."""
    from custseg.jobs import rfm
    from custseg.outputs.report import _png

    monkeypatch.setattr(_png, "_warm", False)
    monkeypatch.setattr(_png, "_deferred", 0)  # restored after, whatever happens
    monkeypatch.setattr(rfm, "RENDERERS_LATER_BYTES", 1000)
    frame, _ = planted_lines(seed=3)
    big = tmp_path / "lines.csv"
    frame.to_csv(big, index=False)
    assert big.stat().st_size > 1000
    config = custseg.Config(mapping=PLANTED_MAP)
    rfm.start_renderers(config, tmp_path / "out", str(big))
    assert not _png._ahead and _png._deferred == min(2, threads.cores())
    started, written = _spied(monkeypatch)
    run_segments(str(big), config=config, out_dir=tmp_path / "out")
    assert len(started) == min(2, threads.cores()) and not _png._deferred
    assert not written and len(list((tmp_path / "out" / "figures").glob("*.png"))) >= 8
    small = tmp_path / "small.csv"
    frame.to_csv(small, index=False)
    monkeypatch.setattr(rfm, "RENDERERS_LATER_BYTES", 10 ** 9)
    rfm.start_renderers(config, tmp_path / "out2", str(small))
    assert len(started) == min(2, threads.cores()) + 1  # one more, now
    stages, during = [], []
    spied = _png._renderer
    monkeypatch.setattr(_png, "_renderer", lambda: during.append(stages[-1]) or spied())
    run_segments(str(small), config=config, out_dir=tmp_path / "out2",
                 reporter=lambda name, state: stages.append(name) if state == "start" else None)
    assert during == ["holdout"] * (min(2, threads.cores()) - 1)
    assert not written and len(list((tmp_path / "out2" / "figures").glob("*.png"))) >= 8


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


def test_a_chart_given_fields_as_text_is_altairs_own_chart():
    """The charts' ``encode`` makes channel objects of fields given as text; the chart is
    the one Altair makes of the same text."""
    import altair as alt

    frame = pd.DataFrame({"segment": ["a", "b"], "value": [1.5, 2.0], "lo": [1.0, 1.0]})

    def build(chart):
        return (chart.mark_bar().encode(
            y="segment:N", x="lo:Q", x2="value:Q", color=alt.Color("segment:N", title=None),
            yOffset="segment:N", tooltip=["segment:N", alt.Tooltip("value:Q", format=".1f")])
            .to_dict())
    assert build(charts.Chart(frame)) == build(alt.Chart(frame))


def test_a_charts_definition_is_the_same_whatever_altair_has_enabled(run_dir):
    """Altair's data transformer and theme are settings of the whole process: Streamlit
    enables its own while it draws a chart for one dashboard session, and a report built
    in another session at that moment lost its charts' data (vl-convert then failed: "SVG
    has an invalid size"). The report's charts do not depend on them."""
    import altair as alt

    summary, table = _summary(run_dir), read_segments(run_dir)
    built = [chart for _, build in charts.CHARTS if (chart := build(summary, table))]
    alone = [charts.spec(chart) for chart in built]
    elsewhere = {}

    def keep_elsewhere(data):  # as Streamlit's: the data go to its own dict
        elsewhere[str(len(elsewhere))] = data
        return {"name": str(len(elsewhere) - 1)}

    alt.data_transformers.register("elsewhere", keep_elsewhere)
    with alt.data_transformers.enable("elsewhere"), alt.theme.enable("none"):
        assert [charts.spec(chart) for chart in built] == alone
    assert elsewhere == {}
    assert all(spec["config"]["view"] == {"continuousWidth": 300, "continuousHeight": 300}
               for spec in alone)
    assert all(spec["datasets"] and all(spec["datasets"].values()) for spec in alone)


def test_a_png_is_its_charts_definition_without_the_zoom_of_the_page(run_dir, tmp_path,
                                                                       monkeypatch):
    """The page's zoomable charts (the snake plot, the projection) are drawn in their PNGs
    without the zoom, which in a picture only clips their marks (and costs the rasteriser
    most of their time); every other PNG is drawn from the page's very definition, and
    other parameters (the cohorts' segment menu) stay."""
    from custseg.outputs.report import _png, load_summary, render_report

    summary, table = _summary(run_dir), read_segments(run_dir)
    page = {name: charts.spec(chart) for name, build in charts.CHARTS
            if (chart := build(summary, table)) is not None}
    drawn = {}
    monkeypatch.setattr(_png.Pngs, "add",
                        lambda self, path, spec, text=None: drawn.__setitem__(path.stem, spec))
    render_report(load_summary(run_dir / "summary.json"), table, tmp_path)
    assert drawn.keys() == page.keys()
    zoomed = {name for name, d in page.items()
              if any(p.get("bind") == "scales" for p in d.get("params", []))}
    assert zoomed == {"snake_plot", "projection"}
    for name, definition in page.items():
        if name in zoomed:
            assert drawn[name] == {k: v for k, v in definition.items() if k != "params"}
        else:
            assert drawn[name] == definition
    assert charts.still(page["rfm"]) is page["rfm"]
    menu = {"name": "cohort_segment", "value": "all", "bind": {"input": "select"}}
    zoom = {"name": "zoom", "select": {"type": "interval"}, "bind": "scales"}
    assert charts.still({"mark": "rect", "params": [menu, zoom]}) == {
        "mark": "rect", "params": [menu]}  # a menu, not a zoom: kept


def test_a_page_kept_compiled_renders_as_its_source_does(run_dir, tmp_path, monkeypatch):
    """The report's page, compiled once and then read from the cache folder, renders the
    same HTML as when compiled from its source; with no cache folder to be had (its place
    is a file), it is compiled each time, and renders the same."""
    from custseg.outputs import report

    def render(cache) -> str:
        monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
        report.template.cache_clear()
        return report.rerender(run_dir).read_text(encoding="utf-8")
    try:
        first = render(tmp_path / "cache")
        kept = list((tmp_path / "cache" / "custseg" / "templates").iterdir())
        assert len(kept) == 1
        assert render(tmp_path / "cache") == first  # read compiled
        (tmp_path / "file").write_text("not a folder")
        assert render(tmp_path / "file") == first
        assert report._compiled() is None
    finally:
        report.template.cache_clear()


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
    assert ({row["algorithm"] for row in cmp["table"]}
            == {*custseg.cluster.ALGORITHMS, "stages+kmeans"})
    assert cmp["recommendation"].startswith("Recommended:")
    assert (tmp_path / "out" / "figures" / "comparison.png").exists()
    html = (tmp_path / "out" / "report.html").read_text()
    assert 'id="chart-comparison"' in _method(html)  # how segments were formed: Method


# ------------------------------------------------------------------ predicted value (CLV)
def sample_backtest(warning: str = "fewer buyers than usual"):
    """A backtest block as ``custseg backtest`` writes it (numbers made up, shapes real)."""
    from custseg.core import summary as sm

    groups = [sm.FrequencyGroup(repeat_orders=str(i) if i < 7 else "7+", customers=120 - 10 * i,
                                predicted=round(0.31 + 0.52 * i, 4),
                                actual=round(0.27 + 0.55 * i, 4)) for i in range(8)]
    return sm.Backtest(
        input="orders.parquet", split="2023-07-01", end="2023-12-31", horizon_days=184,
        customers=540, fitted=True, reason=None, predicted_orders=1234.567, actual_orders=1187,
        mae=0.91234, buyers=402, auc=0.83456, baseline_auc=0.77123, typical_gap_days=31.5,
        purchases=sm.ValueModel(name="BG/NBD", params={"r": 1.1, "alpha": 30.2, "a": 0.05,
                                                       "b": 0.4},
                                log_likelihood=-12345.6, converged=True, fit_seconds=0.05,
                                customers=540),
        by_frequency=groups, warnings=[warning])


def _summary(run_dir) -> dict:
    return json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))


def _method(html: str) -> str:
    """The report's Method section."""
    return html[html.index('<section id="method">'):html.index('<section id="data">')]


def _cell(html: str, cell_id: str) -> str:
    found = re.search(rf'id="{cell_id}">([^<]*)<', html)
    assert found, cell_id
    return found.group(1)


def test_report_shows_the_predicted_value_of_the_summary(run_dir):
    s = _summary(run_dir)
    clv, total = s["clv"], s["clv"]["total"]
    assert clv["fitted"] and total["mean_predicted_value"] is not None
    html = (run_dir / "report.html").read_text(encoding="utf-8")
    section = html[html.index('<section id="value">'):html.index('<section id="segments">')]
    method = _method(html)
    assert "<h2>Predicted value</h2>" in section
    assert clv["purchases"]["name"] in section and clv["spend"]["name"] in section
    assert f"next {clv['horizon_days']:,} days" in section
    assert f"{clv['discount_rate']:.1%} a year" in section
    assert _cell(section, "total-value") == f"{total['predicted_value']:,.2f}"
    assert _cell(section, "mean-value") == f"{total['mean_predicted_value']:,.2f}"
    assert _cell(section, "total-orders") == f"{total['expected_orders']:,.2f}"
    assert _cell(section, "at-risk") == f"{total['at_risk']:,}"
    assert _cell(section, "at-risk-value") == f"{total['at_risk_value']:,.2f}"
    # the models' parameters and their check are under Method
    assert _cell(method, "value-correlation") == f"{clv['frequency_value_correlation']:.3f}"
    for model in ("purchases", "spend"):
        for name, value in clv[model]["params"].items():
            assert f"{name} = <b>{value:.4g}</b>" in method
            assert f"{name} = <b>" not in section
    holdout = clv["holdout"]  # the check the models passed, with every candidate
    assert html_escape(holdout["verdict"]) in method
    for cand in holdout["candidates"]:
        assert html_escape(cand["name"]) in method
    assert 'id="holdout-models"' not in section
    for warning in clv["warnings"]:  # the correlation warning of these planted groups
        assert html_escape(warning) in section
    rfm = section[section.index('id="value-rfm"'):]
    rfm = rfm[:rfm.index("</table>")]
    rfm_rows = re.findall(r"<tr><td>([^<]+)</td><td class=\"n\">([^<]+)</td><td class=\"n\">"
                          r"([^<]+)</td>", rfm)
    expected = [(html_escape(r["name"]), f"{r['value']['customers']:,}",
                 f"{r['value']['predicted_value']:,.2f}")
                for r in s["rfm_segments"] if r["customers"]]
    assert rfm_rows == expected and len(expected) >= 3
    assert "backtest" not in s and 'id="backtest"' not in html


#: How the report shows a fitted parameter ("alpha = <b>4.414</b>") and the tables and
#: charts of the models' internals, all under Method.
PARAMETER = re.compile(r"\w+ = <b>")
INTERNALS = ("value-params", "holdout-models", "holdout-deciles", "quality", "stage-groups")


def test_what_to_do_first_opens_the_report_and_method_holds_the_parameters(run_dir):
    s = _summary(run_dir)
    html = (run_dir / "report.html").read_text(encoding="utf-8")
    first = html.index('<section id="first-actions">')
    assert html.index("<section", html.index("</header>")) == first  # the first section
    assert "<h2>What to do first</h2>" in html[first:first + 200]
    method = html.index('<section id="method">')
    assert first < method and not PARAMETER.search(html[:method])
    assert PARAMETER.search(_method(html))
    for element in INTERNALS:  # every table and chart of model internals, under Method
        assert f'id="{element}"' in _method(html), element
        assert html.count(f'id="{element}"') == 1, element
    for chart in ("k_selection", "dendrogram", "comparison"):  # when the run has them
        assert html.count(f'id="chart-{chart}"') == _method(html).count(f'id="chart-{chart}"')
    # one row per action, in the summary's order, with its numbers and words escaped
    section = html[first:html.index("</section>", first)]
    rows = re.findall(r'<tr class="first-action" data-kind="(\w+)"><td class="n">(\d)</td>'
                      r'<td class="segment">([^<]*) <span class="muted">#(\d+)</span></td>'
                      r'<td class="n customers">([^<]*)</td><td class="n"><b class="stake">'
                      r'([^<]*)</b><div class="muted stake-words">([^<]*)</div></td>'
                      r'<td class="action">([^<]*)</td><td><code class="audience">([^<]*)'
                      r'</code></td></tr>', section)
    actions = s["first_actions"]["actions"]
    assert 3 <= len(actions) <= 5
    assert rows == [(a["stake_kind"], str(i), html_escape(a["name"]), str(a["segment"]),
                     f"{a['customers']:,}", f"{a['stake']:,.2f}",
                     html_escape(a["stake_words"]), html_escape(a["action"]),
                     html_escape(a["audience"])) for i, a in enumerate(actions, start=1)]
    assert html_escape(s["first_actions"]["rule"]) in section
    assert "@media print" in html and "break-inside: avoid" in html


def test_what_to_do_first_escapes_its_words(run_dir, tmp_path):
    from custseg.core import summary as sm
    from custseg.outputs.report import rerender

    folder = tmp_path / "run"
    shutil.copytree(run_dir, folder)
    summary = sm.load(folder / "summary.json")
    top = summary.first_actions.actions[0]
    top.name, top.action, top.stake_words = EVIL, EVIL + " now", "the value of " + EVIL
    (folder / "summary.json").write_text(sm.encode(summary), encoding="utf-8")
    html = rerender(folder).read_text(encoding="utf-8")
    section = html[html.index('<section id="first-actions">'):html.index('id="lifecycle"')]
    assert EVIL not in html
    assert section.count(html_escape(EVIL)) == 3


def test_segment_cards_show_their_predicted_value(run_dir):
    s = _summary(run_dir)
    html = (run_dir / "report.html").read_text(encoding="utf-8")
    values = [seg["value"] for seg in s["segments"]]
    assert len(values) >= 2
    assert re.findall(r'class="predicted-value">([^<]+)<', html) == [
        f"{v['predicted_value']:,.2f}" for v in values]
    assert re.findall(r'class="mean-value">([^<]+)<', html) == [
        f"{v['mean_predicted_value']:,.2f}" for v in values]
    assert re.findall(r'class="expected-orders">([^<]+)<', html) == [
        f"{v['expected_orders']:,.2f}" for v in values]
    assert re.findall(r'class="at-risk">([^<]+)<', html) == [f"{v['at_risk']:,}"
                                                              for v in values]
    assert re.findall(r'class="at-risk-value">([^<]+)<', html) == [
        f"{v['at_risk_value']:,.2f}" for v in values if v["at_risk"]]
    assert any(v["at_risk"] for v in values)  # the lapsed group


def test_value_charts_are_in_the_report_and_in_figures(run_dir):
    html = (run_dir / "report.html").read_text(encoding="utf-8")
    for name in ("value_by_segment", "p_alive_matrix"):
        assert f'id="chart-{name}"' in html and f'id="spec-{name}"' in html
        png = run_dir / "figures" / f"{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5_000
    assert CAPTIONS["p_alive_matrix"] in html.replace("&#39;", "'")
    assert 'id="chart-calibration"' not in html  # no backtest in this run
    assert not (run_dir / "figures" / "calibration.png").exists()


def frame_of(chart) -> pd.DataFrame:
    """A chart's data (inline values) as a frame."""
    return pd.DataFrame(chart.data["values"])


def test_p_alive_matrix_is_the_fitted_model(run_dir):
    s, table = _summary(run_dir), read_segments(run_dir)
    frame = frame_of(charts.p_alive_matrix(s, table))
    T = table["tenure"].max() - 1
    x_max = int(np.ceil((table["purchase_days"] - 1).quantile(charts.P_ALIVE_QUANTILE)))
    assert frame["repeat_orders"].max() == x_max and frame["repeat_orders"].min() == 0
    assert frame["days_first_to_last"].max() == T and frame["days_first_to_last"].min() == 0
    assert (frame.loc[frame["repeat_orders"] == 0, "days_first_to_last"] == 0).all()
    purchases = s["clv"]["purchases"]
    key = {name: k for k, name in PURCHASES.items()}[purchases["name"]]
    expected = Purchases(key, purchases["params"]).p_alive(
        frame["repeat_orders"], frame["days_first_to_last"], T)
    np.testing.assert_allclose(frame["p_alive"], expected, atol=1e-4)
    assert frame["p_alive"].min() < 0.2 and frame["p_alive"].max() > 0.9
    # another model's name: that model's probabilities, not the fitted one's
    s["clv"]["purchases"] = {"name": "Pareto/NBD", "params": {
        "r": 0.55, "alpha": 74.0, "s": 0.6, "beta": 82.0}}
    other = frame_of(charts.p_alive_matrix(s, table))
    np.testing.assert_allclose(
        other["p_alive"], pnbd.p_alive(s["clv"]["purchases"]["params"], other["repeat_orders"],
                                       other["days_first_to_last"], T), atol=1e-4)
    s["clv"]["purchases"] = {"name": "gradient-boosted trees", "params": {}}
    assert charts.p_alive_matrix(s, table) is None  # a learned model says nothing of leaving
    s["clv"]["fitted"] = False
    assert charts.p_alive_matrix(s, table) is None


def test_value_by_segment_is_every_customers_spread(run_dir):
    s, table = _summary(run_dir), read_segments(run_dir)
    chart = charts.value_by_segment(s, table)
    frame = frame_of(chart).set_index("segment")
    order = [f"{seg['id']}. {seg['name']}" for seg in s["segments"]]
    assert all(layer["encoding"]["y"]["sort"] == order for layer in chart.to_dict()["layer"])
    for seg in s["segments"]:
        row = frame.loc[f"{seg['id']}. {seg['name']}"]
        clv = table.loc[table["segment"] == seg["id"], "clv"]
        assert row["customers"] == seg["size"] == len(clv)
        assert row["median"] == pytest.approx(clv.median())
        assert row["p95"] == pytest.approx(clv.quantile(0.95))
        assert row["mean"] == seg["value"]["mean_predicted_value"]
    assert charts.value_by_segment(s, table.assign(clv=np.nan)) is None


def test_a_customer_table_run_says_why_there_is_no_value(tmp_path):
    from custseg.jobs.value import NO_ORDERS
    from custseg.synth import generate

    generate(300, tmp_path / "data", seed=5)
    out = tmp_path / "out"
    run_segments(tmp_path / "data" / "customers.parquet", out_dir=out)
    s = _summary(out)
    assert s["clv"]["fitted"] is False and s["clv"]["reason"] == NO_ORDERS
    html = (out / "report.html").read_text(encoding="utf-8")
    assert _cell(html, "value-reason") == html_escape(f"No predicted value: {NO_ORDERS}.")
    assert 'id="total-value"' not in html and 'class="predicted-value"' not in html
    for name in ("value_by_segment", "p_alive_matrix", "calibration"):
        assert f'id="chart-{name}"' not in html
        assert not (out / "figures" / f"{name}.png").exists()


def test_a_backtest_shows_its_numbers_and_calibration_chart(run_dir, tmp_path):
    from custseg.core import summary as sm
    from custseg.outputs.report import rerender

    folder = tmp_path / "run"
    shutil.copytree(run_dir, folder)
    summary = sm.load(folder / "summary.json")
    summary.backtest = sample_backtest(warning=EVIL)
    (folder / "summary.json").write_text(sm.encode(summary), encoding="utf-8")
    html = rerender(folder).read_text(encoding="utf-8")
    b = summary.backtest
    section = html[html.index('<div id="backtest">'):html.index('<section id="data">')]
    assert html.index('<section id="segments">') < html.index('<div id="backtest">')
    assert _cell(section, "backtest-predicted") == f"{b.predicted_orders:,.2f}" == "1,234.57"
    assert _cell(section, "backtest-actual") == f"{b.actual_orders:,}"
    assert _cell(section, "backtest-mae") == "0.912"
    assert _cell(section, "backtest-auc") == "0.835"
    assert _cell(section, "backtest-baseline-auc") == "0.771"
    assert f"before {b.split}" in section and f"up to {b.end}" in section
    assert 'id="chart-calibration"' in section and 'id="spec-calibration"' in section
    assert html.count('id="chart-calibration"') == 1
    assert EVIL not in html and html_escape(EVIL) in section
    spec = json.loads(re.search(r'id="spec-calibration">([^<]*)</script>', html).group(1))
    points = next(iter(spec["datasets"].values()))
    assert {(p["repeat_orders"], p["orders"], p["mean"]) for p in points} == {
        *((g.repeat_orders, "predicted", g.predicted) for g in b.by_frequency),
        *((g.repeat_orders, "actual", g.actual) for g in b.by_frequency)}
    assert (folder / "figures" / "calibration.png").stat().st_size > 5_000


def test_write_backtest_chart_for_the_backtest_command(tmp_path):
    from custseg.outputs.report import write_backtest_chart

    backtest = sample_backtest().to_dict()
    path = write_backtest_chart(backtest, tmp_path / "bt")
    assert path == tmp_path / "bt" / "calibration.png"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5_000
    assert write_backtest_chart({**backtest, "by_frequency": []}, tmp_path / "a") is None
    unfitted = {**backtest, "fitted": False, "reason": "too few buyers", "predicted_orders": None,
                "by_frequency": []}
    assert write_backtest_chart(unfitted, tmp_path / "b") is None
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_a_history_of_hundreds_of_purchase_days_gives_bounded_charts(tmp_path):
    """Households shopping most days of a year (a loyalty panel's rhythm): every chart
    within Altair's row limit, the P(alive) matrix in bands of repeat purchases."""
    import datetime as dt

    rng = np.random.default_rng(3)
    start = dt.date(2022, 1, 1)
    rows = []
    for h in range(300):  # a household shops most days until it moves away
        first, last = rng.integers(0, 200), rng.integers(250, 1200)
        days = np.arange(first, min(last, 730))
        rows += [(f"H{h:04d}", start + dt.timedelta(days=int(d)), float(rng.integers(5, 80)))
                 for d in days[rng.random(len(days)) < rng.uniform(0.2, 0.9)]]
    lines = pd.DataFrame(rows, columns=["customer_id", "invoice_date", "amount"])
    result = custseg.run_rfm(frame=lines, out_dir=tmp_path / "out")
    assert (tmp_path / "out" / "report.html").exists()
    table = read_segments(tmp_path / "out")
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert result.summary.clv.fitted and (table["purchase_days"] > 200).any()
    matrix = charts.p_alive_matrix(summary, table)
    assert frame_of(matrix)["repeat_orders"].nunique() <= charts.P_ALIVE_ROWS
    assert "bands of" in json.dumps(matrix.to_dict()["title"])
    for _, build in charts.CHARTS:
        chart = build(summary, table)
        if chart is not None:  # within Altair's limit for a chart's data frame
            assert max(map(len, charts.spec(chart)["datasets"].values())) <= 5_000


def test_one_customer_gets_a_whole_rfm_report_and_run_says_what_clustering_needs(tmp_path):
    lines = pd.DataFrame({"customer_id": ["A"] * 5, "amount": [10.0, 20.0, 30.0, 40.0, 50.0],
                          "invoice_date": pd.to_datetime(["2023-01-01", "2023-02-01",
                                                          "2023-03-05", "2023-05-01",
                                                          "2023-06-01"])})
    result = custseg.run_rfm(frame=lines, out_dir=tmp_path / "rfm")
    assert result.summary.customers == 1 and (tmp_path / "rfm" / "report.html").exists()
    assert not result.summary.clv.fitted and "only 1 customers" in result.summary.clv.reason
    assert read_segments(tmp_path / "rfm")["monetary"].tolist() == [150.0]
    with pytest.raises(custseg.DataError, match="Only 1 customer.*at least 3"):
        custseg.run_segments(frame=lines, out_dir=tmp_path / "run")


def test_a_single_day_of_orders_gives_whole_reports_without_untested_predictions(tmp_path):
    lines = pd.DataFrame({"customer_id": [f"C{i % 100}" for i in range(300)],
                          "invoice_date": pd.Timestamp("2023-03-01"),
                          "product_id": [f"P{i % 7}" for i in range(300)],
                          "quantity": [1 + i % 3 for i in range(300)],
                          "unit_price": [float(i % 17 + 1) for i in range(300)]})
    for job in (custseg.run_rfm, custseg.run_segments):
        out = tmp_path / job.__name__
        result = job(frame=lines, out_dir=out)
        assert (out / "report.html").exists() and len(read_segments(out)) == 100
        clv = result.summary.clv
        assert not clv.fitted and "only 0 customers bought more than once" in clv.reason
        assert read_segments(out)["churn_risk"].isna().all()
