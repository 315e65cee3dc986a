"""scikit-learn, the rest of SciPy and Altair imported in a background thread while a job
cleans and rolls up its order lines, work DuckDB does without holding Python's lock:
about 1 s of imports a run, which then mostly overlaps that work.

The command line starts the thread (:func:`start`) once the job's own modules are
imported; it imports when the job says its cleaning begins (:func:`go`: reading the
input is Python's work, which the imports would slow as much as they gain), and the job
calls :func:`wait` before it uses any of these libraries. Until then the job imports none
of them itself (a test checks this), so no module is ever imported by both threads at
once.
"""

from __future__ import annotations

import importlib
import threading
import time

#: What the thread imports: the clustering's, the value models' and the report's
#: libraries, which custseg's own modules import only where they are used.
MODULES = ("scipy.optimize", "scipy.special", "sklearn.ensemble", "sklearn.linear_model",
           "sklearn.cluster", "sklearn.mixture", "sklearn.tree", "sklearn.metrics",
           "sklearn.impute", "sklearn.pipeline", "sklearn.preprocessing", "scipy.stats",
           "scipy.spatial", "scipy.cluster.hierarchy", "altair", "jinja2")
#: Modules both the thread and the job's reading import: imported before the thread starts.
SHARED = ("threadpoolctl", "ssl", "importlib.readers", "importlib.resources.readers")
_thread: threading.Thread | None = None
_go = threading.Event()


def start() -> None:
    """Import :data:`MODULES` in a background thread (once a process)."""
    global _thread
    if _thread is None:
        for name in SHARED:
            importlib.import_module(name)
        _thread = threading.Thread(target=_load, name="custseg-preload", daemon=True)
        _thread.start()


def _load() -> None:
    _go.wait()
    for name in MODULES:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - the job imports it again and says what failed
            return


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
