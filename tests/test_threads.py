"""Thread pools sized to the cores custseg may use, and OpenMP waiting without spinning
(custseg.core.threads): what keeps a run fair on a busy machine."""

import os
import subprocess
import sys

import numpy as np
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
        workers, limited = threads.per_worker(2)
        assert workers == 1  # one core: no pool of two
    assert threads.cores() == machine
    with threads.using(4):
        workers, limited = threads.per_worker(2)
        with limited:
            assert workers == 2 and pools() <= {2}  # two workers, two threads each


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
