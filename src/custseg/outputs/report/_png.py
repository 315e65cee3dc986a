"""PNG figures from Vega-Lite specifications (vl-convert, at twice the nominal size).

vl-convert renders one chart at a time and holds the GIL, and its first call in a process
starts a JavaScript runtime (about 0.7 s). :func:`write_pngs` therefore renders half of
the charts in a second process when this one has not rendered yet (a command run once):
the report's eleven PNGs take 3.5 s against 5.3 s in one process. A warm process (a
notebook, a test session, the dashboard) renders in itself.

Run as a script (``python _png.py LIST.json``, a list of ``[path, spec]``), this file is
that second process: it imports nothing but vl-convert.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

SCALE = 2
_warm = False


def png(spec: dict) -> bytes:
    import vl_convert as vlc

    return vlc.vegalite_to_png(spec, scale=SCALE)


def _write(path: str | Path, spec: dict) -> None:
    """Write atomically: a process stopped midway leaves no truncated PNG."""
    tmp = f"{path}.part"
    with open(tmp, "wb") as fh:
        fh.write(png(spec))
    os.replace(tmp, path)


def write_pngs(charts: list[tuple[Path, dict]]) -> None:
    """Write the PNG of each ``(path, spec)``."""
    global _warm
    mine, theirs = charts, charts[1::2] if not _warm and len(charts) > 2 else []
    child, listing = _start(theirs) if theirs else (None, None)
    if child is not None:
        mine = charts[0::2]
    for path, spec in mine:
        _write(path, spec)
    _warm = True
    if child is not None:
        ok = child.wait() == 0
        os.unlink(listing)
        for path, spec in theirs:  # whatever the second process did not write
            if not ok or not Path(path).is_file():
                _write(path, spec)


def _start(charts: list[tuple[Path, dict]]) -> tuple[subprocess.Popen | None, str | None]:
    """The second process rendering ``charts``, or (None, None) when it cannot start."""
    fd, listing = tempfile.mkstemp(prefix="custseg-png-", suffix=".json")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump([[str(p), spec] for p, spec in charts], fh, default=str)
        return subprocess.Popen([sys.executable, __file__, listing],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL), listing
    except OSError:
        Path(listing).unlink(missing_ok=True)
        return None, None


if __name__ == "__main__":
    with open(sys.argv[1], encoding="utf-8") as fh:
        for target, definition in json.load(fh):
            _write(target, definition)
