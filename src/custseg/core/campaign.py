"""The typed files of a campaign: the manifest ``custseg export --holdout`` writes beside
its target and control files, and ``measure.json`` of ``custseg measure``.

:func:`load_manifest` reads a manifest back (one :class:`InputError` line naming the file
and the bad field); :func:`manifest_schema` and :func:`measure_schema` are the published
JSON Schemas (``schemas/``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgspec

from custseg.core.exceptions import InputError
from custseg.core.summary import Block, Currency

MANIFEST_VERSION = 1


class RunRef(Block, kw_only=True):
    """The run the groups were drawn from."""

    path: str | None  # its folder (None: drawn in the dashboard, from no folder)
    fingerprint: str  # SHA-256 of its customers and their segments (see jobs.campaign)
    as_of: str | None
    customer_ids: str = "as in the data"  # or "salted hashes": later orders are hashed too


class Window(Block, kw_only=True):
    """The days the campaign's effect is measured over: ``start`` up to, not including,
    ``end``."""

    start: str
    end: str
    days: int


class SegmentSplit(Block, kw_only=True):
    """One segment's split and what it can detect."""

    segment: str  # its id in the run (an RFM segment's name in an rfm folder)
    name: str
    customers: int
    target: int
    control: int
    base_rate: float | None  # share expected to buy in the window without the campaign
    base_rate_from: str  # "validated prediction" or "past purchase rate"
    min_detectable_uplift: float | None  # absolute, 80% power, 5% / tests (None: too few)
    holdout_needed: float | None = None  # the share that detects campaign.min_uplift
    warning: str | None = None


class Manifest(Block, kw_only=True):
    """What ``custseg export --holdout`` split, and how: enough to measure it later."""

    version: int
    created: str  # when the split was made (UTC, ISO 8601)
    run: RunRef
    seed: int
    holdout: float  # the share of each segment held out as its control group
    split: str  # the method, in words
    window: Window
    min_uplift: float  # the uplift every segment was checked against
    power: float
    alpha: float  # two-sided, over all segments: each segment's detectable uplift is at
    files: dict[str, str]  # "target", "control" -> file name beside the manifest
    segments: list[SegmentSplit]
    target: int
    control: int
    warnings: list[str]
    currency: Currency | None = None  # the run's, for the amounts measure writes
    tests: int = 1  # segments tested: each detectable uplift is at alpha / tests, the bar
    # Holm's correction sets the strongest segment


class Comparison(Block, kw_only=True):
    """One measure, the target group against the control group."""

    target: float
    control: float
    uplift: float
    interval: list[float]  # 95% of the uplift
    relative: float | None
    relative_interval: list[float] | None
    p_value: float
    p_adjusted: float | None = None  # Holm, over the segments (buying and revenue)


class SegmentResult(Block, kw_only=True):
    """A segment's (or all segments') target group against its control group."""

    segment: str | None  # None: all segments together
    name: str
    target: int
    control: int
    buyers_target: int
    buyers_control: int
    buying: Comparison | None  # the share who bought (None: a group is empty)
    orders: Comparison | None  # orders per customer
    revenue: Comparison | None  # revenue per customer
    incremental_revenue: float | None  # the revenue uplift times the target group
    incremental_interval: list[float] | None
    incremental_buyers: float | None
    significant: bool  # buying, after Holm's correction, at alpha
    verdict: str


class Outsiders(Block, kw_only=True):
    """Buyers of the window in neither group: counted and left out."""

    customers: int
    orders: int
    revenue: float


class Measurement(Block, kw_only=True):
    """``measure.json``: the uplift of a campaign per segment and in total."""

    version: int
    manifest: str
    orders: str  # the later orders' input, as given
    window: Window
    data_last_day: str | None  # the last day with an order line in the later orders
    days_to_come: int  # days of the window after the data's last day (0: it has closed)
    lines: dict[str, int]  # purchase lines: in the window, before it, after it
    alpha: float
    buying_test: str
    revenue_test: str
    correction: str
    sample_ratio_p: float | None
    sample_ratio_mismatch: bool
    currency: Currency | None
    segments: list[SegmentResult]
    total: SegmentResult
    outsiders: Outsiders
    warnings: list[str]


def encode(part: Block) -> str:
    """The JSON text of a manifest or measurement (2-space indent)."""
    return json.dumps(part.to_dict(), indent=2) + "\n"


def load_manifest(path: str | Path) -> Manifest:
    """A manifest read back; :class:`InputError` naming the file and the bad field."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"No manifest {path}; give the .manifest.json that custseg export "
                         "--holdout wrote.") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise InputError(f"{path} is not valid JSON ({exc}).") from None
    try:
        return msgspec.convert(data, Manifest)
    except msgspec.ValidationError as exc:
        raise InputError(f"{path} is not a custseg manifest: {exc}.") from None


def _schema(kind: type, title: str, description: str) -> dict[str, Any]:
    (main,), defs = msgspec.json.schema_components([kind])
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "title": title,
            "description": description, **main, "$defs": defs}


def manifest_schema() -> dict[str, Any]:
    """The JSON Schema of a campaign manifest."""
    return _schema(Manifest, "custseg campaign manifest",
                   "The target and control groups custseg export --holdout drew, and what "
                   "each segment's split can detect.")


def measure_schema() -> dict[str, Any]:
    """The JSON Schema of ``measure.json``."""
    return _schema(Measurement, "custseg measure.json",
                   "The uplift of a campaign per segment, target against control.")
