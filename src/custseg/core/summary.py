"""The typed summary of a run, as written to ``summary.json`` and read back.

One type per kind of run, its fields in the order they appear in the file:
:class:`RfmSummary` (``custseg rfm``), :class:`RunSummary` (``custseg run`` on order lines),
:class:`TableSummary` (a customer table read alone, before clustering) and
:class:`TableRunSummary` (``custseg run`` on a customer table alone). Optional parts
default to ``UNSET`` and are then absent from the file. Every part also reads like the
dict the file holds (``s["audit"]["rows_in"]``, ``s.get("segments")``, ``"rule" in seg``).

:func:`encode` writes the file, :func:`load` reads it back (one :class:`InputError` line
naming the file and the bad field), :func:`schema` is its published JSON Schema
(``schemas/summary.schema.json``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import msgspec
from msgspec import UNSET, UnsetType

from custseg.core.exceptions import InputError


class Block(msgspec.Struct, omit_defaults=True):
    """A part of the summary; also readable as the dict ``summary.json`` holds."""

    def _value(self, key: object) -> Any:
        return getattr(self, key) if key in self.__struct_fields__ else UNSET

    def __getitem__(self, key: str) -> Any:
        value = self._value(key)
        if value is UNSET:
            raise KeyError(key)
        return value

    def __contains__(self, key: object) -> bool:
        return self._value(key) is not UNSET

    def get(self, key: str, default: Any = None) -> Any:
        value = self._value(key)
        return default if value is UNSET else value

    def keys(self) -> list[str]:
        """The keys ``summary.json`` holds for this part (set fields, in order)."""
        return [k for k in self.__struct_fields__ if getattr(self, k) is not UNSET]

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    def __len__(self) -> int:
        return len(self.keys())

    def items(self) -> list[tuple[str, Any]]:
        return [(k, getattr(self, k)) for k in self.keys()]

    def values(self) -> list[Any]:
        return [getattr(self, k) for k in self.keys()]

    def to_dict(self) -> dict[str, Any]:
        """The plain JSON data of this part (what ``summary.json`` holds)."""
        return msgspec.to_builtins(self, enc_hook=_plain)


Mapping.register(Block)  # read like the dict it is written as (pandas, ``set(part)``)


def _plain(value: Any) -> Any:
    """What ``json.dumps(default=str)`` made of values JSON has no type for (float
    subclasses such as numpy's stay numbers)."""
    return float(value) if isinstance(value, float) else str(value)


class Input(Block, kw_only=True):
    """The input read: its path, rows (with rejected ones) and format details."""

    path: str
    rows: int
    format: str
    encoding: str | UnsetType = UNSET
    delimiter: str | UnsetType = UNSET
    header: bool | UnsetType = UNSET
    sheet: str | UnsetType = UNSET
    #: Several tables joined into order lines: the root table, the joins made (with the
    #: share of rows that matched) and the person key, if any.
    tables: dict[str, Any] | UnsetType = UNSET


class RoleChoice(Block, kw_only=True):
    """The column read as one field, how sure (0..1) and why, in words."""

    column: str
    confidence: float
    reason: str
    runner_up: str | UnsetType = UNSET  # the next best column and its score


class Roles(Block, kw_only=True):
    """How the input's columns were read: the export format recognised by its header
    (or null), each field's column with its evidence, how a line's value is computed, the
    customer and line attributes, and whether the customer key is personal data."""

    format: str | None
    fields: dict[str, RoleChoice]
    value: str
    customer_attributes: list[str]
    line_attributes: list[str]
    personal_key: str | UnsetType = UNSET
    order_level: list[str] | UnsetType = UNSET
    notes: list[str] | UnsetType = UNSET


class Audit(Block, kw_only=True):
    """What happened to every input row."""

    rows_in: int
    rows_used: int
    dropped: dict[str, int]
    warnings: list[str]
    notes: dict[str, str]


class SegmentValue(Block, kw_only=True):
    """Predicted value of a group of customers over the horizon (see :class:`Clv`)."""

    customers: int
    valued: int  # customers with a predicted value (see Clv.warnings when fewer)
    predicted_value: float  # over the valued customers
    mean_predicted_value: float | None
    expected_orders: float
    at_risk: int  # customers with churn risk at or above the threshold
    at_risk_value: float  # their predicted value
    value_interval: list[float] | None = None  # 10-90% of predicted_value (bootstrap)
    orders_interval: list[float] | None = None  # 10-90% of expected_orders (bootstrap)


class FrequencyGroup(Block, kw_only=True):
    """Customers of one calibration frequency (repeat orders; the last group: that many or
    more): mean predicted and actual orders in the holdout."""

    repeat_orders: str
    customers: int
    predicted: float | None
    actual: float


class Backtest(Block, kw_only=True):
    """The value models fitted on the lines before ``split`` and checked on those after
    (``backtest.json``; the predictions are null, with the reason, when there is no model).
    """

    input: str
    split: str
    end: str  # the last day of the holdout (the data's last)
    horizon_days: int
    customers: int  # customers with an order before the split
    fitted: bool
    reason: str | None
    predicted_orders: float | None  # total repeat orders predicted for the holdout
    actual_orders: int
    mae: float | None  # mean absolute error of each customer's orders
    buyers: int  # customers who bought again in the holdout
    auc: float | None  # of expected_orders for "buys again"
    baseline_auc: float | None  # of frequency / tenure
    typical_gap_days: float | None
    purchases: ValueModel | None
    by_frequency: list[FrequencyGroup]
    warnings: list[str]


class Item(Block, kw_only=True):
    """A product, category or country a segment buys more often than all customers do."""

    item: str  # what the report shows: a product's description, else its id; a name
    id: str | UnsetType = UNSET  # the product's id, when ``item`` is its description
    buyers: int  # the segment's customers who bought it
    support: float  # their share of the segment's customers
    lift: float  # support over the share of all customers who bought it
    revenue: float  # what the segment's customers spent on it


class RfmSegment(Block, kw_only=True):
    """One named RFM segment (means are null when it is empty)."""

    name: str
    customers: int
    share: float
    revenue_share: float
    mean_recency: float | None
    mean_frequency: float | None
    mean_monetary: float | None
    value: SegmentValue | UnsetType = UNSET
    actions: list[str] | UnsetType = UNSET
    over_represented: dict[str, list[Item]] | UnsetType = UNSET


class Lift(Block, kw_only=True):
    """When an item is listed as over-represented in a segment (``over_represented``)."""

    min_support: float
    min_buyers: int
    min_lift: float
    columns: dict[str, str]  # kind -> the column it comes from (products: by description)


class CohortRow(Block, kw_only=True):
    """Customers of one monthly cohort (month of their first purchase) buying again
    ``months_since`` months later; per segment with ``segment``."""

    segment: str | UnsetType = UNSET
    cohort: str  # YYYY-MM
    months_since: int
    customers: int
    share: float  # of the cohort's customers (of the segment)


class Cohorts(Block, kw_only=True):
    """Cohort retention: monthly cohorts of first purchase x months since."""

    by_segment: bool
    cohorts: int  # cohorts shown (the latest)
    left_out: int  # older cohorts not shown
    partial_month: str | None  # the last month, when the data ends before its end
    rows: list[CohortRow]


class ValueModel(Block, kw_only=True):
    """One fitted value model: its parameters (time in days) and how the fit went."""

    name: str
    params: dict[str, float]
    log_likelihood: float | None  # null: not a likelihood model (the boosted trees)
    converged: bool
    fit_seconds: float
    customers: int  # the customers it was fitted on


class ModelCheck(Block, kw_only=True):
    """One value model as checked on the holdout (see :class:`Holdout`)."""

    role: str  # "purchases" or "spend"
    name: str
    chosen: bool
    params: dict[str, float] | None  # null: the fit failed (see problems)
    problems: list[str]  # why it may not be shown (a degenerate fit); empty: none
    auc: float | None = None  # purchases: of P(a purchase in the holdout), for buying again
    predicted_orders: float | None = None  # purchases: in the holdout, in total
    mse: float | None = None  # purchases: mean squared error of each customer's purchases
    value_error: float | None = None  # spend: mean absolute error per purchase, relative


class Decile(Block, kw_only=True):
    """Customers of one decile of predicted purchases (1: the most) in the holdout."""

    decile: int
    customers: int
    predicted_orders: float
    actual_orders: float
    buyers: int
    predicted_revenue: float | None
    actual_revenue: float


class Holdout(Block, kw_only=True):
    """How well the value models would have predicted the last ``days`` days: fitted on the
    customers as at ``split``, compared with what they did up to the as-of date."""

    split: str | None
    days: int | None
    customers: int
    buyers: int  # customers who bought in the held-out days
    actual_orders: float
    actual_revenue: float
    predicted_orders: float | None  # by the chosen models
    predicted_revenue: float | None
    baseline_auc: float | None  # recency and frequency ranks
    baseline_orders: float | None  # each customer's past rate carried forward
    typical_gap_days: float | None
    candidates: list[ModelCheck]
    deciles: list[Decile]
    verdict: str  # in words: which model won and by how much, or why none is shown
    reason: str | None  # why no prediction is shown; null: the chosen models are
    # the held-out days' seasonal index against the chosen model's (1: as flat a share of
    # their year as it assumes; null: no whole earlier year), the predicted purchases with
    # it applied, and whether the cycle is clear enough to apply to the predictions
    seasonal_index: float | None = None
    seasonal_orders: float | None = None
    season_applied: bool = False
    # checked on a random sample of ``customers`` of this many (null: on all of them)
    sample_of: int | None = None


class Clv(Block, kw_only=True):
    """Predicted customer value: the models, their settings, and the totals (the models
    are null, with the reason, when they could not be trusted)."""

    fitted: bool
    reason: str | None
    purchases: ValueModel | None
    spend: ValueModel | None
    frequency_value_correlation: float | None
    repeat_buyers: int
    customers: int
    horizon_days: int
    discount_rate: float
    churn_threshold: float
    time_unit: str
    columns: dict[str, str]
    total: SegmentValue | None
    warnings: list[str]
    holdout: Holdout | None = None  # the check the predictions passed (or failed)
    season_factor: float | None = None  # applied to expected orders and CLV (null: none)
    # from this churn risk on, a customer silent for three of his own typical gaps between
    # purchases is at risk too (the average customer's risk; null: no such rule)
    overdue_risk: float | None = None


class ClusterFeatures(Block, kw_only=True):
    """The features clustered on, how they were prepared, and what was clustered on."""

    used: list[str]
    notes: list[str]
    cluster_on: str


class Candidate(Block, kw_only=True):
    """A number of segments tried for action (no clear groups)."""

    k: int
    stability: float | None
    smallest_share: float
    clashes: list[str] | None


class KSelection(Block, kw_only=True):
    """How k was chosen: the curves over the k searched, and the reason."""

    k: list[int]
    inertia: list[float]
    silhouette: list[float | None]
    calinski_harabasz: list[float | None]
    davies_bouldin: list[float | None]
    bic: list[float] | UnsetType = UNSET
    untied_silhouette: list[float | None]
    reference_silhouette: list[float | None]
    structure: str
    candidates: list[Candidate] | UnsetType = UNSET
    chosen: int
    reason: str
    silhouette_sample: int
    sample: int | UnsetType = UNSET  # customers k was chosen on, when not all of them


class Metrics(Block, kw_only=True):
    """Quality of the final segments."""

    silhouette: float | None
    calinski_harabasz: float | None
    davies_bouldin: float | None
    stability_ari: float | None
    silhouette_sample: int


class Rule(Block, kw_only=True):
    """A segment as a short rule on its features, and how well it matches."""

    text: str
    conditions: list[dict[str, Any]]
    precision: float
    recall: float
    others: float
    customers: int


class Segment(Block, kw_only=True):
    """One segment: size, name, words and profile (-1: customers no cluster claims)."""

    id: int
    name: str
    size: int
    share: float
    revenue_share: float | UnsetType = UNSET
    description: str
    actions: list[str]
    profile: dict[str, Any]
    rule: Rule | UnsetType = UNSET
    demographics: list[dict[str, Any]] | UnsetType = UNSET
    value: SegmentValue | UnsetType = UNSET
    over_represented: dict[str, list[Item]] | UnsetType = UNSET
    stage_group: str | UnsetType = UNSET  # --strategy stages: the stage it splits
    # the states its first action is for (engaged, cooling, lapsed), and the share of its
    # customers in them; under lifecycle.min_action_fit: the warning naming the others
    action_for: list[str] | UnsetType = UNSET
    action_fit: float | None | UnsetType = UNSET
    action_warning: str | UnsetType = UNSET


class OutcomeDriver(Block, kw_only=True):
    """A feature that goes with an outcome: Cohen's d (numbers) or h (shares)."""

    feature: str
    effect: float
    text: str


class Outcome(Block, kw_only=True):
    """An outcome column of the customer table (churn, response ...): its rate, and the
    features that go with it most (not clustered on by default)."""

    column: str
    customers: int
    rate: float | None
    drivers: list[OutcomeDriver]


class Demographics(Block, kw_only=True):
    """The tests of the customer table's columns across segments."""

    tests: int
    correction: str
    alpha: float
    min_effect: dict[str, float]
    columns: list[str]
    skipped: dict[str, str]


class ComparisonRow(Block, kw_only=True):
    """One algorithm of ``--compare`` (only algorithm, k and error when it failed)."""

    algorithm: str
    k: int | float | None  # a float when another algorithm failed (a column with nulls)
    silhouette: float | None | UnsetType = UNSET
    calinski_harabasz: float | None | UnsetType = UNSET
    davies_bouldin: float | None | UnsetType = UNSET
    stability_ari: float | None | UnsetType = UNSET
    unclustered: int | float | None | UnsetType = UNSET
    # order lines: the share of its least uniform segment held by one lifecycle state
    best_action_fit: float | None | UnsetType = UNSET
    seconds: float | None | UnsetType = UNSET
    error: str | None
    mean_rank: float | None | UnsetType = UNSET


class Comparison(Block, kw_only=True):
    """Every algorithm ranked best first, and the recommendation in words."""

    table: list[ComparisonRow]
    recommendation: str


class TrendRow(Block, kw_only=True):
    """Revenue and active customers of one segment in one month."""

    month: str
    segment: int
    revenue: float
    active_customers: int


class StageGroup(Block, kw_only=True):
    """One lifecycle group of ``--strategy stages``: the stages it holds, and its split."""

    group: str
    state: str
    stages: list[str]
    customers: int
    k: int
    reason: str


class Strategy(Block, kw_only=True):
    """How the segments were formed ("stages": lifecycle stage first; "clusters": all
    customers at once), and why."""

    name: str
    reason: str
    groups: list[StageGroup] | UnsetType = UNSET


class Clustering(Block, kw_only=True):
    """The clustering part of a run's summary (its fields sit at the summary's top level)."""

    strategy: Strategy | UnsetType = UNSET
    algorithm: str
    k: int
    features: ClusterFeatures
    k_selection: KSelection | None
    clustering_params: dict[str, Any]
    clustering_extra: dict[str, Any]
    metrics: Metrics
    segments: list[Segment]


class StageRow(Block, kw_only=True):
    """Customers in one lifecycle stage (see :mod:`custseg.prep.lifecycle`)."""

    stage: str
    state: str  # engaged, cooling or lapsed: what one action for the stage is for
    customers: int
    share: float
    revenue_share: float | None
    median_recency: float
    median_gap_days: float | None  # their typical days between orders


class Currency(Block, kw_only=True):
    """The currency every amount is in, written with each: an ISO code (EUR) or a sign
    several currencies share ($), and where it was read (a column of codes, the amounts'
    signs, a column's name, the config)."""

    code: str
    read_from: str


class Lifecycle(Block, kw_only=True):
    """Each customer's lifecycle stage, read from his own rhythm (``stage`` and
    ``stage_reason`` in segments.csv)."""

    stages: list[StageRow]
    repeat_gap_days: float | None  # repeat buyers' median gap: one-time buyers' rhythm
    active_gaps: float
    lapsed_gaps: float
    reactivated_gaps: float
    at_risk_by: str | None  # the checked churn risk's rule (null: no model passed)


class FirstAction(Block, kw_only=True):
    """One of the actions to take first (see :mod:`custseg.profile.priorities`): a
    segment, the money at stake with its kind in words, what to do, and the command that
    writes its audience file."""

    segment: int | str  # as custseg export takes it: a run's segment id, an RFM name
    name: str
    customers: int
    stake: float  # in the run's currency
    # at_risk_value: the predicted value of its customers at risk (the prediction passed
    # its check); cooling_value: the predicted value of all its customers (a cooling
    # segment); second_order: a second order from each at its median order value;
    # past_orders: one order from each overdue or lapsed customer (no checked prediction)
    stake_kind: str
    stake_words: str
    action: str
    audience: str  # custseg export ...; RUN_DIR stands for the run's folder


class FirstActions(Block, kw_only=True):
    """What to do first: three to five actions, the most money at stake first, and the
    ranking rule in one sentence (no action: no segment has anything at stake)."""

    rule: str
    actions: list[FirstAction]


class RfmSummary(Block, kw_only=True):
    """``custseg rfm``: order lines cleaned, customer features and RFM segments."""

    custseg_version: str
    input: Input
    mapping: dict[str, str]
    engine: str
    audit: Audit
    roles: Roles | UnsetType = UNSET
    customers: int
    excluded_customers: dict[str, int]
    as_of: str
    features: dict[str, str]
    rfm_edges: dict[str, list[float]]
    rfm_segments: list[RfmSegment]
    timings_s: dict[str, float]
    customer_table: dict[str, Any] | UnsetType = UNSET
    columns: dict[str, dict[str, Any]] | UnsetType = UNSET
    customer_ids: str | UnsetType = UNSET
    currency: Currency | UnsetType = UNSET
    clv: Clv | UnsetType = UNSET
    backtest: Backtest | UnsetType = UNSET
    lifecycle: Lifecycle | UnsetType = UNSET
    lift: Lift | UnsetType = UNSET
    cohorts: Cohorts | UnsetType = UNSET
    first_actions: FirstActions | UnsetType = UNSET


class RunSummary(Block, kw_only=True):
    """``custseg run`` on order lines: the RFM summary with the clustering."""

    custseg_version: str
    input: Input
    mapping: dict[str, str]
    engine: str
    audit: Audit
    roles: Roles | UnsetType = UNSET
    customers: int
    excluded_customers: dict[str, int]
    as_of: str
    features: ClusterFeatures
    rfm_edges: dict[str, list[float]]
    rfm_segments: list[RfmSegment]
    timings_s: dict[str, float]
    customer_table: dict[str, Any] | UnsetType = UNSET
    columns: dict[str, dict[str, Any]] | UnsetType = UNSET
    customer_ids: str | UnsetType = UNSET
    currency: Currency | UnsetType = UNSET
    clv: Clv | UnsetType = UNSET
    backtest: Backtest | UnsetType = UNSET
    lifecycle: Lifecycle | UnsetType = UNSET
    lift: Lift | UnsetType = UNSET
    cohorts: Cohorts | UnsetType = UNSET
    comparison: Comparison | UnsetType = UNSET
    demographics: Demographics | UnsetType = UNSET
    outcomes: list[Outcome] | UnsetType = UNSET
    strategy: Strategy | UnsetType = UNSET
    algorithm: str
    k: int
    k_selection: KSelection | None
    clustering_params: dict[str, Any]
    clustering_extra: dict[str, Any]
    metrics: Metrics
    segments: list[Segment]
    monthly_trend: list[TrendRow] | UnsetType = UNSET
    first_actions: FirstActions | UnsetType = UNSET


class TableSummary(Block, kw_only=True):
    """A customer table read alone, every column with a role (before clustering)."""

    input: Input
    customer_table: dict[str, Any]
    columns: dict[str, dict[str, Any]]
    customers: int
    audit: Audit
    timings_s: dict[str, float]
    customer_ids: str | UnsetType = UNSET
    currency: Currency | UnsetType = UNSET
    clv: Clv | UnsetType = UNSET


class TableRunSummary(Block, kw_only=True):
    """``custseg run`` on a customer table alone: the table's summary with the clustering."""

    input: Input
    customer_table: dict[str, Any]
    columns: dict[str, dict[str, Any]]
    customers: int
    audit: Audit
    timings_s: dict[str, float]
    customer_ids: str | UnsetType = UNSET
    currency: Currency | UnsetType = UNSET
    clv: Clv | UnsetType = UNSET
    comparison: Comparison | UnsetType = UNSET
    outcomes: list[Outcome] | UnsetType = UNSET
    strategy: Strategy | UnsetType = UNSET
    algorithm: str
    k: int
    features: ClusterFeatures
    k_selection: KSelection | None
    clustering_params: dict[str, Any]
    clustering_extra: dict[str, Any]
    metrics: Metrics
    segments: list[Segment]


Summary = RfmSummary | RunSummary | TableSummary | TableRunSummary
#: The kinds of summary a run writes to summary.json.
WRITTEN = (RfmSummary, RunSummary, TableRunSummary)


def clustered(base: RfmSummary | TableSummary, clustering: Clustering, *,
              comparison: Comparison | UnsetType = UNSET,
              demographics: Demographics | UnsetType = UNSET,
              monthly_trend: list[TrendRow] | UnsetType = UNSET,
              lift: Lift | UnsetType = UNSET, cohorts: Cohorts | UnsetType = UNSET,
              outcomes: list[Outcome] | UnsetType = UNSET
              ) -> RunSummary | TableRunSummary:
    """The summary of a clustered run: ``base`` with the clustering (which replaces the RFM
    feature descriptions) and, when given, the comparison, demographics, trend, lift
    settings and cohorts."""
    parts = {**msgspec.structs.asdict(base), **msgspec.structs.asdict(clustering),
             "comparison": comparison, "outcomes": outcomes}
    if isinstance(base, RfmSummary):
        return RunSummary(**{**parts, "lift": lift, "cohorts": cohorts},
                          demographics=demographics, monthly_trend=monthly_trend)
    return TableRunSummary(**parts)


def encode(summary: Summary) -> str:
    """The text of ``summary.json`` (2-space indent; ASCII, as ``json.dumps`` writes it)."""
    return json.dumps(summary.to_dict(), indent=2) + "\n"


def _kind(data: dict[str, Any]) -> type[RfmSummary | RunSummary | TableRunSummary]:
    if "rfm_segments" not in data:
        return TableRunSummary
    return RunSummary if "segments" in data else RfmSummary


def load(path: str | Path) -> RfmSummary | RunSummary | TableRunSummary:
    """Read a run's ``summary.json`` back into its type; :class:`InputError` naming the
    file and the first bad field when it does not decode."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise InputError(f"{path} is not valid JSON ({exc}).") from None
    if not isinstance(data, dict):
        raise InputError(f"{path} is not a custseg summary (not a JSON object).")
    try:
        return msgspec.convert(data, _kind(data))
    except msgspec.ValidationError as exc:
        raise InputError(f"{path} is not a custseg summary: {exc}; re-run custseg to write "
                         "it again.") from None


def schema() -> dict[str, Any]:
    """The JSON Schema of ``summary.json`` (any of the kinds a run writes)."""
    kinds, defs = msgspec.json.schema_components(WRITTEN)
    return {"$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": "custseg summary.json",
            "description": "What a custseg run produced (rfm; run on order lines; run on a "
                           "customer table alone).",
            "anyOf": list(kinds), "$defs": defs}
