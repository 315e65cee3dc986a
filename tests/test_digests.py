"""Refactoring leaves the outputs unchanged: segments.csv, model.json and report.html of
the demo, Online Retail and a customer table (Mall) hash to the digests recorded before
the change (``tests/data/digests.json``; the version string is masked).

The digests depend on the numerical libraries and the processor's vector instructions,
so they are compared only under the versions and the kind of processor they were
recorded with; ``python tests/test_digests.py`` records them again.
The same libraries give floats that differ in the last bits on another processor (numpy's
and OpenBLAS's kernels for AVX-512 against AVX2 differ by up to 2e-12, relative), so
model.json's and report.html's decimals are hashed to four significant figures, and the
chart data's names, which hash those decimals, are masked.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

from conftest import MALL, ONLINE_RETAIL

DIGESTS = Path(__file__).parent / "data" / "digests.json"
FILES = ("segments.csv", "model.json", "report.html")
#: Libraries whose versions change the numbers or the rendered report.
LIBRARIES = ("numpy", "scipy", "scikit-learn", "pandas", "duckdb", "pyarrow", "altair",
             "vl-convert-python", "kmodes")


def _versions() -> dict[str, str]:
    out = {}
    for name in LIBRARIES:
        try:
            out[name] = version(name)
        except Exception:  # noqa: BLE001 - not installed
            out[name] = "absent"
    out["processor"] = _processor()
    return out


def _processor() -> str:
    """The vector instructions numpy uses and the kernels OpenBLAS chose: with the same
    libraries, an AVX2 processor and an AVX-512 one fit the models to slightly different
    last digits, and segments.csv (hashed as it is) then differs in a rounded value."""
    import numpy as np  # noqa: F401 - loads OpenBLAS for threadpoolctl
    from numpy._core._multiarray_umath import __cpu_features__
    from threadpoolctl import threadpool_info

    simd = [k for k in ("AVX512F", "AVX2", "AVX", "ASIMD") if __cpu_features__.get(k)]
    blas = sorted({str(i.get("architecture")) for i in threadpool_info()
                   if i.get("internal_api") == "openblas"})
    return f"{simd[0] if simd else 'none'}, OpenBLAS {'/'.join(blas) or 'absent'}"


DECIMAL = re.compile(r"(?<![\w.])-?(?:\d+\.\d*|\.\d+)(?:[eE][-+]?\d+)?|-?\d+[eE][-+]?\d+")


def _figures(match: re.Match) -> str:
    value = float(match.group())
    return "0" if abs(value) < 1e-9 else f"{value:.4g}"


def normalised(text: str) -> str:
    """``text`` with the version masked, decimals to four significant figures, and the
    names derived from them (model.json's checksum, Altair's data set names) masked."""
    text = text.replace(version("custseg"), "VERSION")
    text = re.sub(r'"checksum": "[0-9a-f]+"', '"checksum": ""', text)
    text = re.sub(r"data-[0-9a-f]{32}", "data-", text)
    return DECIMAL.sub(_figures, text)


def _digest(path: Path) -> str:
    text = path.read_text(encoding="utf-8")
    if path.name == "segments.csv":  # rounded to cents already: hashed as it is
        text = text.replace(version("custseg"), "VERSION")
    else:
        text = normalised(text)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _cli(*args: str, cwd: Path) -> None:
    run = subprocess.run([sys.executable, "-m", "custseg.cli", *args, "-q"], cwd=cwd,
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr


def outputs(folder: Path) -> dict[str, dict[str, str]]:
    """Run the three jobs in ``folder`` (relative paths, so the digests do not depend on
    where the test runs) and hash their outputs."""
    (folder / "online_retail.parquet").symlink_to(ONLINE_RETAIL)
    (folder / "mall_customers.csv").symlink_to(MALL)
    _cli("synth", "--customers", "5000", "--seed", "42", "--out", "data", cwd=folder)
    _cli("run", "data/transactions.parquet", "--customers", "data/customers.parquet",
         "--out", "demo", cwd=folder)
    _cli("run", "online_retail.parquet", "--out", "retail", cwd=folder)
    _cli("run", "mall_customers.csv", "--out", "mall", cwd=folder)
    return {run: {name: _digest(folder / run / name) for name in FILES}
            for run in ("demo", "retail", "mall")}


@pytest.mark.skipif(not (ONLINE_RETAIL.exists() and MALL.exists()),
                    reason="Online Retail and Mall are needed from ../shared/data")
def test_outputs_match_the_digests_recorded_before_the_refactoring(tmp_path):
    recorded = json.loads(DIGESTS.read_text(encoding="utf-8"))
    if recorded["versions"] != _versions():
        pytest.skip(f"digests were recorded under {recorded['versions']}; these libraries "
                    f"and this processor are {_versions()} (record again: python "
                    "tests/test_digests.py)")
    assert outputs(tmp_path) == recorded["digests"]


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        DIGESTS.parent.mkdir(exist_ok=True)
        DIGESTS.write_text(json.dumps({"versions": _versions(), "digests": outputs(Path(tmp))},
                                      indent=2) + "\n", encoding="utf-8")
    print(f"Wrote {DIGESTS}")
