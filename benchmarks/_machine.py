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


def compiled() -> None:
    """Compile custseg's modules to bytecode (call it in the benchmark's parent process,
    not in a contender's), as an installed wheel has them: an editable
    install in an environment with ``PYTHONDONTWRITEBYTECODE`` set (CI images, sandboxes)
    would compile every module from source at each start (about 0.3 s)."""
    import compileall
    from importlib.util import find_spec

    # found, not imported: importing custseg sets OMP_WAIT_POLICY, which baselines must
    # not inherit
    for folder in find_spec("custseg").submodule_search_locations:
        compileall.compile_dir(folder, quiet=1)


def machine_line(names: tuple[str, ...]) -> str:
    """One sentence: cores, memory, system, Python and library versions."""
    return (f"Machine: {os.cpu_count()} cores, {memory_gb():.1f} GB RAM, {platform.system()} "
            f"{platform.release()}, Python {platform.python_version()}; {versions(names)}.")
