"""The threads custseg's numeric libraries may use, and pools that wait without spinning.

DuckDB, OpenMP (scikit-learn's k-means) and BLAS (numpy, SciPy) each size their thread
pool for the whole machine; on a busy machine, or with two pools inside each other, their
threads spin while they wait and the work slows many times over. custseg therefore:

- asks OpenMP to wait passively (``OMP_WAIT_POLICY=PASSIVE``, set when custseg is
  imported, unless the environment says otherwise);
- counts the cores this process may run on (:func:`cores`: its CPU affinity, or the
  ``threads`` config key when set, see :func:`using`);
- limits OpenMP and BLAS to them (threadpoolctl), and splits them between the workers of
  a pool (:func:`pooled`) so that no pool runs inside another at full size: each worker
  sets its own OpenMP limit and sees its share as :func:`cores` (OpenMP's limit is a
  thread's own: one set before a pool starts does not reach its workers);
- where a stage's threads wait on each other (the clustering's pools), uses only the
  cores other processes leave idle (:func:`sharing`): a thread that waits at a barrier
  for one the busy machine has descheduled is slower than no second thread at all
  (retail:5 beside two spinning processes: the cluster stage 8.4 s on two threads, 3.6 s
  on one, 2.4 s on a quiet machine).
"""

from __future__ import annotations

import functools
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import TypeVar

#: A pool worker's share of the cores (:func:`pooled`), which :func:`cores` returns there.
_worker = threading.local()
#: The ``threads`` limit in force in each thread (:func:`using`): a thread's own, as the
#: dashboard runs each session's job in a thread of one process (a limit of the process
#: was left behind by one session's job ending within another's, for every later run).
_limit = threading.local()
T, R = TypeVar("T"), TypeVar("R")


def wait_passively() -> None:
    """OpenMP threads sleep while they wait (read when OpenMP starts: call it before
    scikit-learn is imported; a value already in the environment wins)."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def cores() -> int:
    """The threads custseg may use: in a worker of :func:`pooled`, its share; else the
    ``threads`` config key in force, else the cores this process may run on."""
    share = getattr(_worker, "share", None)
    if share:
        return share
    limit = getattr(_limit, "value", None)
    if limit:
        return limit
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


@contextmanager
def using(threads: int | None) -> Iterator[int]:
    """Within the block, :func:`cores` is ``threads`` (None: the machine's) and OpenMP and
    BLAS pools are limited to it."""
    from threadpoolctl import threadpool_limits

    before = getattr(_limit, "value", None)
    _limit.value = threads or None
    try:
        with threadpool_limits(limits=cores()):
            yield cores()
    finally:
        _limit.value = before


def free_cores(window: float = 0.05) -> int:
    """The cores of :func:`cores` that other processes leave idle now (at least one): its
    CPUs less their busy share over ``window`` seconds (``/proc/stat``, while this thread
    sleeps); :func:`cores` where that cannot be read (not Linux)."""
    n = cores()
    if n == 1:  # nothing to decide: spare the wait
        return n
    try:
        cpus = sorted(os.sched_getaffinity(0))
        before = _cpu_times(cpus)
        time.sleep(window)
        after = _cpu_times(cpus)
    except (AttributeError, OSError, ValueError, KeyError):
        return n
    busy = 0.0
    for (total0, idle0), (total1, idle1) in zip(before, after, strict=True):
        if total1 > total0:
            busy += 1 - (idle1 - idle0) / (total1 - total0)
    return max(1, min(n, round(len(cpus) - busy)))


def _cpu_times(cpus: list[int]) -> list[tuple[int, int]]:
    """Each CPU's (total, idle) clock ticks since boot (idle counts I/O wait)."""
    rows = {}
    with open("/proc/stat", encoding="ascii") as fh:
        for line in fh:
            name, *ticks = line.split()
            if name.startswith("cpu") and name != "cpu":
                values = [int(t) for t in ticks[:8]]  # user .. steal (guest is in user)
                rows[int(name[3:])] = (sum(values), values[3] + values[4])
    return [rows[c] for c in cpus]


@contextmanager
def sharing() -> Iterator[int]:
    """Within the block, :func:`cores` (and the OpenMP and BLAS pools) is
    :func:`free_cores`: the cores other processes leave idle as it begins."""
    with using(free_cores()) as n:
        yield n


def pooled(fn: Callable[[T], R], items: Iterable[T], workers: int) -> list[R]:
    """``fn`` of each item, in order, computed by a pool of at most ``workers`` threads
    that share :func:`cores` (one: in this thread, no pool). Each worker limits OpenMP to
    its share itself, and :func:`cores` is that share within it, so that a pool inside it
    runs in place; BLAS's limit is the process's, set here for the whole pool."""
    from concurrent.futures import ThreadPoolExecutor

    from threadpoolctl import threadpool_limits

    items = list(items)
    n = max(1, min(workers, cores(), len(items)))
    if n == 1:
        return [fn(item) for item in items]
    share = max(1, cores() // n)

    def work(item: T) -> R:
        _worker.share = share
        try:
            with threadpool_limits(limits=share, user_api="openmp"):
                return fn(item)
        finally:
            _worker.share = None

    with threadpool_limits(limits=share, user_api="blas"), \
            ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(work, items))


def config_threads(job: Callable) -> Callable:
    """Run a job (a function with a ``config`` keyword) within :func:`using` its config's
    ``threads``."""
    @functools.wraps(job)
    def limited(*args, **kwargs):
        with using(getattr(kwargs.get("config"), "threads", None)):
            return job(*args, **kwargs)
    return limited
