"""scikit-learn, SciPy and Altair imported beside a job (custseg.core.preload): the job
itself imports none of what the background thread imports before it waits for it, so
no module is imported by both threads at once; and a run is the same with it."""

import json
import math
import subprocess
import sys

import pandas as pd
import pytest

import custseg

#: The modules the command line has loaded when it starts the thread.
LOADED = "import custseg.cli, custseg.jobs.run; from custseg.core import preload"

#: Prints the modules the thread imports (started after LOADED, in a fresh process).
THREAD = LOADED + """
import importlib, json, sys
for name in preload.SHARED:  # as start() does before the thread starts
    importlib.import_module(name)
before = set(sys.modules)
preload.start(); preload.wait()
print(json.dumps(sorted(set(sys.modules) - before)))
"""

#: Runs a job (a thread started that imports nothing) and prints the modules the job
#: imported before it waited.
JOB = LOADED + """
import json, sys
preload._load = lambda *args: None
preload.start()
seen = []
preload.wait = lambda: seen.append(sorted(set(sys.modules) - before)) or 0.0
before = set(sys.modules)
custseg.jobs.run.run_segments({path!r}, config=custseg.Config(report=False, figures=False))
print(json.dumps(seen[0]))
"""


def imported(code: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    return set(json.loads(out.strip().splitlines()[-1]))


def test_a_job_imports_nothing_the_thread_imports_before_it_waits(tmp_path):
    from custseg.synth import generate

    lines = generate(300, tmp_path / "data", seed=1)["transactions"]
    table = tmp_path / "people.csv"
    pd.DataFrame({"customer_id": [f"P{i}" for i in range(200)],
                  "age": [20 + i % 50 for i in range(200)],
                  "income": [1000 + 37 * i for i in range(200)]}).to_csv(table, index=False)
    thread = imported(THREAD)
    assert any(m.startswith("sklearn.") for m in thread) and "altair" in thread
    for path in (lines, table):
        job = imported(JOB.format(path=str(path)))
        assert job, path  # it did import modules of its own before waiting
        assert not job & thread, (path, sorted(job & thread)[:10])


def test_a_run_with_the_libraries_loaded_beside_it_is_the_same(tmp_path):
    """The command line (with the thread) writes the segments the library call does."""
    from custseg.synth import generate

    lines = generate(400, tmp_path / "data", seed=2)["transactions"]
    out = tmp_path / "out"
    run = subprocess.run([sys.executable, "-m", "custseg.cli", "run", str(lines), "--out",
                          str(out), "--no-report", "-q"], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    cli = pd.read_csv(out / "segments.csv", dtype={"customer_id": str})
    api = custseg.run_segments(lines, config=custseg.Config(report=False)).customers
    assert list(cli["customer_id"]) == list(api["customer_id"])
    assert (cli["segment"].to_numpy() == api["segment"].to_numpy()).all()
    timings = json.loads((out / "summary.json").read_text())["timings_s"]
    assert timings["start"] > 0


#: Prints, in a fresh process, a SciPy function's docstring as SciPy leaves it, the same
#: docstring as its source has it, whether SciPy still records what the function
#: supports, and what the function computes.
SCIPY_DOCS = """
import ast, inspect, json, sys
from custseg.core import preload
if {as_written}:
    preload.docs_as_written()
import scipy.stats
from scipy._lib import _array_api
from scipy.special import _logsumexp, logsumexp
tree = ast.parse(inspect.getsource(_logsumexp))
source = next(ast.get_docstring(node, clean=False) for node in ast.walk(tree)
              if isinstance(node, ast.FunctionDef) and node.name == "logsumexp")
print(json.dumps({{"doc": logsumexp.__doc__, "source": source,
                  "recorded": len(_array_api.xp_capabilities_table),
                  "skew": float(scipy.stats.skew([2, 8, 0, 4, 1, 9, 9, 0])),
                  "logsumexp": float(logsumexp([1.0, 2.0, 3.0]))}}))
"""


def scipy_docs(as_written: bool) -> dict:
    out = subprocess.run([sys.executable, "-c", SCIPY_DOCS.format(as_written=as_written)],
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def test_scipy_keeps_its_docstrings_as_written_and_computes_the_same():
    import scipy

    from custseg.core import preload

    if ".".join(scipy.__version__.split(".")[:2]) not in preload.DOCS_CHECKED:
        pytest.skip(f"SciPy {scipy.__version__} rewrites its docstrings as usual")
    rewritten, written = scipy_docs(False), scipy_docs(True)
    assert "Array API Standard Support" in rewritten["doc"]  # what SciPy itself does
    assert "Array API Standard Support" not in written["doc"]
    assert written["doc"] == written["source"].lstrip(" \n")
    # SciPy records each function's capabilities all the same, and computes the same
    assert written["recorded"] == rewritten["recorded"] > 100
    assert written["skew"] == rewritten["skew"] == 0.2650554122698573  # SciPy's example
    assert written["logsumexp"] == rewritten["logsumexp"] == pytest.approx(
        math.log(math.exp(1) + math.exp(2) + math.exp(3)))


def test_another_scipy_release_rewrites_its_docstrings_as_usual(monkeypatch):
    import scipy
    from scipy._lib import _array_api, _docscrape

    from custseg.core import preload

    # SciPy's own class, whatever a command run earlier in this process left there
    monkeypatch.setattr(_array_api, "FunctionDoc", _docscrape.FunctionDoc)
    monkeypatch.setattr(scipy, "__version__", "1.99.0")
    preload.docs_as_written()
    assert _array_api.FunctionDoc is _docscrape.FunctionDoc


#: Prints, in a fresh process, the full collections the garbage collector made while the
#: thread imported, its thresholds before and after, and the objects it left frozen.
COLLECTIONS = LOADED + """
import gc, json, threading
full = []
gc.callbacks.append(lambda phase, info: phase == "stop" and info["generation"] == 2
                    and full.append(threading.current_thread().name))
before = gc.get_threshold()
preload.start(); preload.wait()
print(json.dumps({"full": full, "before": before, "after": gc.get_threshold(),
                  "frozen": gc.get_freeze_count()}))
"""


def test_the_imports_run_no_full_collection_and_leave_the_collector_as_it_was():
    """Each full collection walked every object imported so far; the thread's imports
    make none, then freeze what they loaded, and the thresholds are put back."""
    out = subprocess.run([sys.executable, "-c", COLLECTIONS], capture_output=True,
                         text=True, check=True).stdout
    seen = json.loads(out.strip().splitlines()[-1])
    assert "custseg-preload" not in seen["full"], seen["full"]
    assert seen["after"] == seen["before"]
    assert seen["frozen"] > 100_000  # scikit-learn's, SciPy's and Altair's objects


#: A library call in a fresh process: what its thread was given to import, what the job
#: imported from when the thread could begin to when it waited, and what the thread left
#: of the process's state.
LIBRARY = """
import gc, json, sys
import custseg
from custseg.core import preload
thresholds = gc.get_threshold()
given, went, seen = [], [], []
load, go, wait = preload._imported, preload.go, preload.wait
preload._imported = lambda names: given.extend(names) or ({real} and load(names))
preload.go = lambda: went.append(set(sys.modules)) or go()
preload.wait = lambda: seen.append(sorted(set(sys.modules) - went[0])) or wait()
custseg.run_rfm({path!r}, out_dir={out!r}, config=custseg.Config(figures=False))
from scipy._lib import _array_api
print(json.dumps({{"given": given, "job": seen[0], "altair": "altair" in sys.modules,
                  "frozen": gc.get_freeze_count(), "thresholds": gc.get_threshold() == thresholds,
                  "docs": _array_api.FunctionDoc is not preload._AsWritten}}))
"""


def library_call(path, out, real: bool) -> dict:
    """``real``: the thread imports what it is given (else nothing: what the job imported
    from when the thread could begin to when it waited is then the job's own)."""
    code = LIBRARY.format(path=str(path), out=out, real=real)
    done = subprocess.run([sys.executable, "-c", code],
                          capture_output=True, text=True, check=True).stdout
    return json.loads(done.strip().splitlines()[-1])


def test_a_library_call_loads_the_libraries_beside_its_cleaning_and_leaves_the_rest(tmp_path):
    """``run_rfm`` in a notebook's process: the thread imports what the job would, the job
    imports none of it before it waits, and SciPy's docstrings and the collector stay as
    they were; without a report Altair is not imported at all."""
    from custseg.synth import generate

    lines = generate(300, tmp_path / "data", seed=1)["transactions"]
    thread = imported(THREAD)
    with_report = library_call(lines, str(tmp_path / "out"), real=False)
    assert "sklearn.ensemble" in with_report["given"] and "altair" in with_report["given"]
    assert "sklearn.cluster" not in with_report["given"]  # an RFM job clusters nothing
    assert not set(with_report["job"]) & thread  # (the command line's test shows it sees)
    without = library_call(lines, None, real=True)
    assert "sklearn.ensemble" in without["given"] and "altair" not in without["given"]
    assert not without["altair"]
    assert without["docs"] and without["thresholds"] and without["frozen"] == 0
