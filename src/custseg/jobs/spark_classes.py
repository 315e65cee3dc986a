"""Record the Spark driver's class archive in the background:
``python -m custseg.jobs.spark_classes CONF FOLDER``.

Started by the first Spark session that found no archive, as its process exits
(:mod:`custseg.engines._classes`). At low priority, it reads a small synthetic export as
Parquet and runs custseg's Spark path on it as CSV (reading, cleaning through DuckDB on
the executors, the lines fetched to the driver), so that the archive holds the classes
a run's fixed cost is made of.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
from pathlib import Path


def record(conf: dict[str, str], folder: Path, customers: int = 300) -> bool:
    """Record the archive for ``conf``'s class path settings into ``folder`` over runs on
    the lines of ``customers`` synthetic customers; True if it is now in place."""
    from custseg.engines._classes import record as record_archive

    def run(java_options: str) -> None:
        import pandas as pd

        from custseg.core.config import Config
        from custseg.engines.spark import session
        from custseg.jobs.rfm import run_rfm
        from custseg.synth import generate

        config = Config(engine="spark", spark_master="local[2]", spark_class_archive=False,
                        spark_conf=conf, clv={"enabled": False})
        spark = session(config, java_options=java_options)
        with tempfile.TemporaryDirectory(prefix="custseg-classes-") as tmp:
            lines = Path(generate(customers, Path(tmp), seed=0)["transactions"])
            text = lines.with_suffix(".csv")
            pd.read_parquet(lines).to_csv(text, index=False)
            raw = spark.read.parquet(str(lines))
            raw.groupBy(*raw.columns).count().count()
            run_rfm(text, config=config)

    return record_archive(conf, folder, run)


def main(argv: list[str]) -> int:
    with contextlib.suppress(OSError):
        os.nice(10)  # behind whatever the user runs next
    conf, folder = json.loads(argv[0]), Path(argv[1])
    return 0 if record(conf, folder) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
