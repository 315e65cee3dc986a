"""What every benchmark report says about the machine and the library versions."""

from __future__ import annotations

import os
import platform
from importlib.metadata import version


def versions(names: tuple[str, ...]) -> str:
    """``"custseg 0.1.0, duckdb 2.0.0, ..."`` for the named distributions."""
    return ", ".join(f"{name} {version(name)}" for name in names)


def memory_gb() -> float:
    """Total memory of this machine in GiB (Linux)."""
    with open("/proc/meminfo") as fh:
        for line in fh:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024 ** 2
    return float("nan")


def machine_line(names: tuple[str, ...]) -> str:
    """One sentence: cores, memory, system, Python and library versions."""
    return (f"Machine: {os.cpu_count()} cores, {memory_gb():.1f} GB RAM, {platform.system()} "
            f"{platform.release()}, Python {platform.python_version()}; {versions(names)}.")
