"""Audience exports: the customers of chosen segments, as a file for an e-mail or ads tool.

``export_audience(run_dir, segments, out)`` reads a finished run's ``segments.csv`` and
writes the chosen segments' customers (CSV or Parquet). With a holdout (``[campaign]
holdout``, 10% unless set to 0) a random share of each segment is its control group:
``out`` is the target group, ``<out>.control`` the control group, and
``<out>.manifest.json`` says how they were drawn (:mod:`custseg.jobs.campaign`). Contact
columns (an e-mail, a phone) come only from a customer table given for the export, and only
the columns named: custseg leaves personal data out of every run, so they exist nowhere
else.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from custseg.core import summary as sm
from custseg.core.campaign import Manifest, encode
from custseg.core.config import Config
from custseg.core.exceptions import ConfigError, InputError
from custseg.jobs.campaign import CONTROL_SUFFIX, MANIFEST_SUFFIX, group_files, plan_split
from custseg.outputs.rundir import atomic_file, read_segments

#: Columns exported when ``columns`` is not given (those the run has).
DEFAULT_COLUMNS = ("customer_id", "segment", "segment_name", "rfm_segment", "clv", "p_alive",
                   "churn_risk")
FORMATS = ("csv", "parquet")


@dataclass
class Audience:
    """What an export wrote."""

    path: Path
    rows: int
    segments: dict[str, int]  # segment name -> customers
    columns: list[str]
    warnings: list[str] = field(default_factory=list)
    control: Path | None = None  # the control group's file (None: no holdout)
    manifest: Path | None = None
    split: Manifest | None = None


def export_audience(run_dir: str | Path, segments: list[str], out: str | Path, *,
                    columns: list[str] | None = None, fmt: str | None = None,
                    contacts: str | Path | None = None, contact_columns: list[str] = (),
                    config: Config | None = None) -> Audience:
    """Write the customers of ``segments`` (names or ids of a ``custseg run`` folder, or
    RFM segment names of a ``custseg rfm`` one) to ``out``: with ``config.campaign.holdout``
    above 0, the target group there and the control group and manifest beside it."""
    out = Path(out)
    fmt = (fmt or ("parquet" if out.suffix.lower() == ".parquet" else "csv")).lower()
    if fmt not in FORMATS:
        raise ConfigError(f"--format {fmt!r} is not one of {', '.join(FORMATS)}.")
    if not segments:
        raise ConfigError("Name at least one segment with --segment (a name or an id).")
    if contact_columns and contacts is None:
        raise ConfigError("--contact-columns needs --with-contacts FILE, the customer table "
                          "that holds them.")
    if contacts is not None and not contact_columns:
        raise ConfigError("--with-contacts needs --contact-columns, e.g. --contact-columns "
                          "email: only the contact columns named are exported.")
    config = config or Config()
    table = read_segments(run_dir)
    audience, by_name = audience_table(table, segments, columns=columns, where=str(run_dir))
    warnings: list[str] = []
    if contacts is not None:
        people = load_contacts(contacts, list(contact_columns), config)
        audience = audience.merge(people, on="customer_id", how="left", validate="one_to_one")
        missing = int(audience[list(contact_columns)].isna().all(axis=1).sum())
        if missing:
            warnings.append(f"{missing} of {len(audience)} exported customers have no "
                            f"{', '.join(contact_columns)} in {contacts}.")
    out.parent.mkdir(parents=True, exist_ok=True)
    if config.campaign.holdout <= 0:
        with atomic_file(out) as tmp:
            tmp.write_bytes(audience_bytes(audience, fmt))
        return Audience(path=out, rows=len(audience), segments=by_name,
                        columns=list(audience.columns), warnings=warnings)
    paths = group_files(out)
    summary_path = Path(run_dir) / "summary.json"
    summary = sm.load(summary_path) if summary_path.is_file() else None
    groups, manifest = split_audience(
        table, audience, segments, config, summary=summary,
        run_path=str(Path(run_dir).resolve()),
        files={k: paths[k].name for k in ("target", "control")}, where=str(run_dir))
    for kind in ("target", "control"):
        with atomic_file(paths[kind]) as tmp:
            tmp.write_bytes(audience_bytes(groups[kind], fmt))
    with atomic_file(paths["manifest"]) as tmp:
        tmp.write_text(encode(manifest), encoding="utf-8")
    return Audience(path=out, rows=manifest.target, segments=by_name,
                    columns=list(groups["target"].columns),
                    warnings=warnings + manifest.warnings, control=paths["control"],
                    manifest=paths["manifest"], split=manifest)


def split_audience(table: pd.DataFrame, audience: pd.DataFrame, segments: list[str],
                   config: Config, *, summary=None, run_path: str | None = None,
                   files: dict[str, str] | None = None, where: str = "the run"
                   ) -> tuple[dict[str, pd.DataFrame], Manifest]:
    """The target and control groups of an ``audience`` (the rows of ``table`` in
    ``segments``, from :func:`audience_table`), each with its segment and ``group``
    columns, and the manifest of the split (``files``: the names they are written under)."""
    chosen, _ = _chosen(table, segments, where)
    group, manifest = plan_split(table, chosen, config, summary=summary, run_path=run_path,
                                 files=files)
    audience = audience.copy()
    key = "segment" if "segment" in table else "rfm_segment"
    if key not in audience:  # measure reads each customer's segment from the files
        audience.insert(1, key, table.loc[chosen, key].to_numpy())
    audience["group"] = group.to_numpy()
    return {kind: audience[audience["group"] == kind].reset_index(drop=True)
            for kind in ("target", "control")}, manifest


def audience_table(table: pd.DataFrame, segments: list[str], *,
                   columns: list[str] | None = None, where: str = "the run"
                   ) -> tuple[pd.DataFrame, dict[str, int]]:
    """The rows of ``table`` (a run's segments table) in ``segments``, with ``columns``
    (None: :data:`DEFAULT_COLUMNS`), and the customers of each segment by name."""
    chosen, by_name = _chosen(table, segments, where)
    keep = _columns(table, columns, where)
    return table.loc[chosen, keep].reset_index(drop=True), by_name


def campaign_zip(table: pd.DataFrame, segments: list[str], config: Config, *, summary=None,
                 stem: str = "audience", fmt: str = "csv") -> tuple[bytes, Manifest]:
    """A zip of the target and control files of ``segments`` and their manifest, as
    ``custseg export --holdout`` writes them (the dashboard's download: the run is held in
    memory, so the manifest names no run folder; measure checks it against the run on the
    page instead)."""
    import zipfile

    audience, _ = audience_table(table, segments)
    names = {"target": f"{stem}.{fmt}", "control": f"{stem}{CONTROL_SUFFIX}.{fmt}"}
    groups, manifest = split_audience(table, audience, segments, config, summary=summary,
                                      files=names)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for kind, name in names.items():
            archive.writestr(name, audience_bytes(groups[kind], fmt))
        archive.writestr(f"{stem}{MANIFEST_SUFFIX}", encode(manifest))
    return buffer.getvalue(), manifest


def audience_bytes(audience: pd.DataFrame, fmt: str) -> bytes:
    """The file of an audience table: CSV (UTF-8, a header) or Parquet."""
    if fmt == "csv":
        return audience.to_csv(index=False).encode("utf-8")
    buffer = io.BytesIO()
    audience.to_parquet(buffer, index=False)
    return buffer.getvalue()


def _chosen(table: pd.DataFrame, wanted: list[str], where: str
            ) -> tuple[pd.Series, dict[str, int]]:
    """Rows of the wanted segments, and the customers of each by name."""
    if "segment_name" in table:
        names = table["segment_name"].astype(str)
        ids = table["segment"].astype(str) if "segment" in table else names
    elif "rfm_segment" in table:
        names = ids = table["rfm_segment"].astype(str)
    else:
        raise InputError(f"The segments table of {where} has no segments; pass a custseg "
                         "run or rfm folder.")
    folded = names.str.casefold()
    chosen = pd.Series(False, index=table.index)
    by_name: dict[str, int] = {}
    for value in wanted:
        rows = (ids == value.strip()) | (folded == value.strip().casefold())
        if not rows.any():
            known = "; ".join(f"{i}: {n}" if i != n else n
                              for i, n in sorted(set(zip(ids, names, strict=True)),
                                                 key=lambda p: (len(p[0]), p[0])))
            raise InputError(f"No segment {value!r} in {where}; its segments are {known}.")
        chosen |= rows
        by_name[names[rows].iloc[0]] = int(rows.sum())
    return chosen, by_name


def _columns(table: pd.DataFrame, columns: list[str] | None, where: str) -> list[str]:
    if columns is None:
        return [c for c in DEFAULT_COLUMNS if c in table]
    unknown = [c for c in columns if c not in table]
    if unknown:
        raise InputError(f"The segments table of {where} has no column {unknown[0]!r}; its "
                         f"columns are {', '.join(table.columns)}.")
    return list(dict.fromkeys(["customer_id", *columns]))


def load_contacts(path: str | Path, columns: list[str], config: Config) -> pd.DataFrame:
    """``customer_id`` (read as in a run) and the named contact ``columns`` of a customer
    table, one row per customer."""
    from custseg.engines.duckdb import connect
    from custseg.io import load_source
    from custseg.io._customers import find_key
    from custseg.io._parse import id_expr, q

    con = connect(config)
    try:
        source = load_source(con, path, config=config, relation="contacts")
        missing = [c for c in columns if c not in source.columns]
        if missing:
            raise InputError(f"{source.name} has no column {missing[0]!r} (--contact-columns); "
                             f"its columns are {', '.join(source.columns)}.")
        key = find_key(source.columns, config.customers_key, source.name, con=con,
                       relation=source.relation, types=source.types)
        picked = ", ".join(f"CAST({q(c)} AS VARCHAR) AS {q(c)}" for c in columns)
        people = con.execute(f"SELECT {id_expr(key, source.types[key])} AS customer_id, "
                             f"{picked} FROM {q(source.relation)} "
                             "WHERE customer_id IS NOT NULL").df()
    finally:
        con.close()
    return people.drop_duplicates("customer_id", keep="first")
