"""Java class data sharing for the Spark driver.

A Spark driver loads and verifies some 20,000 classes as it starts and runs its first jobs:
most of a local session's 5 s start-up, and seconds of its first job. Java (13+) maps
classes an earlier JVM loaded from an archive instead (``-XX:SharedArchiveFile``). The
archive lives in custseg's cache folder, one per Java, Spark and class path.

Recording one (``-XX:ArchiveClassesAtExit``) slows a JVM about twice and its exit by 10-15
s, so a user's session never records: the first session that finds no archive starts, as
its process exits, a recorder in the background (as ``git gc --auto`` does), at low
priority: ``python -m custseg.jobs.spark_classes`` runs a small job on synthetic lines
into a file of its own, waits for its JVM to write it, and only then moves it into place
(a half-written archive crashes the JVM that maps it).
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from custseg.core.cache import cache_dir

#: Java's notices about the archive (a mismatch just means starting without it) off.
QUIET = "-Xlog:cds=off -Xlog:cds+dynamic=off"
#: Free disk space a recording needs (an archive is about 170 MB).
FREE_BYTES = 1 << 30
#: A lock this old is a recording that died.
STALE_LOCK_S = 3600
#: An archive no session mapped for this long is deleted when another is recorded.
UNUSED_S = 30 * 24 * 3600
#: Spark settings that change the driver's class path.
_CLASS_PATH_KEYS = ("spark.driver.extraClassPath", "spark.jars", "spark.jars.packages")
#: The recorder's module (a job: it runs custseg on Spark).
RECORDER = "custseg.jobs.spark_classes"


def archive_options(conf: dict[str, str], folder: Path | None = None) -> str:
    """The JVM options that map this machine's archive; "" where there is none (see
    :func:`record_later`) or none can be used (no Java found, a path with spaces)."""
    final = archive_path(conf, folder)
    if final is None or not final.is_file():
        return ""
    return f"-XX:SharedArchiveFile={final} {QUIET}"


def archive_path(conf: dict[str, str], folder: Path | None = None) -> Path | None:
    """Where the archive for ``conf``'s class path goes (None: no Java found, or a path
    Spark would split: it splits its Java options at spaces)."""
    key = _key(conf)
    final = (folder or cache_dir() / "spark") / f"classes-{key}.jsa"
    return None if key is None or re.search(r"[\s\"'\\]", str(final)) else final


def record_later(conf: dict[str, str], folder: Path | None = None) -> None:
    """Start the recorder as this process exits, unless the archive is there or being
    recorded."""
    final = archive_path(conf, folder)
    if final is None or final.is_file() or _live(final.with_suffix(".lock")):
        return
    wanted = {k: conf[k] for k in _CLASS_PATH_KEYS if k in conf}
    atexit.register(_start_recorder, wanted, final.parent)


def _start_recorder(conf: dict[str, str], folder: Path) -> None:
    with contextlib.suppress(OSError):
        subprocess.Popen([sys.executable, "-m", RECORDER, json.dumps(conf), str(folder)],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, start_new_session=True)


def record(conf: dict[str, str], folder: Path, run: Callable[[str], None]) -> bool:
    """Record the archive for ``conf``'s class path into ``folder``: ``run(options)``
    starts a session with these Java options and runs a job; True if the archive is now
    in place. Nothing is done where another process records it, or disk space is short."""
    final = archive_path(conf, folder)
    if final is None or final.is_file():
        return False
    lock = final.with_suffix(".lock")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        if shutil.disk_usage(folder).free < FREE_BYTES or not _take(lock):
            return False
    except OSError:
        return False
    # recordings that died over an hour ago, and archives (of another Java, Spark or
    # environment on this machine) that no session mapped for a month
    for old in [*folder.glob("classes-*.jsa"), *folder.glob("classes-*.tmp")]:
        with contextlib.suppress(OSError):
            used = max(old.stat().st_atime, old.stat().st_mtime)
            if time.time() - used > (UNUSED_S if old.suffix == ".jsa" else STALE_LOCK_S):
                old.unlink()
    recording = folder / f"{final.stem}.{os.getpid()}.tmp"
    try:
        run(f"-XX:ArchiveClassesAtExit={recording} {QUIET}")
    except Exception:
        _stop_jvm(timeout=60)
        _remove(recording, lock)
        return False
    return finish(recording, final, lock)


def finish(recording: Path, final: Path, lock: Path, timeout: float = 300) -> bool:
    """Stop the session, wait for its JVM to write ``recording``, and move it to ``final``
    if the JVM exited cleanly; True if it did."""
    try:
        if _stop_jvm(timeout) == 0 and recording.is_file():
            os.replace(recording, final)
            return True
        return False
    except Exception:  # a cache is never worth an error
        return False
    finally:
        _remove(recording, lock)


def _remove(*paths: Path) -> None:
    for path in paths:
        with contextlib.suppress(OSError):
            path.unlink()


def _stop_jvm(timeout: float) -> int | None:
    """Stop the Spark session and its driver JVM; the JVM's exit status (None: no JVM)."""
    from pyspark import SparkContext

    proc = getattr(SparkContext._gateway, "proc", None)
    if proc is None:
        return None
    if SparkContext._active_spark_context is not None:
        SparkContext._active_spark_context.stop()
    with contextlib.suppress(OSError):
        proc.stdin.close()  # the gateway JVM exits when its stdin closes
    return proc.wait(timeout=timeout)


def _take(lock: Path) -> bool:
    """Take the recording lock (a file holding the owner's pid); one left by a process that
    is gone, or older than :data:`STALE_LOCK_S`, is taken over."""
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            if not _stale(lock):
                return False
            for path in (lock, *lock.parent.glob(f"{lock.stem}.*.tmp")):  # its recording
                with contextlib.suppress(OSError):
                    path.unlink()
            continue
        with os.fdopen(fd, "w") as fh:
            fh.write(str(os.getpid()))
        return True
    return False


def _live(lock: Path) -> bool:
    return lock.exists() and not _stale(lock)


def _stale(lock: Path) -> bool:
    try:
        pid = int(lock.read_text() or 0)
        if time.time() - lock.stat().st_mtime > STALE_LOCK_S:
            return True
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except (OSError, ValueError):  # unreadable, or another user's process: leave it
        return False
    return False


def _key(conf: dict[str, str]) -> str | None:
    """What an archive is valid for: the Java that runs Spark, Spark's jars, and the class
    path settings (None: no Java found)."""
    java_home = os.environ.get("JAVA_HOME")
    java = Path(java_home, "bin", "java") if java_home else shutil.which("java")
    if java is None:
        return None
    try:
        from pyspark.find_spark_home import _find_spark_home

        jvm = Path(java).resolve()
        jars = Path(_find_spark_home(), "jars")
        parts = [str(jvm), jvm.stat().st_mtime_ns, str(jars), jars.stat().st_mtime_ns,
                 *(f"{k}={conf.get(k, '')}" for k in _CLASS_PATH_KEYS)]
    except (OSError, ImportError, SystemExit):  # _find_spark_home exits when it finds none
        return None
    return hashlib.sha1(repr(parts).encode()).hexdigest()[:16]
