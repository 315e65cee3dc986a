"""Thread pools sized to the cores custseg may use, and OpenMP waiting without spinning
(custseg.core.threads): what keeps a run fair on a busy machine."""

import os
import subprocess
import sys
import threading

import numpy as np
import pytest
from threadpoolctl import threadpool_info

import custseg
from custseg.core import threads


def pools() -> set[int]:
    return {p["num_threads"] for p in threadpool_info()}


def test_openmp_is_told_to_wait_passively_unless_the_environment_says_otherwise():
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    code = "import custseg, os; print(os.environ['OMP_WAIT_POLICY'])"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, check=True).stdout.strip()
    assert out == "PASSIVE"
    env["OMP_WAIT_POLICY"] = "ACTIVE"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, check=True).stdout.strip()
    assert out == "ACTIVE"


def test_the_threads_key_limits_every_pool_and_is_undone_after():
    import sklearn.cluster  # noqa: F401  (loads OpenMP, so its pool is seen)

    machine = threads.cores()
    assert machine == len(os.sched_getaffinity(0))
    with threads.using(1) as n:
        assert n == threads.cores() == 1
        assert pools() <= {1}
        here = threading.get_ident()
        # one core: no pool of two, the work runs in this thread
        assert threads.pooled(lambda _: threading.get_ident(), range(3), 2) == [here] * 3
    assert threads.cores() == machine


def test_each_thread_has_its_own_threads_key_and_none_is_left_behind():
    """Two jobs in threads of one process (the dashboard's sessions), the first ending
    inside the second: each sees its own limit throughout, and none is left after."""
    machine = threads.cores()
    one, two = machine + 5, machine + 3  # neither is the machine's
    inside, leave, seen = threading.Event(), threading.Event(), {}

    def first():
        with threads.using(one):
            inside.wait()  # the second is within its limit now
            seen["first"] = threads.cores()
        leave.set()

    def second():
        with threads.using(two):
            inside.set()
            leave.wait()  # the first has ended
            seen["second"] = threads.cores()
        seen["second after"] = threads.cores()

    jobs = [threading.Thread(target=first), threading.Thread(target=second)]
    for job in jobs:
        job.start()
    for job in jobs:
        job.join(timeout=60)
    assert seen == {"first": one, "second": two, "second after": machine}
    assert threads.cores() == machine


def test_each_worker_of_a_pool_limits_its_own_openmp_and_a_pool_inside_runs_in_place():
    """OpenMP's limit is a thread's own (one set before a pool does not reach its workers):
    each worker sets its share, sees it as cores(), and a pool inside it runs in place."""
    import sklearn.cluster  # noqa: F401  (loads OpenMP, so its pool is seen)

    def inside(i):
        me = threading.get_ident()
        nested = threads.pooled(lambda _: threading.get_ident(), range(3), 2)
        return i * i, me, threads.cores(), pools(), nested == [me] * 3

    with threads.using(2):
        seen = threads.pooled(inside, range(6), 2)
        assert pools() <= {2}  # the caller's limits come back after the pool
    assert [s[0] for s in seen] == [i * i for i in range(6)]  # in the items' order
    workers = {s[1] for s in seen}
    assert len(workers) == 2 and threading.get_ident() not in workers
    assert all(cores == 1 and found <= {1} and in_place for _, _, cores, found, in_place in seen)
    with threads.using(4):
        shares = threads.pooled(lambda _: (threads.cores(), pools()), range(4), 2)
    assert all(cores == 2 and found <= {2} for cores, found in shares)
    assert threads.cores() == len(os.sched_getaffinity(0))


def test_an_error_in_a_worker_reaches_the_caller():
    def fails(i):
        if i == 3:
            raise ValueError("item 3")
        return i

    with threads.using(2), pytest.raises(ValueError, match="item 3"):
        threads.pooled(fails, range(5), 2)


def test_a_run_with_one_thread_gives_the_same_segments(tmp_path):
    from custseg.synth import generate

    paths = generate(600, tmp_path / "data", seed=4)
    config = custseg.Config(report=False, figures=False)
    one = custseg.run_segments(paths["transactions"], config=config.replace(threads=1),
                               seed=0).customers
    every = custseg.run_segments(paths["transactions"], config=config, seed=0).customers
    assert (one["segment"].to_numpy() == every["segment"].to_numpy()).all()
    assert np.allclose(one["clv"].fillna(-1), every["clv"].fillna(-1))


def test_each_job_runs_within_its_threads_key(tmp_path, monkeypatch):
    """run_rfm and run_segments compute under the config's threads: the engine opens, and
    the stages run, with that many cores."""
    from custseg.jobs import rfm
    from custseg.synth import generate

    seen = []
    opened = rfm.open_engine

    def spying(config):
        seen.append(threads.cores())
        return opened(config)

    monkeypatch.setattr(rfm, "open_engine", spying)
    monkeypatch.setattr("custseg.jobs.run.open_engine", spying)
    paths = generate(200, tmp_path / "data", seed=2)
    config = custseg.Config(report=False, figures=False, threads=1)
    custseg.run_rfm(paths["transactions"], config=config)
    custseg.run_segments(paths["transactions"], config=config, n_bootstrap=0)
    assert seen == [1, 1]
    assert threads.cores() == len(os.sched_getaffinity(0))


def test_free_cores_are_the_cores_other_processes_leave_idle(monkeypatch):
    """Four CPUs, read twice from /proc/stat: idle ones count, busy ones do not, at least
    one is left, the threads key caps it, and an unreadable /proc/stat gives cores()."""
    monkeypatch.setattr(threads.os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    reads = []
    monkeypatch.setattr(threads, "_cpu_times", lambda cpus: reads.pop(0))

    def free(busy: list[float]) -> int:
        reads[:] = [[(1000, 500)] * 4, [(1100, 500 + round(100 * (1 - b))) for b in busy]]
        return threads.free_cores(window=0)

    assert free([0, 0, 0, 0]) == 4
    assert free([1, 1, 0, 0.1]) == 2
    assert free([1, 0.5, 0.5, 0.6]) == 1
    assert free([1, 1, 1, 1]) == 1
    with threads.using(2):
        assert free([0, 0, 0, 0]) == 2
        reads[:] = [[(1000, 500)] * 4, [(1100, 500)] * 4]  # every CPU busy
        with threads.sharing() as n:
            assert n == threads.cores() == 1
        assert threads.cores() == 2

    def unreadable(cpus):
        raise OSError("no /proc/stat")

    monkeypatch.setattr(threads, "_cpu_times", unreadable)
    assert threads.free_cores(window=0) == 4


def test_free_cores_see_processes_spinning_on_every_core():
    """The real /proc/stat: with one spinning process per core, one core is left."""
    n = threads.cores()
    spinning = [subprocess.Popen([sys.executable, "-c", "while True: pass"])
                for _ in range(n)]
    try:
        import time

        time.sleep(0.5)
        assert threads.free_cores(window=0.2) == 1
    finally:
        for p in spinning:
            p.kill()
            p.wait()


def test_the_cluster_stage_uses_the_cores_left_idle(tmp_path, monkeypatch):
    """A run's k search and bootstraps run on the free cores, measured as the stage
    begins (here one of the machine's), and the run's threads come back after."""
    from custseg.cluster import _segmenter, _staged
    from custseg.synth import generate

    monkeypatch.setattr(threads, "free_cores", lambda window=0.05: 1)
    seen = []
    for module in (_segmenter, _staged):
        monkeypatch.setattr(module, "pooled", lambda fn, items, w: seen.append(
            (threads.cores(), pools())) or threads.pooled(fn, items, w))
    paths = generate(300, tmp_path / "data", seed=2)
    custseg.run_segments(paths["transactions"],
                         config=custseg.Config(report=False, figures=False), n_bootstrap=0)
    assert seen and all(cores == 1 and found <= {1} for cores, found in seen)
    assert threads.cores() == len(os.sched_getaffinity(0))
