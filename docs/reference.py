"""Write the docs' generated parts from the code, never by hand:

* ``docs/cli-reference.md``: every command of ``custseg``, its arguments and options
  (from the typer app, the same declarations ``--help`` prints);
* ``docs/api.md``: every public name of ``custseg`` (``custseg.__all__``), by group,
  each rendered from its docstring by mkdocstrings where it is defined;
* tables inside hand-written pages, between ``<!-- NAME:start -->`` and
  ``<!-- NAME:end -->``: the config keys (:func:`custseg.core.config.markdown_table`), the
  customer features (``prep/features.py``'s declarations), the predicted columns
  (``prep/predict.COLUMNS``) and every column of ``segments.csv``.

    python docs/reference.py           # rewrite both
    python docs/reference.py --check   # exit 1 if either differs from the code

``tests/test_docs.py`` runs the check, so a flag or key added without this fails CI.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import typer

DOCS = Path(__file__).resolve().parent
CLI_PAGE = DOCS / "cli-reference.md"
GUIDE = DOCS / "guide"
API_PAGE = DOCS / "api.md"
#: The public API by group; every name of ``custseg.__all__`` must be in one.
API_GROUPS = {
    "Whole jobs": ["run_rfm", "run_segments", "compare_algorithms", "backtest",
                   "export_audience", "measure_campaign"],
    "Steps over tables": ["read_table", "read_customers", "map_columns", "clean",
                          "customer_features", "rfm_scores", "balanced_edges"],
    "Segmenters and saved models": ["Segmenter", "StagedSegmenter", "save_model",
                                    "load_model", "SavedModel"],
    "Results and settings": ["RunResult", "Audit", "REASONS", "Config"],
    "Errors and warnings": ["CustsegError", "InputError", "MappingError", "DataError",
                            "ConfigError", "CustsegWarning"],
}


def _cell(text: object, code: bool = False) -> str:
    """One table cell: on one line, ``|`` escaped; ``code``: in backticks, else ``<``
    escaped (typer's value types read ``<int>``)."""
    text = " ".join(str(text).split()).replace("|", "\\|")
    if code:
        return f"`{text}`" if text else ""
    return text.replace("<", "&lt;")


def _default(param) -> str:
    shown = getattr(param, "show_default", None)
    if isinstance(shown, str):
        return shown
    if param.default in (None, (), []) or shown is False:
        return ""
    if getattr(param, "is_flag", False) and not param.secondary_opts:
        return ""
    return f"`{param.default}`"


def _flags(param) -> str:
    names = [*param.opts, *param.secondary_opts]
    return ", ".join(f"`{n}`" for n in names)


def _metavar(param, ctx) -> str:
    if getattr(param, "is_flag", False):
        return ""
    return param.metavar or param.display_type(ctx)


def cli_reference() -> str:
    """The markdown page of every command: usage, help, arguments and options."""
    from custseg.cli import app

    group = typer.main.get_command(app)
    out = ["# CLI reference", "",
           "Generated from the commands' declarations by `python docs/reference.py`; "
           "`custseg COMMAND --help` prints the same. Options that are config keys take "
           "their default from the [config file](guide/configuration.md) when given there.",
           ""]
    for name, command in group.commands.items():
        args = [p for p in command.params if p.param_type_name == "argument"]
        usage = " ".join(["custseg", name, "[OPTIONS]",
                          *(f"{a.name.upper()}{'...' if a.nargs == -1 else ''}"
                            if a.required else f"[{a.name.upper()}{'...' if a.nargs == -1 else ''}]"
                            for a in args)])
        out += [f"## custseg {name}", "", f"```\n{usage}\n```", "",
                (command.help or "").strip(), ""]
        ctx = typer.Context(command)
        rows = ["| argument or option | value | default | meaning |", "|---|---|---|---|"]
        for p in command.params:
            label = f"`{p.name.upper()}`" if p.param_type_name == "argument" else _flags(p)
            need = " (required)" if p.required else ""
            value = _cell(_metavar(p, ctx), code=True)
            rows.append(f"| {label} | {value} | {_cell(_default(p))} | "
                        f"{_cell(getattr(p, 'help', None) or '')}{need} |")
        out += rows + [""]
    return "\n".join(out).rstrip() + "\n"


def api_page() -> str:
    """The API reference: one mkdocstrings block per public name, where it is defined."""
    import importlib

    import custseg

    grouped = [name for names in API_GROUPS.values() for name in names]
    missing = sorted(set(custseg.__all__) - set(grouped))
    if missing:
        raise SystemExit(f"docs/reference.py: put {', '.join(missing)} in an API_GROUPS group")
    out = ["# API reference", "",
           "Every public name of `custseg` (`import custseg; custseg.NAME`), rendered from "
           "its docstring. Generated by `python docs/reference.py`; the "
           "[Python API](python-api.md) page shows them at work.", ""]
    for group, names in API_GROUPS.items():
        out += [f"## {group}", ""]
        for name in names:
            lazy = custseg._LAZY.get(name)
            module = (f"custseg.{lazy}" if lazy else
                      getattr(getattr(custseg, name), "__module__", "custseg"))
            if not hasattr(importlib.import_module(module), name):
                raise SystemExit(f"docs/reference.py: {name} is not in {module}")
            out += [f"::: {module}.{name}", "    options:", "      heading_level: 3", ""]
    return "\n".join(out).rstrip() + "\n"


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _features() -> list[tuple[str, str]]:
    """(name, definition) of each customer feature, in the order segments.csv has them."""
    from custseg.prep.features import DISCOUNT_SHARE, FEATURES

    return [*((f"`{f.name}`", f.description) for f in (*FEATURES, DISCOUNT_SHARE)),
            ("`country`", "the customer's most frequent country (ties: alphabetical)")]


def _predicted() -> list[tuple[str, str]]:
    from custseg.prep.predict import COLUMNS

    return [(f"`{name}`", meaning) for name, meaning in COLUMNS.items()]


def features_table() -> str:
    return _table(("feature", "definition"), _features())


def predictions_table() -> str:
    return _table(("column", "meaning"), _predicted())


def segments_columns_table() -> str:
    """Every column of segments.csv, in order, with its meaning and the page telling more."""
    rows = [("`customer_id`", "the customer, as in the data (salted hashes with "
             "`--hash-ids`)", "[Inputs](inputs.md)")]
    rows += [(*row, "[Features](features.md)") for row in _features()]
    rows += [("*the customer table's columns*", "with `--customers`, or customer attributes "
              "inside the order lines: age, gender, income, region, ... as in the table; "
              "personal columns (names, e-mails, phones, addresses) are left out",
              "[Inputs](inputs.md)"),
             ("`r_score`, `f_score`, `m_score`", "RFM scores 1-5, 5 best",
              "[RFM](features.md#rfm-scores-and-segments)"),
             ("`rfm_code`", "the three scores as one code, e.g. `545`",
              "[RFM](features.md#rfm-scores-and-segments)"),
             ("`rfm_segment`", "the named RFM segment (Champions ... Lost)",
              "[RFM](features.md#rfm-scores-and-segments)")]
    rows += [(*row, "[Predictions](predictions.md)") for row in _predicted()]
    rows += [("`stage`", "lifecycle stage: new, active, reactivated, cooling, at risk or "
              "lapsed", "[Segments](segments.md#lifecycle-stages)"),
             ("`stage_reason`", "why, in words from the customer's own rhythm (\"silent 25 "
              "days: 2.5 of their typical 10-day gaps\")",
              "[Segments](segments.md#lifecycle-stages)"),
             ("`segment`", "`custseg run`: the segment's id (1..k; -1: unclustered)",
              "[Segments](segments.md)"),
             ("`segment_name`", "`custseg run`: the segment's name", "[Segments](segments.md)")]
    return _table(("column", "meaning", "more"), rows)


def _config_table() -> str:
    from custseg.core.config import markdown_table

    return markdown_table()


#: Generated tables inside hand-written pages: page -> marker name -> maker.
MARKED: dict[Path, dict[str, Callable[[], str]]] = {
    GUIDE / "configuration.md": {"config-table": _config_table},
    GUIDE / "features.md": {"features-table": features_table},
    GUIDE / "predictions.md": {"prediction-columns": predictions_table},
    GUIDE / "outputs.md": {"segments-columns": segments_columns_table},
}


def marked_page(path: Path) -> str:
    """``path`` with each generated table made again between its markers."""
    text = path.read_text(encoding="utf-8")
    for name, make in MARKED[path].items():
        start, end = f"<!-- {name}:start -->\n", f"<!-- {name}:end -->"
        if start not in text or end not in text:
            raise SystemExit(f"{path}: the markers {start.strip()} and {end} are missing")
        head, rest = text.split(start, 1)
        text = head + start + make() + end + rest.split(end, 1)[1]
    return text


def pages() -> dict[Path, str]:
    return {CLI_PAGE: cli_reference(), API_PAGE: api_page(),
            **{path: marked_page(path) for path in MARKED}}


def main(argv: list[str]) -> int:
    stale = [path for path, text in pages().items()
             if not path.exists() or path.read_text(encoding="utf-8") != text]
    if "--check" in argv:
        for path in stale:
            print(f"{path} differs from the code: run python docs/reference.py",
                  file=sys.stderr)
        return 1 if stale else 0
    for path, text in pages().items():
        path.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
