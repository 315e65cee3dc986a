"""The published JSON Schemas (``schemas/``) of ``summary.json``, ``model.json``, a
campaign's manifest and ``measure.json``.

Each is generated from the types (:mod:`custseg.core.summary`, :class:`ModelFile
<custseg.outputs.model.ModelFile>`, :mod:`custseg.core.campaign`); after changing one,
regenerate them from the repository root with ``python -m custseg.outputs.schemas``
(tests/test_summary.py checks that the committed files match).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from custseg.core.campaign import manifest_schema, measure_schema
from custseg.core.summary import schema as summary_schema
from custseg.outputs.model import model_schema

SCHEMAS = {"summary.schema.json": summary_schema, "model.schema.json": model_schema,
           "manifest.schema.json": manifest_schema, "measure.schema.json": measure_schema}


def texts() -> dict[str, str]:
    """File name -> text of each published schema."""
    return {name: json.dumps(make(), indent=2) + "\n" for name, make in SCHEMAS.items()}


def write(folder: str | Path) -> None:
    """Write every schema into ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in texts().items():
        (folder / name).write_text(text, encoding="utf-8")


if __name__ == "__main__":
    write(sys.argv[1] if len(sys.argv) > 1 else "schemas")
