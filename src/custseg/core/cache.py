"""custseg's folder in the user's cache: things worth keeping between runs that any run can
make again (vl-convert's JavaScript bundle, the Spark driver's class archive)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """``$XDG_CACHE_HOME/custseg``, or ``~/.cache/custseg`` (not created here)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "custseg"
