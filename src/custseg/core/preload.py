"""scikit-learn, the rest of SciPy and Altair imported in a background thread while a job
cleans and rolls up its order lines, work DuckDB does without holding Python's lock:
about 1 s of imports a run, which then mostly overlaps that work.

The command line starts the thread (:func:`start`) once the job's own modules are
imported, a library call (:func:`~custseg.run_rfm`, :func:`~custseg.run_segments`) as it
begins, for the modules not imported yet; it imports when the job says its cleaning
begins (:func:`go`: reading the input is Python's work, which the imports would slow as
much as they gain), and the job calls :func:`wait` before it uses any of these
libraries. Until then the job imports none of them itself (a test checks this), so no
module is ever imported by both threads at once.

A command line's thread first leaves SciPy's docstrings as written (:func:`docs_as_written`): SciPy
rewrites them as it imports, a third of a second a run that a command line never shows.
While it imports, the garbage collector runs seldom (:data:`IMPORTS_GC`): each full
collection walked every object imported so far (three in the imports of 1,000
customers' run, 0.04-0.09 s each). Once the imports are done, every object that exists
is left out of later collections (``gc.freeze``): nearly all are the modules', since
the job is then cleaning in DuckDB or waiting and holds few of its own. The collector's
thresholds are then put back.
"""

from __future__ import annotations

import gc
import importlib
import sys
import threading
import time

#: What the thread imports: the clustering's, the value models' and the report's
#: libraries, which custseg's own modules import only where they are used.
MODULES = ("scipy.optimize", "scipy.special", "sklearn.ensemble", "sklearn.linear_model",
           "sklearn.cluster", "sklearn.mixture", "sklearn.tree", "sklearn.metrics",
           "sklearn.impute", "sklearn.pipeline", "sklearn.preprocessing", "scipy.stats",
           "scipy.spatial", "scipy.cluster.hierarchy", "altair", "jinja2")
#: Of :data:`MODULES`, those only the report uses, and those only the clustering uses.
REPORT_MODULES = ("altair", "jinja2")
CLUSTER_MODULES = ("sklearn.cluster", "sklearn.mixture", "scipy.spatial",
                   "scipy.cluster.hierarchy")
#: Modules both the thread and the job's reading import: imported before the thread starts.
SHARED = ("threadpoolctl", "ssl", "importlib.readers", "importlib.resources.readers")
_thread: threading.Thread | None = None
_go = threading.Event()


def start(command_line: bool = True, report: bool = True, clustering: bool = True) -> None:
    """Import :data:`MODULES` in a background thread, once a process; without
    :data:`REPORT_MODULES` for a job that writes no report, without
    :data:`CLUSTER_MODULES` for one that clusters nothing (an RFM job).

    A command line's thread also keeps SciPy's docstrings as written and runs the
    collector seldom (see above). A library call's (``command_line`` False: a notebook, a
    batch job in Python) touches neither, and imports only the modules not imported yet;
    none missing, no thread.
    """
    global _thread
    if _thread is not None:
        return
    left_out = (() if report else REPORT_MODULES) + (() if clustering else CLUSTER_MODULES)
    names = tuple(name for name in MODULES if name not in left_out
                  and (command_line or name not in sys.modules))
    if not names:
        return
    for name in SHARED:
        importlib.import_module(name)
    _thread = threading.Thread(target=_load, args=(names, command_line),
                               name="custseg-preload", daemon=True)
    _thread.start()


#: The garbage collector's first threshold while the thread imports (Python's default:
#: 700 allocations of container objects between collections of the youngest generation).
IMPORTS_GC = 100_000


def _load(names: tuple[str, ...], command_line: bool) -> None:
    _go.wait()
    if not command_line:
        _imported(names)
        return
    thresholds = gc.get_threshold()
    gc.set_threshold(IMPORTS_GC, *thresholds[1:])
    try:
        docs_as_written()
        _imported(names)
    finally:
        gc.freeze()  # the modules' objects: never garbage
        gc.set_threshold(*thresholds)


def _imported(names: tuple[str, ...]) -> None:
    for name in names:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - the job imports it again and says what failed
            return


#: SciPy releases whose ``xp_capabilities`` reads a docstring as :class:`_AsWritten` has
#: it (checked by the tests); a later one rewrites its docstrings as usual.
DOCS_CHECKED = ("1.17",)


class _AsWritten:
    """Stands for numpydoc's ``FunctionDoc`` in SciPy's ``xp_capabilities``, which parses
    the docstring of each function it marks, appends a table of the array libraries the
    function supports to its notes and writes it back (508 functions as scikit-learn and
    the value models' SciPy load: 0.3 s). Here the note goes nowhere and the docstring
    comes back as written."""

    def __init__(self, func) -> None:
        self._doc = getattr(func, "__doc__", None) or ""

    def __getitem__(self, section: str) -> list:
        return []

    def __str__(self) -> str:
        return "\n" + self._doc  # the decorator drops the first line (a signature)


def docs_as_written() -> None:
    """Make SciPy's array-API decorator keep docstrings as written, for the functions of
    the modules imported after this call, in a SciPy release of :data:`DOCS_CHECKED`
    (nothing in another, or when SciPy is not installed). For a command line's process
    only: the docstrings lose SciPy's table of supported array libraries."""
    try:
        import scipy
    except ImportError:
        return
    if ".".join(scipy.__version__.split(".")[:2]) not in DOCS_CHECKED:
        return
    from scipy._lib import _array_api

    if hasattr(_array_api, "FunctionDoc") and hasattr(_array_api, "xp_capabilities"):
        _array_api.FunctionDoc = _AsWritten


def go() -> None:
    """Let the thread :func:`start` started import now (its job's cleaning begins)."""
    _go.set()


def wait() -> float:
    """Wait for the imports :func:`start` began (letting them begin if they have not);
    the seconds waited (0 when it was not started, or is done)."""
    if _thread is None or not _thread.is_alive():
        return 0.0
    _go.set()
    began = time.perf_counter()
    _thread.join()
    return time.perf_counter() - began
