"""One configuration object for a run, readable from a TOML or JSON file.

Every key is checked: an unknown key or a value of the wrong kind raises
:class:`~custseg.core.exceptions.ConfigError` naming the key and the allowed values.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

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


def default_rfm_segments() -> dict[str, list[str]]:
    """The eleven named RFM segments over the 125 score cells (package data)."""
    text = resources.files("custseg").joinpath("data/rfm_segments.json").read_text("utf-8")
    return {k: v for k, v in json.loads(text).items() if not k.startswith("_")}


@dataclass(frozen=True)
class Config:
    """Settings of a custseg run. All fields are optional.

    Parameters
    ----------
    mapping : dict, default={}
        Canonical field -> input column, overriding automatic detection
        (``{"customer_id": "Client"}``).
    dayfirst : bool or None, default=None
        Read ``01/02/2011`` as 1 February. None decides from the data.
    as_of : str or None, default=None
        Snapshot date ``YYYY-MM-DD``: lines on or after it are ignored and recency counts
        days up to it. None uses the day after the last date in the data.
    sheet : str or None, default=None
        Excel sheet name or 0-based index; None reads the first sheet.
    delimiter, encoding : str or None, default=None
        Force the text-file delimiter or encoding instead of sniffing them.
    cancellation_pattern : str or None, default=None
        Regular expression on invoice ids marking cancellations. None decides from the
        data: ``C`` + digits when ordinary invoice ids are digits (Online Retail).
    cleaning : dict, default all True
        Rule name -> on/off, see ``CLEANING_RULES``.
    rfm_segments : dict or None, default=None
        Segment name -> list of RFM codes ("545"); must cover all 125 cells once.
    naming_rules : list or None, default=None
        Rules naming segments (see ``data/segment_names.json``); None uses those.
    customers_key : str or None, default=None
        Id column of the customer table; None detects it.
    memory_limit : str, default="1GB"
        DuckDB memory limit; larger work spills to ``temp_directory``.
    threads : int or None, default=None
        DuckDB threads; None uses every core.
    temp_directory : str or None, default=None
        Where DuckDB spills; None uses the system temporary folder.
    engine : {"duckdb", "spark"}, default="duckdb"
        What computes cleaning and features: embedded DuckDB, or Apache Spark.
    spark_master : str, default="local[*]"
        Spark master URL (``local[*]``, ``spark://host:7077``, ``yarn``, ...).
    spark_conf : dict, default={}
        Extra Spark settings (``{"spark.executor.memory": "8g"}``), applied when the
        session starts.
    hash_ids : bool, default=False
        Replace customer ids by salted hashes in every output (``--hash-ids``).
    salt : str or None, default=None
        Secret salt of those hashes; the same salt gives the same hashes, so snapshots can
        be tracked. None draws a random salt for each run (never written anywhere).
    input_kind : {"auto", "table", "orders"}, default="auto"
        Whether the input is a customer table (one row per customer) or order lines;
        "auto" decides from its columns (``--input-kind``).
    cluster_on : {"behaviour", "all"}, default="behaviour"
        With a customer table joined to order lines: cluster on behaviour only, or on
        behaviour and the table's columns (demographics) together (``--cluster-on``).
    max_missing : float, default=0.5
        A customer-table column with a larger share of missing or unreadable values is left
        out (with a note), not imputed.
    min_segment_share : float, default=0.03
        With ``--k auto`` on data without clear clusters, every segment must hold at least
        this share of customers.
    min_stability : float, default=0.8
        Bootstrap stability (mean adjusted Rand index) a chosen k must reach; below it the
        run carries a warning.
    at_risk_share : float, default=0.3
        A segment whose share of RFM "At Risk", "Can't Lose Them" and "About To Sleep"
        customers reaches this is named and acted on as slipping away.
    labels : dict, default={}
        Column -> the words used for it in names and descriptions
        (``{"MntWines": "wine spend"}``); other columns are humanised automatically.
    """

    mapping: dict[str, str] = field(default_factory=dict)
    dayfirst: bool | None = None
    as_of: str | None = None
    sheet: str | None = None
    delimiter: str | None = None
    encoding: str | None = None
    cancellation_pattern: str | None = None
    cleaning: dict[str, bool] = field(default_factory=lambda: dict.fromkeys(CLEANING_RULES, True))
    rfm_segments: dict[str, list[str]] | None = None
    naming_rules: list[dict] | None = None
    customers_key: str | None = None
    memory_limit: str = "1GB"
    threads: int | None = None
    temp_directory: str | None = None
    engine: str = "duckdb"
    spark_master: str = "local[*]"
    spark_conf: dict[str, str] = field(default_factory=dict)
    hash_ids: bool = False
    salt: str | None = None
    input_kind: str = "auto"
    cluster_on: str = "behaviour"
    max_missing: float = 0.5
    min_segment_share: float = 0.03
    min_stability: float = 0.8
    at_risk_share: float = 0.3
    labels: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_type("mapping", self.mapping, dict)
        for key, value in self.mapping.items():
            _check_type(f"mapping.{key}", value, str)
        _check_type("dayfirst", self.dayfirst, (bool, type(None)))
        _check_type("as_of", self.as_of, (str, type(None)))
        if self.as_of is not None:
            try:
                dt.date.fromisoformat(self.as_of)
            except ValueError:
                raise ConfigError(
                    f"as_of must be a date YYYY-MM-DD. Got {self.as_of!r} instead."
                ) from None
        _check_type("hash_ids", self.hash_ids, bool)
        if self.salt is not None and not self.salt:
            raise ConfigError("salt must not be empty; leave it out for a random salt.")
        for name in ("sheet", "delimiter", "encoding", "cancellation_pattern", "customers_key",
                     "temp_directory", "salt"):
            _check_type(name, getattr(self, name), (str, type(None)))
        _check_type("memory_limit", self.memory_limit, str)
        _check_choice("input_kind", self.input_kind, INPUT_KINDS)
        _check_choice("cluster_on", self.cluster_on, CLUSTER_ON)
        for name in ("max_missing", "min_segment_share", "min_stability", "at_risk_share"):
            value = getattr(self, name)
            _check_type(name, value, (float, int))
            if not 0 <= value <= 1:
                raise ConfigError(f"The {name!r} setting must be a share between 0 and 1. "
                                  f"Got {value!r} instead.")
            object.__setattr__(self, name, float(value))
        _check_type("labels", self.labels, dict)
        for key, value in self.labels.items():
            _check_type(f"labels.{key}", value, str)
        if self.engine not in ENGINES:
            raise ConfigError(f"engine must be one of {', '.join(ENGINES)}. "
                              f"Got {self.engine!r} instead.")
        _check_type("spark_master", self.spark_master, str)
        _check_type("spark_conf", self.spark_conf, dict)
        _check_type("threads", self.threads, (int, type(None)))
        _check_type("cleaning", self.cleaning, dict)
        unknown = set(self.cleaning) - set(CLEANING_RULES)
        if unknown:
            raise ConfigError(
                f"Unknown cleaning rule {sorted(unknown)[0]!r}; "
                f"allowed: {', '.join(CLEANING_RULES)}."
            )
        # Fill rules left out of a partial dict.
        object.__setattr__(self, "cleaning", {r: bool(self.cleaning.get(r, True))
                                              for r in CLEANING_RULES})
        if self.rfm_segments is not None:
            _check_type("rfm_segments", self.rfm_segments, dict)
        if self.naming_rules is not None:
            _check_type("naming_rules", self.naming_rules, list)
            check_rules(self.naming_rules)

    def replace(self, **changes: Any) -> Config:
        """A copy with some fields changed; None values leave a field as it is."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})

    @property
    def segments(self) -> dict[str, list[str]]:
        """The RFM segment map in force."""
        return self.rfm_segments if self.rfm_segments is not None else default_rfm_segments()

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
        """Build a config from a plain dict, rejecting unknown keys."""
        allowed = [f.name for f in dataclasses.fields(cls)]
        unknown = [k for k in data if k not in allowed]
        if unknown:
            raise ConfigError(
                f"Unknown key {unknown[0]!r} in {source}; allowed keys: {', '.join(allowed)}."
            )
        return cls(**data)


def _check_choice(name: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(f"The {name!r} setting must be one of {', '.join(allowed)}. "
                          f"Got {value!r} instead.")


def _check_type(name: str, value: Any, kinds: type | tuple[type, ...]) -> None:
    kinds = kinds if isinstance(kinds, tuple) else (kinds,)
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
        allowed = " or ".join("null" if k is type(None) else k.__name__ for k in kinds)
        raise ConfigError(
            f"The {name!r} setting must be {allowed}. Got {value!r} instead."
        )
