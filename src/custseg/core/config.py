"""One configuration object for a run, readable from a TOML or JSON file.

Every key is declared once, by a :func:`setting` field of :class:`Config` or of one of its
tables (``[clustering]``, ``[clv]``, ``[backtest]``, ``[compare]``, ``[score]``,
``[track]``, ``[profile]``): its default, allowed values, check, help text and command-line
flag. The command line builds its options from these declarations,
:class:`~custseg.Segmenter` checks its parameters with them, and
``python -m custseg.core.config --markdown`` renders the docs' table of keys
(docs/guide/configuration.md).

An unknown key or a value of the wrong kind raises
:class:`~custseg.core.exceptions.ConfigError` naming the key and the allowed values.
Flags override the config file, which overrides the defaults.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import numbers
import sys
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar

from custseg.core.exceptions import ConfigError
from custseg.core.naming_rules import check_rules

#: Cleaning rules, each on by default. Switching off ``duplicates``, ``returns``,
#: ``non_positive_price`` or ``zero_quantity`` keeps those lines as purchases (``returns``
#: off gives net revenue). Switching off ``missing_customer`` or ``unparseable`` makes such
#: lines an error instead of a counted drop: they can never be used.
CLEANING_RULES = (
    "unparseable",
    "missing_customer",
    "duplicates",
    "returns",
    "non_positive_price",
    "zero_quantity",
)

#: The engines computing cleaning and features: name -> ``module:Class`` implementing
#: :class:`custseg.engines.base.Engine`. A new engine is one line here.
ENGINES = {
    "duckdb": "custseg.engines.duckdb:DuckDBEngine",
    "spark": "custseg.engines.spark:SparkEngine",
}
#: What an input is: detected, a customer table (one row per customer), or order lines.
INPUT_KINDS = ("auto", "table", "orders")
#: What clustering uses when a customer table is joined to order lines.
CLUSTER_ON = ("behaviour", "all")
#: Skew handling of numeric features, and their scaling.
TRANSFORMS = ("log1p", "yeo-johnson", "none")
SCALERS = ("standard", "robust")
#: Linkages of hierarchical clustering.
LINKAGES = ("ward", "average", "complete")
#: How custseg run forms segments: lifecycle stage first (order lines), or clusters of all
#: customers at once; "auto": stages for order lines with k = "auto", clusters otherwise.
STRATEGIES = ("auto", "stages", "clusters")
#: What ``custseg track`` follows: segment names of a run, or RFM segments.
TRACK_BY = ("cluster", "rfm")
#: Purchase models of customer value: ``auto`` (each of the others checked on the data's
#: own past, the best shown), BG/NBD (Fader, Hardie and Lee 2005), the modified BG/NBD
#: (Batislam, Denizel and Filiztekin 2007), where a customer may also leave right after
#: the first purchase, Pareto/NBD (Schmittlein, Morrison and Colombo 1987), where he
#: may leave at any time, or gradient-boosted trees or a logistic regression on the
#: customers' features.
PURCHASE_MODELS = ("auto", "bgnbd", "mbgnbd", "pnbd", "boosted", "linear")
#: Spend models: ``auto`` (both checked on the data's own past), Gamma-Gamma (Fader and
#: Hardie 2013) or a log-normal shrunk to the population's (empirical Bayes).
SPEND_MODELS = ("auto", "gamma_gamma", "lognormal")


@dataclass(frozen=True)
class Algorithm:
    name: str
    needs_k: bool  # False: the algorithm decides the number of clusters itself
    description: str
    options: tuple[str, ...] = ()  # keyword options it accepts (``clustering.options``)


ALGORITHMS: dict[str, Algorithm] = {a.name: a for a in (
    Algorithm("kmeans", True, "k-means++ (MiniBatch for large n)", ("minibatch",)),
    Algorithm("hierarchical", True, "agglomerative over micro-clusters (Ward by default)",
              ("n_micro",)),
    Algorithm("gmm", True, "Gaussian mixture, components by BIC", ("covariance_type",)),
    Algorithm("kprototypes", True, "k-prototypes for mixed numeric and categorical data",
              ("gamma",)),
    Algorithm("dbscan", False, "DBSCAN, eps from the knee of the k-distance curve",
              ("eps", "min_samples")),
    Algorithm("hdbscan", False, "HDBSCAN", ("min_cluster_size",)),
    Algorithm("affinity", False, "affinity propagation, exemplars on a sample",
              ("preference", "damping")),
)}


def default_rfm_segments() -> dict[str, list[str]]:
    """The eleven named RFM segments over the 125 score cells (package data)."""
    return _package_table("rfm_segments.json")


def default_rfm_actions() -> dict[str, list[str]]:
    """What to do with each of the eleven named RFM segments (package data)."""
    return _package_table("rfm_actions.json")


def _package_table(name: str) -> dict[str, list[str]]:
    text = resources.files("custseg").joinpath(f"data/{name}").read_text("utf-8")
    return {k: v for k, v in json.loads(text).items() if not k.startswith("_")}


def _actions(v: Any) -> bool:
    return v is None or (isinstance(v, dict) and all(
        isinstance(a, list) and a and all(isinstance(x, str) for x in a) for a in v.values()))


# ----------------------------------------------------------------------- declarations
@dataclass(frozen=True)
class Setting:
    """The one declaration of a config key.

    ``check`` accepts or refuses a value (the error then names ``allowed``); ``convert``
    normalises an accepted one and may refuse it with a message of its own. ``flag`` is the
    command-line option (None: config file only), ``cli`` the type typer reads it as and
    ``parse`` turns what typer read into a value. ``shown`` is the default in words.
    """

    default: Any
    allowed: str
    help: str
    check: Callable[[Any], bool]
    convert: Callable[[Any], Any] | None = None
    flag: str | None = None
    cli: Any = str
    parse: Callable[[Any], Any] | None = None
    metavar: str | None = None
    envvar: str | None = None
    shown: str | None = None

    def validate(self, key: str, value: Any) -> Any:
        """The value, normalised; a ConfigError naming ``key`` if it is not allowed."""
        if not self.check(value):
            raise ConfigError(f"The {key!r} setting must be {self.allowed}. "
                              f"Got {value!r} instead.")
        return self.convert(value) if self.convert else value

    def check_param(self, owner: str, name: str, value: Any) -> None:
        """The same check for a parameter of a Python class or function (``owner``)."""
        if not self.check(value):
            raise ConfigError(f"The {name!r} parameter of {owner} must be {self.allowed}. "
                              f"Got {value!r} instead.")

    @property
    def default_words(self) -> str:
        if self.shown is not None:
            return self.shown
        if isinstance(self.default, bool):
            return str(self.default).lower()
        return "unset" if self.default is None else str(self.default)


def setting(default: Any, allowed: str, help: str, check: Callable[[Any], bool],
            **declaration: Any) -> Any:
    """A dataclass field declared by a :class:`Setting` (mutable defaults copied)."""
    meta = {"setting": Setting(default, allowed, help, check, **declaration)}
    if isinstance(default, dict | list):
        return field(default_factory=lambda: json.loads(json.dumps(default)), metadata=meta)
    return field(default=default, metadata=meta)


def table(cls: type) -> Any:
    """A dataclass field holding a config table (a dict is read into ``cls``)."""
    return field(default_factory=cls, metadata={"table": cls})


def one_of(choices) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, str) and v in choices


def choices_words(choices) -> str:
    return f"one of {', '.join(choices)}"


def is_(*kinds: type | None) -> Callable[[Any], bool]:
    """Of one of the kinds (None: null); a bool is not an int."""
    def check(v: Any) -> bool:
        if v is None:
            return None in kinds
        if isinstance(v, bool):
            return bool in kinds
        return any(k is not None and isinstance(v, k) for k in kinds)
    return check


def _whole(v: Any) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def is_share(v: Any) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool) and 0 <= v <= 1


def _str_table(v: Any) -> bool:
    return isinstance(v, dict) and all(isinstance(x, str) for x in v.values())


def _k(v: Any) -> bool:
    return v == "auto" or (_whole(v) and v >= 2)


def _k_range(v: Any) -> bool:
    return v is None or (isinstance(v, tuple | list) and len(v) == 2
                         and all(_whole(x) for x in v) and 2 <= v[0] <= v[1])


def _names(v: Any) -> bool:
    return v is None or (isinstance(v, list | tuple) and all(isinstance(x, str) for x in v))


def _date(v: str | None) -> str | None:
    if v is not None:
        try:
            dt.date.fromisoformat(v)
        except ValueError:
            raise ConfigError(f"The 'as_of' setting must be a date YYYY-MM-DD. "
                              f"Got {v!r} instead.") from None
    return v


def _salt(v: str | None) -> str | None:
    if v is not None and not v:
        raise ConfigError("salt must not be empty; leave it out for a random salt.")
    return v


def _cleaning(v: dict) -> dict[str, bool]:
    unknown = set(v) - set(CLEANING_RULES)
    if unknown:
        raise ConfigError(f"Unknown cleaning rule {sorted(unknown)[0]!r}; "
                          f"allowed: {', '.join(CLEANING_RULES)}.")
    return {r: bool(v.get(r, True)) for r in CLEANING_RULES}  # rules left out stay on


def _naming_rules(v: list | None) -> list | None:
    return None if v is None else check_rules(v)


# Command-line text -> value: anything not understood is handed on as it is, so the
# declaration's check reports it with the allowed values.
def _parse_k(text: str) -> int | str:
    return int(text) if text.isdigit() else text


def _parse_k_range(text: str) -> tuple[int, int] | str:
    low, sep, high = text.partition("-")
    return (int(low), int(high)) if sep and low.isdigit() and high.isdigit() else text


def _parse_features(text: str) -> list[str] | None:
    return [f.strip() for f in text.split(",") if f.strip()] or None


def _parse_delimiter(text: str) -> str:
    return "\t" if text == "\\t" else text


def _pairs(items: list[str], flag: str, form: str, example: str) -> dict[str, str]:
    pairs = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value:
            raise ConfigError(f"{flag} {item!r} is not {form}, e.g. {flag} {example}.")
        pairs[key.strip()] = value
    return pairs


def _number(raw: str) -> int | float | str:
    for kind in (int, float):
        try:
            return kind(raw)
        except ValueError:
            continue
    return raw


def _parse_options(items: list[str]) -> dict[str, Any]:
    pairs = _pairs(items, "--option", "KEY=VALUE", "eps=0.4")
    return {key: _number(raw) for key, raw in pairs.items()} or None


def _parse_map(items: list[str]) -> dict[str, str] | None:
    return _pairs(items, "--map", "FIELD=COLUMN", "customer_id=Client") or None


def check_options(algorithm: str, options: dict | None, name: str) -> None:
    """Every key of ``options`` is one ``algorithm`` takes (``name``: the key in words)."""
    accepted = ALGORITHMS[algorithm].options
    for key in options or {}:
        if key not in accepted:
            raise ConfigError(f"The {name} takes, for {algorithm}, {list(accepted)}. "
                              f"Got {key!r} instead.")


_SHARE = "a number between 0 and 1"
_TEXT = "str or null"


def _currency(v: Any) -> bool:
    return v is None or (isinstance(v, str) and 0 < len(v.strip()) <= 8)
_str_or_none = is_(str, None)


class _Table:
    """Checks shared by the config and its tables: every field is declared."""

    TABLE: ClassVar[str] = ""

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if "table" in f.metadata:
                kind = f.metadata["table"]
                if isinstance(value, dict):
                    value = kind.from_dict(value)
                elif not isinstance(value, kind):
                    raise ConfigError(f"The {f.name!r} setting must be a table of "
                                      f"{', '.join(kind.names())}. Got {value!r} instead.")
            else:
                value = f.metadata["setting"].validate(self.key(f.name), value)
            object.__setattr__(self, f.name, value)

    @classmethod
    def key(cls, name: str) -> str:
        return f"{cls.TABLE}.{name}" if cls.TABLE else name

    @classmethod
    def names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "config"):
        """Build from a plain dict, rejecting unknown keys."""
        where = f"{source} [{cls.TABLE}]" if cls.TABLE else source
        if not isinstance(data, dict):
            raise ConfigError(f"{where} must be a table of {', '.join(cls.names())}. "
                              f"Got {data!r} instead.")
        unknown = [k for k in data if k not in cls.names()]
        if unknown:
            raise ConfigError(f"Unknown key {unknown[0]!r} in {where}; "
                              f"allowed keys: {', '.join(cls.names())}.")
        return cls(**data)

    def replace(self, **changes: Any):
        """A copy with some fields changed; None values leave a field as it is."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})


@dataclass(frozen=True)
class ClusteringConfig(_Table):
    """The ``[clustering]`` table: how ``custseg run`` and ``custseg compare`` segment."""

    TABLE: ClassVar[str] = "clustering"

    algorithm: str = setting(
        "kmeans", choices_words(ALGORITHMS), "Clustering algorithm.", one_of(ALGORITHMS),
        flag="--algorithm")
    k: int | str = setting(
        "auto", "'auto' or an int >= 2", "Number of segments, or 'auto'.", _k,
        flag="--k", parse=_parse_k)
    k_range: tuple[int, int] | None = setting(
        None, "a pair [low, high] of ints with 2 <= low <= high (LOW-HIGH on the command "
        "line), or unset", "Range searched by k = 'auto'.", _k_range,
        convert=lambda v: None if v is None else (int(v[0]), int(v[1])),
        flag="--k-range", parse=_parse_k_range, metavar="LOW-HIGH",
        shown="clear groups in 2-10, else a continuum cut for action in 3-8")
    seed: int = setting(0, "an int", "Random seed; same seed, same output.", _whole,
                        flag="--seed", cli=int)
    k_sample: int = setting(
        100_000, "an int >= 1000, or 0 for every customer", "k = 'auto' is chosen on a "
        "stratified sample of this many customers; the final fit uses all of them.",
        lambda v: _whole(v) and (v == 0 or v >= 1000), flag="--k-sample", cli=int)
    features: list[str] | None = setting(
        None, "a list of column names, or unset", "Columns to cluster on.", _names,
        convert=lambda v: None if v is None else list(v),
        flag="--features", parse=_parse_features, metavar="A,B,C", shown="chosen for you")
    skew: str = setting("log1p", choices_words(TRANSFORMS),
                        "Skew handling of numeric features (log1p only on non-negative "
                        "skewed columns).", one_of(TRANSFORMS), flag="--skew")
    scaler: str = setting("standard", choices_words(SCALERS), "Scaling of the features.",
                          one_of(SCALERS), flag="--scaler")
    linkage: str = setting("ward", choices_words(LINKAGES), "Linkage of hierarchical.",
                           one_of(LINKAGES), flag="--linkage")
    options: dict[str, Any] | None = setting(
        None, "a table of the algorithm's options, or unset",
        "Algorithm options, e.g. eps=0.4 (dbscan), min_cluster_size=50 (hdbscan), "
        "covariance_type=diag (gmm); --option KEY=VALUE, repeatable.", is_(dict, None),
        flag="--option", cli=list[str], parse=_parse_options, metavar="KEY=VALUE")
    strategy: str = setting(
        "auto", choices_words(STRATEGIES), "How segments are formed: 'stages' puts each "
        "customer of order lines in his lifecycle stage first and splits each stage by value "
        "and behaviour; 'clusters' clusters all customers at once; 'auto': stages for order "
        "lines when k is 'auto', clusters otherwise.", one_of(STRATEGIES), flag="--strategy")
    compare: bool = setting(False, "bool", "custseg run also runs and ranks every algorithm "
                            "(shown in the report).", is_(bool), flag="--compare", cli=bool)

    def __post_init__(self) -> None:
        super().__post_init__()
        check_options(self.algorithm, self.options, "'clustering.options' setting")


@dataclass(frozen=True)
class CompareConfig(_Table):
    """The ``[compare]`` table: ``custseg compare``'s own keys."""

    TABLE: ClassVar[str] = "compare"

    out: str = setting("custseg-compare", "str", "Output folder of custseg compare.", is_(str),
                       flag="--out")


@dataclass(frozen=True)
class ScoreConfig(_Table):
    """The ``[score]`` table: ``custseg score``'s own keys."""

    TABLE: ClassVar[str] = "score"

    out: str = setting("scored.csv", "str", "CSV file custseg score writes.", is_(str),
                       flag="--out")


@dataclass(frozen=True)
class TrackConfig(_Table):
    """The ``[track]`` table: ``custseg track``'s own keys."""

    TABLE: ClassVar[str] = "track"

    by: str = setting("cluster", choices_words(TRACK_BY),
                      "What to follow: cluster (segment names) or rfm (RFM segments).",
                      one_of(TRACK_BY), flag="--by")
    model: str | None = setting(None, _TEXT, "Old run's model.json: assign the new snapshot "
                                "with it.", _str_or_none, flag="--model")
    out: str = setting("custseg-track", "str", "Output folder of custseg track.", is_(str),
                       flag="--out")


@dataclass(frozen=True)
class ProfileConfig(_Table):
    """The ``[profile]`` table: what segments buy (lift) and cohort retention."""

    TABLE: ClassVar[str] = "profile"

    min_support: float = setting(
        0.02, _SHARE, "A product, category or country is listed as over-represented in a "
        "segment only when at least this share of the segment's customers bought it.",
        is_share, convert=float)
    min_buyers: int = setting(20, "an int >= 1", "... and at least this many of them.",
                              lambda v: _whole(v) and v >= 1)
    min_lift: float = setting(
        1.5, "a number >= 1", "... and they buy it at least this many times as often as "
        "all customers (lift: the share of the segment's customers who bought it over the "
        "share of all customers who did).", lambda v: _real(v) and v >= 1, convert=float)
    top: int = setting(5, "an int >= 1", "Items listed per segment, highest lift first.",
                       lambda v: _whole(v) and v >= 1)
    cohorts_by_segment: bool = setting(
        False, "bool", "The report also shows cohort retention per segment.", is_(bool),
        flag="--cohorts-by-segment", cli=bool)
    cohort_months: int = setting(
        24, "an int >= 2", "Cohort retention covers the latest this many monthly cohorts.",
        lambda v: _whole(v) and v >= 2)


def _real(v: Any) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def _positive(v: Any) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool) and v > 0


def _date_or_none(v: Any) -> bool:
    if v is None:
        return True
    try:
        dt.date.fromisoformat(v)
    except (TypeError, ValueError):
        return False
    return True


@dataclass(frozen=True)
class LifecycleConfig(_Table):
    """The ``[lifecycle]`` table: each customer's stage, read from his own rhythm (his
    typical days between purchase days; for one-time buyers, the repeat buyers' median)."""

    TABLE: ClassVar[str] = "lifecycle"

    active_gaps: float = setting(
        1.5, "a number > 0", "Last purchase within this many typical gaps: active (new for "
        "a one-time buyer, reactivated after a lapse).", _positive, convert=float)
    lapsed_gaps: float = setting(
        3.0, "a number > 0", "Silent for more than this many typical gaps: lapsed; between "
        "active_gaps and this: cooling, or at risk when the checked churn risk says so.",
        _positive, convert=float)
    reactivated_gaps: float = setting(
        3.0, "a number > 0", "Came back, within active_gaps, after a silence of more than "
        "this many of his earlier typical gaps: reactivated.", _positive, convert=float)
    min_action_fit: float = setting(
        0.8, _SHARE, "A segment whose largest state (engaged, cooling, lapsed) holds less "
        "than this share of its customers carries a warning naming the others: no one "
        "action fits it.", is_share, convert=float)


@dataclass(frozen=True)
class ClvConfig(_Table):
    """The ``[clv]`` table: predicted customer value (BG/NBD and Gamma-Gamma)."""

    TABLE: ClassVar[str] = "clv"

    enabled: bool = setting(True, "bool", "Predict P(alive), expected orders, order value, "
                            "CLV and churn risk per customer (order lines only).", is_(bool),
                            flag="--clv/--no-clv", cli=bool)
    horizon: int = setting(365, "an int >= 1 (days)", "Days ahead that expected orders, CLV "
                           "and churn risk look.",
                           lambda v: _whole(v) and v >= 1, flag="--clv-horizon", cli=int,
                           metavar="DAYS")
    discount_rate: float = setting(0.10, _SHARE, "Annual discount rate of CLV.", is_share,
                                   convert=float, flag="--discount-rate", cli=float)
    churn_threshold: float = setting(0.7, _SHARE, "Churn risk from which a customer counts "
                                     "as at risk.", is_share, convert=float,
                                     flag="--churn-threshold", cli=float)
    min_repeat_buyers: int = setting(100, "an int >= 2", "Fewer repeat buyers than this: no "
                                     "value model is fitted (columns left empty, with the "
                                     "reason).", lambda v: _whole(v) and v >= 2)
    model: str = setting("auto", choices_words(PURCHASE_MODELS), "Purchase model: auto "
                         "(BG/NBD, MBG/NBD, Pareto/NBD, boosted trees and a logistic "
                         "regression checked on the last days of the data, the best shown), "
                         "or one of them (still checked).",
                         one_of(PURCHASE_MODELS), flag="--clv-model")
    spend_model: str = setting("auto", choices_words(SPEND_MODELS), "Spend model: auto "
                               "(Gamma-Gamma and the shrunk log-normal checked on the last "
                               "days of the data), or one of them (still checked).",
                               one_of(SPEND_MODELS))
    backtest_split: str | None = setting(
        None, "a date YYYY-MM-DD, or unset", "custseg rfm and run also backtest the value "
        "models: fitted on lines before this date, checked on the lines after it.",
        _date_or_none, flag="--backtest-split", metavar="YYYY-MM-DD")


@dataclass(frozen=True)
class BacktestConfig(_Table):
    """The ``[backtest]`` table: ``custseg backtest``'s own keys."""

    TABLE: ClassVar[str] = "backtest"

    split: str | None = setting(None, "a date YYYY-MM-DD", "Calibrate on lines before it, "
                                "compare with the lines from it on.", _date_or_none,
                                flag="--split", metavar="YYYY-MM-DD")
    out: str = setting("custseg-backtest", "str", "Output folder of custseg backtest.",
                       is_(str), flag="--out")


def _parse_share(text: str) -> float | str:
    """'10%' or '0.1' -> 0.1 (anything else is handed on for the check to refuse)."""
    text = text.strip()
    number = _number(text[:-1].strip()) if text.endswith("%") else _number(text)
    if isinstance(number, str):
        return text
    return number / 100 if text.endswith("%") else float(number)


def _holdout(v: Any) -> bool:
    return is_share(v) and v < 1


@dataclass(frozen=True)
class CampaignConfig(_Table):
    """The ``[campaign]`` table: control groups of ``custseg export`` and what ``custseg
    measure`` compares."""

    TABLE: ClassVar[str] = "campaign"

    holdout: float = setting(
        0.1, "a share from 0 to below 1 (10% or 0.1 on the command line)", "Share of each "
        "exported segment's customers held out at random as its control group; 0: no "
        "control group.", _holdout, convert=float, flag="--holdout", cli=str,
        parse=_parse_share, metavar="SHARE")
    seed: int | None = setting(
        None, "an int or null", "Seed of the random split (the same seed, the same groups); "
        "null: a new one, written in the manifest.", lambda v: v is None or _whole(v),
        flag="--seed", cli=int, shown="a new one, recorded")
    start: str | None = setting(
        None, "a date YYYY-MM-DD or null", "First day of the campaign: later orders from it "
        "on are measured.", _date_or_none, flag="--start", metavar="YYYY-MM-DD",
        shown="the day after the run's as-of date")
    window_days: int = setting(
        30, "an int >= 1", "Days the campaign's effect is measured over, from its start.",
        lambda v: _whole(v) and v >= 1, flag="--window", cli=int, metavar="DAYS")
    min_uplift: float = setting(
        0.02, _SHARE, "The uplift in the share of customers who buy (absolute; 0.02: two "
        "points) each segment's split should detect with 80% power at 5% (two-sided); a "
        "smaller segment is warned about, with the holdout share that would.", is_share,
        convert=float)
    out: str = setting("custseg-measure", "str", "Output folder of custseg measure.",
                       is_(str), flag="--out")


@dataclass(frozen=True)
class Config(_Table):
    """Settings of a custseg run. All keys are optional; each is declared below (see the
    docs' table, made by :func:`markdown_table`).

    >>> Config(clustering={"k": 3}).clustering.k
    3
    """

    out: str = setting("custseg-out", "str", "Output folder of custseg rfm and run.",
                       is_(str), flag="--out")
    report: bool = setting(True, "bool", "custseg rfm and run write report.html and "
                           "figures/ (PNG).", is_(bool), flag="--report/--no-report", cli=bool)
    figures: bool = setting(True, "bool", "The report's charts also as PNG files in figures/ "
                            "(report.html embeds its own); about 3 s a run.", is_(bool),
                            flag="--figures/--no-figures", cli=bool)
    customers: str | None = setting(
        None, _TEXT, "Customer table to join on customer id (any input format).",
        _str_or_none, flag="--customers")
    db: str | None = setting(
        None, _TEXT, "Database URL, e.g. sqlite:///shop.db or duckdb:///shop.duckdb.",
        _str_or_none, flag="--db")
    sql: str | None = setting(None, _TEXT, "Query to run on db (or give the names of its "
                              "tables as the inputs: they are joined by their keys).",
                              _str_or_none, flag="--sql")
    mapping: dict[str, str] = setting(
        {}, "a table of field = column names", "Canonical field -> input column, overriding "
        "detection (--map customer_id=Client, repeatable).", _str_table,
        flag="--map", cli=list[str], parse=_parse_map, metavar="FIELD=COLUMN")
    dayfirst: bool | None = setting(
        None, "bool or null", "Read 01/02/2011 as 1 February.", is_(bool, None),
        flag="--dayfirst/--no-dayfirst", cli=bool, shown="from the data")
    start_date: str | None = setting(
        None, "a date YYYY-MM-DD, or unset", "The date of day 1 when the order dates are "
        "day numbers (DAY 1..711).", _date_or_none, flag="--start-date",
        metavar="YYYY-MM-DD", shown="none: day numbers are an error")
    as_of: str | None = setting(
        None, "a date YYYY-MM-DD, or unset", "Snapshot date: lines on or after it are "
        "ignored and recency counts days up to it.", _str_or_none, convert=_date,
        flag="--as-of", metavar="YYYY-MM-DD", shown="day after the last date")
    sheet: str | None = setting(None, _TEXT, "Excel sheet name or 0-based index.",
                                _str_or_none, flag="--sheet", shown="the first sheet")
    delimiter: str | None = setting(None, _TEXT, "Force the delimiter of a text file (\\t: "
                                    "tab).", _str_or_none, flag="--delimiter",
                                    parse=_parse_delimiter, shown="sniffed")
    encoding: str | None = setting(
        None, _TEXT, "Encoding of a text file, any Python codec (cp1252, latin-1, utf-16, "
        "...).", _str_or_none, flag="--encoding",
        shown="guessed: UTF-8, UTF-16 (byte-order mark or NUL bytes), else Windows-1252")
    cancellation_pattern: str | None = setting(
        None, _TEXT, "Regular expression on invoice ids marking cancellations.",
        _str_or_none, shown="C + digits when ordinary invoice ids are digits")
    cleaning: dict[str, bool] = setting(
        dict.fromkeys(CLEANING_RULES, True), f"a table of {', '.join(CLEANING_RULES)}",
        "Cleaning rules on (true) or off (false).", is_(dict), convert=_cleaning,
        shown="all true")
    rfm_segments: dict[str, list[str]] | None = setting(
        None, "a table of segment = RFM codes, or unset", "Named RFM segments; must cover "
        "all 125 cells once.", is_(dict, None), shown="the eleven of data/rfm_segments.json")
    rfm_actions: dict[str, list[str]] | None = setting(
        None, "a table of segment = list of actions, or unset", "Actions of named RFM "
        "segments, first action first; merged over the defaults.", _actions,
        shown="data/rfm_actions.json")
    naming_rules: list[dict] | None = setting(
        None, "a list of rules, or unset", "Rules naming segments.", is_(list, None),
        convert=_naming_rules, shown="data/segment_names.json")
    customers_key: str | None = setting(None, _TEXT, "Id column of the customer table.",
                                        _str_or_none, shown="detected")
    memory_limit: str = setting("auto", "'auto' or a size such as '4GB'", "DuckDB memory "
                                "limit; larger work spills to temp_directory.", is_(str),
                                shown="auto: half of the memory available at the start, "
                                "between 1 GB and 4 GB")
    threads: int | None = setting(None, "int or null", "Threads for DuckDB and the numeric "
                                  "libraries (OpenMP, BLAS); null: DuckDB's own choice and, "
                                  "for OpenMP and BLAS, the cores this process may run on.",
                                  lambda v: v is None or (_whole(v) and v >= 1),
                                  flag="--threads", cli=int, shown="the cores it may run on")
    temp_directory: str | None = setting(None, _TEXT, "Where DuckDB spills and keeps its "
                                         "scratch database (deleted after the run).",
                                         _str_or_none, shown="the system temporary folder")
    engine: str = setting("duckdb", choices_words(ENGINES), "What computes cleaning and "
                          "features: embedded DuckDB (out-of-core) or Apache Spark.",
                          one_of(ENGINES), flag="--engine")
    spark_master: str = setting("local[*]", "str", "Spark master with engine spark: "
                                "local[*], spark://host:7077, yarn, ...", is_(str),
                                flag="--spark-master", metavar="URL")
    spark_conf: dict[str, str] = setting({}, "a table of Spark settings", "Extra Spark "
                                         "settings, applied when the session starts.",
                                         is_(dict))
    spark_class_archive: bool = setting(
        True, "bool", "With engine spark: the Spark driver maps the classes it loads from "
        "an archive in the user's cache (about 180 MB; recorded once, in the background, "
        "after the first session), starting and running its first jobs about 5 s sooner "
        "(Java's class data sharing).", is_(bool))
    spark_local_lines: int = setting(
        2_000_000, "int", "With engine spark: classified lines up to this many are "
        "aggregated by DuckDB on the driver (a Spark job costs a fixed 0.1-0.5 s however "
        "small its table); 0: always on Spark.", lambda v: _whole(v) and v >= 0)
    hash_ids: bool = setting(False, "bool", "Write salted hashes instead of customer ids in "
                             "every output.", is_(bool), flag="--hash-ids", cli=bool)
    salt: str | None = setting(
        None, _TEXT, "Secret salt of hash_ids (same salt, same hashes).", _str_or_none,
        convert=_salt, flag="--salt", envvar="CUSTSEG_SALT",
        shown="random per run, never written")
    input_kind: str = setting("auto", choices_words(INPUT_KINDS), "table (one row per "
                              "customer), orders (order lines), or auto: detected from the "
                              "columns.", one_of(INPUT_KINDS), flag="--input-kind")
    cluster_on: str = setting("behaviour", choices_words(CLUSTER_ON), "With a customer table "
                              "joined to order lines: cluster on behaviour, or all: also the "
                              "table's columns (demographics).", one_of(CLUSTER_ON),
                              flag="--cluster-on")
    max_missing: float = setting(0.5, _SHARE, "A customer-table column with a larger share "
                                 "of missing values is left out, not imputed.", is_share,
                                 convert=float)
    min_segment_share: float = setting(0.03, _SHARE, "With k = 'auto' on a continuum, every "
                                       "segment holds at least this share of customers.",
                                       is_share, convert=float)
    min_stability: float = setting(0.8, _SHARE, "Bootstrap stability (ARI) a chosen k must "
                                   "reach; below it the run carries a warning.", is_share,
                                   convert=float)
    at_risk_share: float = setting(0.3, _SHARE, "A segment with this share of RFM at-risk "
                                   "customers is named and acted on as slipping away.",
                                   is_share, convert=float)
    labels: dict[str, str] = setting({}, "a table of column = words", "Words for columns in "
                                     "segment names and descriptions.", _str_table)
    dictionary: str | None = setting(
        None, _TEXT, "A data dictionary: a CSV file of column name and description per line "
        "(the words used for columns in names and descriptions; labels win).", _str_or_none,
        flag="--dictionary")
    currency: str | None = setting(
        None, _TEXT, "The currency amounts are in (EUR, GBP, $, ...), written with every "
        "amount; null: read from the data (a currency column, the amounts' signs, the money "
        "columns' names), 'none' writes amounts without one.", _currency,
        flag="--currency", metavar="CODE")
    clustering: ClusteringConfig = table(ClusteringConfig)
    clv: ClvConfig = table(ClvConfig)
    backtest: BacktestConfig = table(BacktestConfig)
    compare: CompareConfig = table(CompareConfig)
    score: ScoreConfig = table(ScoreConfig)
    track: TrackConfig = table(TrackConfig)
    profile: ProfileConfig = table(ProfileConfig)
    lifecycle: LifecycleConfig = table(LifecycleConfig)
    campaign: CampaignConfig = table(CampaignConfig)

    @property
    def rfm_map(self) -> dict[str, list[str]]:
        """The RFM segment map in force (segment name -> its RFM codes)."""
        return self.rfm_segments if self.rfm_segments is not None else default_rfm_segments()

    @property
    def rfm_action_map(self) -> dict[str, list[str]]:
        """The actions of the named RFM segments in force (the config's over the defaults)."""
        return {**default_rfm_actions(), **(self.rfm_actions or {})}

    def overridden(self, values: dict[str, Any]) -> Config:
        """A copy with keys (``"clustering.k"``) set; None leaves a key as it is, and a
        table value (``mapping``, ``clustering.options``) is merged into the one in force."""
        changes: dict[str, dict[str, Any]] = {}
        for key, value in values.items():
            if value is None:
                continue
            name, _, sub = key.partition(".")
            current = getattr(getattr(self, name), sub) if sub else getattr(self, name)
            if isinstance(value, dict) and isinstance(current, dict):
                value = {**current, **value}
            changes.setdefault(name if sub else "", {})[sub or name] = value
        top = changes.pop("", {})
        for name, sub_changes in changes.items():
            top[name] = dataclasses.replace(getattr(self, name), **sub_changes)
        return dataclasses.replace(self, **top)

    @classmethod
    def from_file(cls, path: str | Path) -> Config:
        """Read a config from a ``.toml`` or ``.json`` file."""
        path = Path(path)
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise ConfigError(f"Cannot read config file {path}: {exc.strerror}.") from None
        try:
            if path.suffix.lower() == ".json":
                data = json.loads(raw)
            else:
                data = tomllib.loads(raw.decode("utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise ConfigError(f"Config file {path} is not valid TOML/JSON: {exc}.") from None
        return cls.from_dict(data, source=str(path))

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "config") -> Config:
        """Build a config from a plain dict (tables as nested dicts), rejecting unknown
        keys."""
        data = dict(data)
        for f in dataclasses.fields(cls):
            if "table" in f.metadata and f.name in data:
                data[f.name] = f.metadata["table"].from_dict(data[f.name], source=source)
        return super().from_dict(data, source=source)


def declared(cls: type = Config) -> dict[str, Setting]:
    """Every key of ``cls`` and its tables ("clustering.k") -> its declaration."""
    keys: dict[str, Setting] = {}
    for f in dataclasses.fields(cls):
        if "table" in f.metadata:
            keys.update(declared(f.metadata["table"]))
        else:
            keys[cls.key(f.name)] = f.metadata["setting"]
    return keys


SETTINGS: dict[str, Setting] = declared()


def markdown_table() -> str:
    """The docs' table of config keys: key, flag, default, allowed values, meaning."""
    rows = ["| key | flag | default | allowed values | meaning |",
            "|---|---|---|---|---|"]
    for key, s in SETTINGS.items():
        cells = [f"`{key}`", f"`{s.flag.split('/')[0]}`" if s.flag else "",
                 s.default_words, s.allowed, s.help]
        rows.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    if sys.argv[1:] != ["--markdown"]:
        sys.exit("usage: python -m custseg.core.config --markdown")
    sys.stdout.write(markdown_table())
