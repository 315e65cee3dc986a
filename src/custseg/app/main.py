"""custseg dashboard (run by ``custseg app``): every step of custseg in the browser.

Uploads are saved in a private folder of this session (the upload area); nothing else on
disk is read. Results are cached per input and settings, so switching views does not
recompute; plots sample big inputs, assignments never do.
"""

from __future__ import annotations

import hashlib
import secrets
import tempfile
import warnings
from pathlib import Path

import pandas as pd
import streamlit as st

import custseg
from custseg.app import inside_upload_area
from custseg.cluster import ALGORITHMS
from custseg.cluster._prepare import TRANSACTION_FEATURES
from custseg.core.exceptions import CustsegError, CustsegWarning
from custseg.core.money import money
from custseg.io import FIELDS
from custseg.jobs.campaign import MANIFEST_SUFFIX
from custseg.jobs.export import FORMATS, audience_bytes, audience_table, campaign_zip
from custseg.outputs.report import CAPTIONS
from custseg.outputs.report.charts import cohorts as cohort_chart
from custseg.profile.priorities import slug

st.set_page_config(page_title="custseg: customer segments", layout="wide")
UPLOADS = Path(tempfile.gettempdir()) / "custseg-uploads"
HOLDOUT = custseg.Config().campaign.holdout  # the audience downloads' control share
ANY = "(detect)"
NONE = "(none)"


def upload_area() -> Path:
    """This session's upload folder."""
    if "upload_dir" not in st.session_state:
        UPLOADS.mkdir(parents=True, exist_ok=True)
        st.session_state.upload_dir = tempfile.mkdtemp(dir=UPLOADS)
    return Path(st.session_state.upload_dir)


def save_upload(upload) -> Path:
    """Write an upload into the upload area under a safe name; never outside it."""
    area = upload_area().resolve()
    name = Path(upload.name).name or "upload"
    target = inside_upload_area(area / name, area)
    if target.parent != area:
        raise CustsegError(f"Refused file name {upload.name!r}: it points outside the upload "
                           "area.")
    data = upload.getvalue()
    target.write_bytes(data)
    return target


@st.cache_data(show_spinner=False)
def sample_data() -> str:
    from custseg.synth import generate

    folder = upload_area() / "sample"
    if not (folder / "transactions.parquet").exists():
        generate(3000, folder, seed=42)
    return str(folder / "transactions.parquet")


@st.cache_data(show_spinner=False)
def inspect(path: str, sheet: str | None) -> dict:
    """The columns of an upload and the roles custseg reads from a sample of it."""
    from custseg.io import peek
    from custseg.io._reading import reading_of

    config = custseg.Config(sheet=sheet)
    look = peek(path, config)
    reading = reading_of(look, config)
    return {"columns": look.columns, "rows": look.rows or look.approx_rows,
            "format": look.format, "mapping": reading.mapping}


@st.cache_data(show_spinner=False, max_entries=8)
def segment(path: str, digest: str, settings: dict) -> dict:
    """Run custseg (cached by input digest and settings); the outputs' contents."""
    out = Path(tempfile.mkdtemp(dir=upload_area())) / "run"
    config = custseg.Config(mapping=settings["mapping"], as_of=settings["as_of"],
                            sheet=settings["sheet"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CustsegWarning)
        if settings["mode"] == "RFM only":
            result = custseg.run_rfm(path, out_dir=out, config=config)
        else:
            result = custseg.run_segments(
                path, out_dir=out, config=config, algorithm=settings["algorithm"],
                k=settings["k"], features=settings["features"] or None,
                compare=settings["compare"])
    files = {name: (out / name).read_bytes() for name in
             ("segments.csv", "summary.json", "report.html", "model.json")
             if (out / name).exists()}
    return {"summary": result.summary, "segments": result.customers, "files": files}


def value_lines(value, horizon: int, currency: str | None = None) -> str:
    """A group's predicted value as markdown lines (numbers only, from the summary)."""
    with_value = value.mean_predicted_value is not None  # None: no spend model, no value
    lines = [f"**Predicted value** over {horizon:,} days: "
             f"{money(value.predicted_value, currency, cents=True)} "
             f"({money(value.mean_predicted_value, currency, cents=True)} per customer)"
             if with_value else
             "**Predicted value**: not available (no trusted spend model; see Audit)",
             f"**Expected orders**: {value.expected_orders:,.2f}"]
    risk = f"**At risk**: {value.at_risk:,} of {value.customers:,} customers"
    if with_value and value.at_risk:
        risk += f" with {money(value.at_risk_value, currency, cents=True)} of predicted value"
    lines.append(risk)
    return "  \n".join(lines)


def bought_text(over) -> str:
    """What a segment buys more often than all customers, as plain text (never markdown:
    descriptions come from the data)."""
    lines = []
    for kind, items in over.items():
        listed = ", ".join(f"{i.item} {i.lift:.1f}x ({i.buyers:,})" for i in items)
        lines.append(f"{kind}: {listed or 'none stands out'}")
    return "\n".join(lines)


def segment_card(title: str, numbers: str, group, horizon: int | None,
                 currency: str | None = None) -> None:
    """One segment's card: its numbers, predicted value, what it buys and its actions."""
    st.markdown(f"#### {title}")
    st.text(numbers)
    if group.get("value") is not None:
        st.markdown(value_lines(group.value, horizon, currency))
    if group.get("over_represented"):
        st.markdown("**Bought more often than by all customers** (lift, buyers)")
        st.text(bought_text(group.over_represented))


def rfm_table(rows) -> pd.DataFrame:
    """The RFM segments, their predicted value (when there is one) as columns."""
    flat = []
    for row in rows:
        data = row.to_dict()
        value = data.pop("value", None) or {}
        flat.append({**data, **{k: v for k, v in value.items() if k != "customers"}})
    return pd.DataFrame(flat)


def first_actions_view(summary, table: pd.DataFrame, currency: str | None = None) -> None:
    """What to do first: each action with its stake, and its segment's audience to
    download (data-derived words as plain text, never as markdown)."""
    first = summary.get("first_actions")
    if first is None:
        return
    st.markdown("### What to do first")
    if not first.actions:
        st.text("No segment has money at stake by the rule below.")
    for i, a in enumerate(first.actions, start=1):
        with st.container(border=True):
            words, button = st.columns([3, 1])
            which = f" (#{a.segment})" if isinstance(a.segment, int) else ""
            words.text(f"{i}. {a.name}{which}: {a.customers:,} customers\n"
                       f"At stake: {money(a.stake, currency, cents=True)}, {a.stake_words}\n"
                       f"Action: {a.action}")
            data, split = campaign_zip(table, [str(a.segment)], campaign_config(),
                                       summary=summary, stem=slug(a.name))
            button.download_button(f"Audience file ({split.target:,} + {split.control:,})",
                                   data, file_name=f"{slug(a.name)}.zip",
                                   mime="application/zip", key=f"first-action-{i}",
                                   help=f"A zip of the {split.target:,} customers to send the "
                                        f"action to, the {split.control:,} held out to "
                                        "measure it against, and the manifest that "
                                        "custseg measure (or the Campaign tab) reads.")
    st.caption(first.rule)
    if first.actions:
        st.caption(f"Each download holds back {HOLDOUT:.0%} of its segment at random as a "
                   "control group: send the action to the target file only, then measure "
                   "it in the Campaign tab with the orders that came after.")


def campaign_config(holdout: float | None = None) -> custseg.Config:
    """Control groups as the dashboard draws them: one seed per session (the same groups
    on every redraw), written in each manifest."""
    if "campaign_seed" not in st.session_state:
        st.session_state.campaign_seed = secrets.randbelow(2**31)
    return custseg.Config().overridden({
        "campaign.holdout": HOLDOUT if holdout is None else holdout,
        "campaign.seed": st.session_state.campaign_seed})


def measure_view(table: pd.DataFrame, currency: str | None) -> None:
    """The Campaign tab: a downloaded audience zip and the orders after it, measured."""
    st.markdown("**Measure a campaign**: the audience zip downloaded from this run (or its "
                "manifest, target and control files) and the order lines that came after "
                "the campaign. Each segment's target group is set against its control group.")
    groups = st.file_uploader("Audience zip, or its three files", accept_multiple_files=True,
                              type=["zip", "json", "csv", "parquet"], key="measure-groups")
    later = st.file_uploader("Order lines after the campaign", key="measure-orders")
    if groups and later and st.button("Measure the campaign", key="measure"):
        try:
            st.session_state.measured = measured(groups, later, table)
        except CustsegError as exc:
            st.session_state.measured = None
            st.error(str(exc))
    result = st.session_state.get("measured")
    if result is None:
        return
    from custseg.outputs.report.measure import render_measure

    for warning in result.warnings:
        (st.error if warning.startswith("SAMPLE RATIO") else st.warning)(warning)
    st.text(f"All segments: {result.total.verdict}")
    st.dataframe(pd.DataFrame([{
        "segment": r.name, "target": r.target, "control": r.control,
        "bought (target)": f"{r.buying.target:.1%}" if r.buying else "n/a",
        "bought (control)": f"{r.buying.control:.1%}" if r.buying else "n/a",
        "uplift, points (95%)": (f"{r.buying.uplift * 100:+.1f} ({r.buying.interval[0] * 100:+.1f}"
                                 f" to {r.buying.interval[1] * 100:+.1f})" if r.buying else "n/a"),
        "p (Holm)": r.buying.p_adjusted if r.buying else None,
        "significant": r.significant,
        "incremental revenue": money(r.incremental_revenue, currency, cents=True)}
        for r in result.segments]), hide_index=True)
    st.text("\n".join(f"{r.name}: {r.verdict}" for r in result.segments))
    st.download_button("Download the measurement (measure.html)", render_measure(result),
                       file_name="measure.html", mime="text/html")


def measured(groups, later, table: pd.DataFrame):
    """The measurement of uploaded groups (a zip, or the three files) and later orders."""
    from custseg.jobs.campaign import measure_campaign

    folder = Path(tempfile.mkdtemp(dir=upload_area()))
    for upload in groups:
        if Path(upload.name).suffix.lower() == ".zip":
            unpack(upload, folder)
        else:
            (folder / Path(upload.name).name).write_bytes(upload.getvalue())
    manifests = sorted(folder.glob(f"*{MANIFEST_SUFFIX}"))
    if len(manifests) != 1:
        raise CustsegError("Give one audience: its zip, or its manifest (.manifest.json) "
                           "with its target and control files.")
    orders = save_upload(later)
    with st.spinner("Reading the later orders and testing each segment..."):
        return measure_campaign(manifests[0], str(orders), config=custseg.Config(),
                                run_table=table)


def unpack(upload, folder: Path) -> None:
    """The files of an audience zip, by their names only (no folders, nothing else)."""
    import zipfile

    try:
        with zipfile.ZipFile(upload) as archive:
            for member in archive.infolist():
                name = Path(member.filename).name
                if member.is_dir() or name != member.filename or name.startswith("."):
                    continue
                if name.endswith((MANIFEST_SUFFIX, ".csv", ".parquet")):
                    (folder / name).write_bytes(archive.read(member))
    except zipfile.BadZipFile:
        raise CustsegError(f"{upload.name} is not a zip file.") from None


def digest_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# ----------------------------------------------------------------------------- page
st.title("Customer segments")
st.caption("Upload your order lines (or a customer table), check the columns, press "
           "Run segmentation.")

with st.sidebar:
    st.header("1. Data")
    upload = st.file_uploader("Order lines or customer table", type=["csv", "tsv", "txt",
                              "xlsx", "parquet"], help="CSV/TSV, Excel or Parquet.")
    use_sample = st.checkbox("Use the built-in sample data (when nothing is uploaded)",
                             value=False)
    sheet = st.text_input("Excel sheet (optional)", value="") or None

path: Path | None = None
try:
    if upload is not None:  # an upload always wins over the sample
        path = save_upload(upload)
    elif use_sample:
        path = Path(sample_data())
except CustsegError as exc:
    st.error(str(exc))

if path is None:
    st.info("Choose a file in the sidebar, or tick 'Use the built-in sample data'.")
    st.stop()

try:
    path = inside_upload_area(path, upload_area())
    info = inspect(str(path), sheet)
except CustsegError as exc:
    st.error(str(exc))
    st.stop()

st.subheader("2. Columns")
st.write(f"**{path.name}**: {info['format']}, {info['rows'] or 0:,} rows, "
         f"{len(info['columns'])} columns.")
mapping: dict[str, str] = {}
cols = st.columns(3)
for i, field in enumerate(FIELDS):
    detected = info["mapping"].get(field)
    options = [ANY, NONE, *info["columns"]]
    label = f"{field}" + (f" (found: {detected})" if detected else "")
    choice = cols[i % 3].selectbox(label, options, index=0, key=f"map-{field}")
    if choice not in (ANY, NONE):
        mapping[field] = choice

st.subheader("3. Settings")
c1, c2, c3, c4 = st.columns(4)
mode = c1.radio("Segments", ["Clustering", "RFM only"], index=0)
algorithm = c2.selectbox("Algorithm", list(ALGORITHMS), index=0,
                         disabled=mode == "RFM only")
auto = c3.checkbox("Choose k automatically", value=True, disabled=mode == "RFM only")
k = "auto" if auto else c3.slider("Number of segments (k)", 2, 12, 5)
as_of = c4.text_input("As-of date (YYYY-MM-DD, optional)", value="") or None
transactional = {"customer_id", "invoice_date"} <= set(info["mapping"]) or bool(mapping)
candidates = (list(TRANSACTION_FEATURES) if transactional
              else [c for c in info["columns"] if c != info["mapping"].get("customer_id")])
features = st.multiselect("Features (optional; default: chosen for you)", candidates,
                          default=[], disabled=mode == "RFM only")
compare = st.checkbox("Also compare every algorithm (slower)", value=False,
                      disabled=mode == "RFM only")

settings = {"mapping": mapping, "as_of": as_of, "sheet": sheet, "mode": mode,
            "algorithm": algorithm, "k": k, "features": features, "compare": compare}

if st.button("Run segmentation", type="primary"):
    st.session_state.run = {"path": str(path), "digest": digest_of(path), "settings": settings}

run = st.session_state.get("run")
if not run:
    st.stop()

try:
    with st.status("Segmenting...", expanded=False) as status:
        st.write("Reading, cleaning, computing features, clustering, profiling...")
        result = segment(str(inside_upload_area(run["path"], upload_area())), run["digest"],
                         run["settings"])
        status.update(label="Done", state="complete")
except CustsegError as exc:
    st.error(str(exc))
    st.stop()
except Exception as exc:  # never a stack trace in the page
    st.error(f"Unexpected error: {type(exc).__name__}: {exc}")
    st.stop()

summary, table, files = result["summary"], result["segments"], result["files"]
st.subheader("4. Results")
audit = summary.audit
st.write(f"**{summary.customers:,} customers** from {audit.rows_in:,} rows "
         f"({audit.rows_used:,} used).")
first_actions_view(summary, table, summary.currency.code if summary.get("currency") else None)

d1, d2, d3 = st.columns(3)
d1.download_button("Download segments CSV", files["segments.csv"], file_name="segments.csv",
                   mime="text/csv")
if "report.html" in files:
    d2.download_button("Download the HTML report", files["report.html"],
                       file_name="report.html", mime="text/html")
if "model.json" in files:
    d3.download_button("Download the model (model.json)", files["model.json"],
                       file_name="model.json", mime="application/json",
                       help="Scores new customers into these segments: "
                            "custseg score model.json new_orders.csv --out scored.csv")

clv = summary.get("clv")
currency = summary.currency.code if summary.get("currency") else None
if clv is not None and clv.fitted and clv.total is not None:
    total = clv.total
    m1, m2, m3 = st.columns(3)
    with_value = total.mean_predicted_value is not None  # None: no trusted spend model
    m1.metric(f"Predicted value, next {clv.horizon_days:,} days",
              money(total.predicted_value, currency, cents=True) if with_value else "n/a",
              help=(f"{clv.purchases.name} and {clv.spend.name if clv.spend else 'no spend model'}"
                    f", discounted at "
                    f"{clv.discount_rate:.0%} a year; "
                    f"{money(total.mean_predicted_value, currency, cents=True)} per "
                    "customer" if with_value else "No trusted spend model: see Audit."))
    m2.metric("Expected orders", f"{total.expected_orders:,.2f}")
    overdue = ("" if clv.get("overdue_risk") is None else
               f", or overdue by three of their gaps at {clv.overdue_risk:.0%}")
    m3.metric(f"Customers at risk (churn risk {clv.churn_threshold:.0%} or more{overdue})",
              f"{total.at_risk:,}",
              help=f"{money(total.at_risk_value, currency, cents=True)} of predicted value"
              if with_value else None)
elif clv is not None and not clv.fitted:
    st.info(f"No predicted value: {clv.reason}.")
if clv is not None and clv.get("holdout") is not None:
    st.caption(f"How well this would have predicted the last {clv.holdout.days:,} days: "
               f"{clv.holdout.verdict}")

life = summary.get("lifecycle")
if life is not None and life.stages:
    st.markdown("**Where customers stand**, each by his own rhythm of orders (every "
                "customer's stage and its reason are in segments.csv)")
    st.dataframe(pd.DataFrame([{
        "stage": r.stage, "customers": r.customers, "share": f"{r.share:.0%}",
        "share of revenue": "n/a" if r.revenue_share is None else f"{r.revenue_share:.0%}",
        "median days since the last order": r.median_recency,
        "median typical gap (days)": r.median_gap_days} for r in life.stages]),
        hide_index=True)
    if not life.at_risk_by:
        st.caption("No churn model passed its check: overdue customers are cooling, none "
                   "is called at risk.")

horizon = clv.horizon_days if clv is not None else None
tabs = st.tabs(["Segments", "Charts", "Customers", "Campaign", "RFM", "Cohorts", "Comparison",
                "Audit"])
with tabs[0]:
    groups = summary.get("segments")
    if groups:
        cards = st.columns(3)
        for i, seg in enumerate(groups):
            with cards[i % 3].container(border=True):
                segment_card(seg.name, seg.description, seg, horizon, currency)
                stages = seg.profile.get("stages")
                if stages:
                    st.text("Stages: " + ", ".join(f"{k} {v:.0%}" for k, v in stages.items()))
                if seg.get("action_fit") is not None:
                    st.text(f"Its first action is for {' or '.join(seg.action_for)} "
                            f"customers: it fits {seg.action_fit:.0%} of the segment.")
                if seg.get("action_warning"):
                    st.warning(f"This segment {seg.action_warning}.")
                rule = seg.rule
                if rule:  # data-derived words as plain text, never as markdown
                    st.markdown("**Rule** (to rebuild it in an e-mail or CRM tool)")
                    st.text(f"{rule.text}\n{rule.recall:.1%} of this segment, "
                            f"{rule.others:.1%} of the others (precision "
                            f"{rule.precision:.1%})")
                if seg.demographics:
                    st.markdown("**Differs from the others in**")
                    st.text("\n".join(d["text"] for d in seg.demographics))
                st.markdown("\n".join(f"- {a}" for a in seg.actions))
    else:
        st.caption("Named RFM segments: each customer scored 1-5 on recency, frequency and "
                   "monetary value against the others.")
        cards = st.columns(3)
        for i, seg in enumerate(s for s in summary.rfm_segments if s.customers):
            with cards[i % 3].container(border=True):
                segment_card(seg.name, (
                    f"{seg.customers:,} customers ({seg.share:.1%}), {seg.revenue_share:.1%} "
                    f"of revenue\n{seg.mean_recency:,.0f} days since the last order, "
                    f"{seg.mean_frequency:,.1f} orders, "
                    f"{money(seg.mean_monetary, currency, cents=True)} spent (means)"), seg,
                    horizon, currency)
                st.text("\n".join(f"- {a}" for a in seg.actions))
with tabs[1]:
    if "report.html" in files:  # the report itself: the same interactive charts
        st.iframe(files["report.html"].decode("utf-8"), height=1400)
    else:
        st.info("No report was written for this run.")
with tabs[2]:
    label = "segment_name" if "segment_name" in table else "rfm_segment"
    chosen = st.selectbox("Segment", ["(all)", *sorted(table[label].astype(str).unique())])
    roles = summary.get("roles")
    personal = roles.get("personal_key") if roles else None
    view = table if chosen == "(all)" else table[table[label].astype(str) == chosen]
    if personal:  # e-mail addresses or names: personal data, not shown here
        st.caption(f"The customer ids are {personal}, personal data: not shown here. "
                   "segments.csv and the audience export below carry them.")
        view = view.drop(columns="customer_id")
    else:
        query = st.text_input("Search customer id", value="")
        if query:
            view = view[view["customer_id"].astype(str).str.contains(query, regex=False)]
    st.dataframe(view.head(10_000), hide_index=True)
    st.caption(f"{len(view):,} customers" + (" (first 10,000 shown)" if len(view) > 10_000
                                              else ""))
    st.markdown("**Audience export**: the customers of chosen segments, for an e-mail or "
                "ads tool (as `custseg export`; contact columns only on the command line)")
    e1, e2, e3 = st.columns([3, 1, 1])
    picked = e1.multiselect("Segments to export", sorted(table[label].astype(str).unique()),
                            key="export-segments")
    fmt = e2.radio("Format", list(FORMATS), horizontal=True, key="export-format")
    held = e3.number_input("Control group (%)", 0, 50, int(HOLDOUT * 100), key="export-holdout",
                           help="Held out at random from each segment, to measure the "
                                "campaign against (0: none).")
    if picked and held:
        data, split = campaign_zip(table, picked, campaign_config(held / 100),
                                   summary=summary, fmt=fmt)
        st.download_button(f"Download {split.target:,} target and {split.control:,} control "
                           "customers (zip)", data, file_name="audience.zip",
                           mime="application/zip")
        st.caption(f"Seed {split.seed}; per segment, the smallest uplift in buyers the split "
                   "can detect (80% power): " + ", ".join(
                       f"{p.name} {p.min_detectable_uplift * 100:.1f} points"
                       if p.min_detectable_uplift is not None else f"{p.name} too small"
                       for p in split.segments))
        for warning in split.warnings:
            st.warning(warning)
    elif picked:
        audience, _ = audience_table(table, picked, where="this run")
        st.download_button(f"Download {len(audience):,} customers ({fmt})",
                           audience_bytes(audience, fmt), file_name=f"audience.{fmt}",
                           mime="text/csv" if fmt == "csv" else "application/octet-stream")
with tabs[3]:
    measure_view(table, currency)
with tabs[4]:
    if "r_score" in table:
        grid = table.pivot_table(index="f_score", columns="r_score", values="customer_id",
                                 aggfunc="count", fill_value=0).sort_index(ascending=False)
        st.write("Customers by frequency score (rows, 5 = most orders) and recency score "
                 "(columns, 5 = most recent):")
        st.dataframe(grid)
        named = pd.DataFrame([s.to_dict() for s in summary.rfm_segments]).set_index(
            "name")["customers"]
        st.bar_chart(named[named > 0])
        if any("value" in row for row in summary.rfm_segments):
            st.write("Predicted value per RFM segment:")
            st.dataframe(rfm_table(summary.rfm_segments), hide_index=True)
    else:
        st.info("No RFM: the input is a customer table.")
with tabs[5]:
    chart = cohort_chart(summary.to_dict(), table)
    if chart is not None:  # the report's chart (one definition)
        st.altair_chart(chart, width=chart.width + 200, height=chart.height + 120, theme=None)
        st.caption(CAPTIONS["cohorts"])
    else:
        st.info("No cohorts: they come from order lines.")
with tabs[6]:
    if summary.get("comparison"):
        st.write(summary.comparison.recommendation)
        st.dataframe(pd.DataFrame([row.to_dict() for row in summary.comparison.table]),
                     hide_index=True)
    else:
        st.info("Tick 'Also compare every algorithm' and run again to see the comparison.")
with tabs[7]:
    st.dataframe(pd.DataFrame([{"reason": k, "rows": v} for k, v in audit.dropped.items()]),
                 hide_index=True)
    for w in audit.warnings:
        st.warning(w)
