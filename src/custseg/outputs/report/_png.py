"""PNG figures from Vega-Lite specifications (vl-convert, at twice the nominal size).

vl-convert renders one chart at a time and holds the GIL, and its first call in a process
starts a JavaScript runtime (about 0.5 s of a core). So a command run once renders in
other processes: :func:`start_ahead`, called by the command line as a job begins, starts
one renderer per core (at most two) that loads vl-convert and warms its runtime while the
job computes: the first at once, the others once the job's cleaning is done
(:func:`start_deferred` with ``early``, as its value models begin), since the cleaning
keeps every core busy; for a long job, all of them as its profiles begin. At the end
:class:`Pngs` hands them the charts in turn, each as soon as it is built, while this
process builds the next and the page. Renderers draw with vl-convert's own font
(:func:`_own_font_only`); a chart it cannot draw is drawn here with the system's fonts.
Without renderers started ahead, a cold process renders half of the charts itself and
half in a renderer started then. A warm process (a notebook, a test session, the
dashboard) renders in itself.

Run as a script (``python _png.py``), this file is a renderer: it imports nothing but
vl-convert, warms it, then reads lines from its standard input, each the path of a JSON
list of ``[path, spec]``, and writes those PNGs; at the end of its input it stops.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

SCALE = 2
#: The characters vl-convert's own font (Liberation Sans, built into it) draws: Latin,
#: Greek, Cyrillic and common punctuation (checked glyph by glyph in the tests).
OWN_FONT_COVERS = frozenset(
    chr(c) for lo, hi in ((0x09, 0x0A), (0x0D, 0x0D), (0x20, 0x7E), (0xA0, 0x24F),
                          (0x386, 0x386), (0x388, 0x38A), (0x38C, 0x38C), (0x38E, 0x3A1),
                          (0x3A3, 0x3CE), (0x400, 0x4FF), (0x2013, 0x2022),
                          (0x2026, 0x2026), (0x2030, 0x2030), (0x2039, 0x203A),
                          (0x20AC, 0x20AC), (0x2122, 0x2122))
    for c in range(lo, hi + 1))
_warm = False
#: Renderers started by :func:`start_ahead`, not yet given charts.
_ahead: list[subprocess.Popen] = []
#: How many renderers :func:`start_deferred` starts, and whether they are due ``early``.
_deferred = 0
_early = False


def png(spec: dict) -> bytes:
    import vl_convert as vlc

    return vlc.vegalite_to_png(spec, scale=SCALE)


def _write(path: str | Path, spec: dict) -> None:
    """Write atomically: a process stopped midway leaves no truncated PNG."""
    tmp = f"{path}.part"
    with open(tmp, "wb") as fh:
        fh.write(png(spec))
    os.replace(tmp, path)


def start_ahead(workers: int, later: bool = False) -> None:
    """Start ``workers`` renderers for the charts of a job that has just begun: one now,
    the others when the job says its cleaning is done (:func:`start_deferred` with
    ``early``); nothing in a warm process, or when they are started already. ``later``:
    all of them when the job's profiles begin, for a job long enough that they would only
    wait, holding memory (two renderers: 170 MB)."""
    global _deferred, _early
    if _warm or _ahead or _deferred:
        return
    if not later and _start(1):
        workers -= 1
    _deferred, _early = max(0, workers), not later


def start_deferred(early: bool = False) -> None:
    """Start the renderers :func:`start_ahead` left for later (if any): with ``early``,
    only those due once the cleaning is done; without, all (the profiles begin)."""
    global _deferred
    if early and not _early:
        return
    workers, _deferred = _deferred, 0
    _start(workers)


def _start(workers: int) -> int:
    """Start ``workers`` renderers (fewer when one cannot start); how many started."""
    for n in range(workers):
        child = _renderer()
        if child is None:
            return n
        _ahead.append(child)
    return workers


def stop_ahead() -> None:
    """Let the renderers started ahead and not used stop (a job that ended early), and
    forget those not started yet."""
    global _deferred
    _deferred = 0
    while _ahead:
        _stop(_ahead.pop())


atexit.register(stop_ahead)


class Pngs:
    """Writes PNGs as the charts come (a context manager), so that renderers work while
    the caller builds the next chart and the page.

    Renderers started ahead take every chart, in turn. A cold process starts one renderer
    at its second chart and gives it every other chart. A warm process renders in itself.
    What this process keeps, or a renderer did not write, is rendered here on leaving."""

    def __init__(self) -> None:
        global _deferred
        _deferred = 0  # the charts have come: a renderer not started yet never will be
        self._renderers = [_ahead.pop() for _ in range(len(_ahead))]
        self._shares: list[list[tuple[Path, dict]]] = [[] for _ in self._renderers]
        self._shared = bool(self._renderers)  # False: this process renders a share too
        self._listings: list[str] = []
        self._mine: list[tuple[Path, dict]] = []
        self._added = 0

    def __enter__(self) -> Pngs:
        return self

    def add(self, path: Path, spec: dict, text: str | None = None) -> None:
        """Write the PNG of ``spec`` to ``path`` (now in a renderer, or on leaving);
        ``text``: ``spec`` in JSON already (:func:`spec_json`)."""
        text = spec_json(spec) if text is None else text
        self._added += 1
        if self._added == 2 and not self._renderers and not _warm:
            child = _renderer()
            if child is not None:
                self._renderers, self._shares = [child], [[]]
        if (not self._renderers or (not self._shared and self._added % 2)
                or not own_font_covers(spec, text)):
            self._mine.append((path, spec))
            return
        turn = self._added % len(self._renderers)
        self._shares[turn].append((path, spec))
        self._listings.append(_send(self._renderers[turn], [(path, text)]))

    def __exit__(self, kind, error, trace) -> None:
        global _warm
        for child in self._renderers:
            _stop(child)
        if kind is None:
            for path, spec in self._mine:
                _write(path, spec)
            _warm = _warm or bool(self._mine)
        for child, share in zip(self._renderers, self._shares, strict=True):
            ok = child.wait() == 0
            for path, spec in share:  # whatever the renderer did not write
                if kind is None and (not ok or not Path(path).is_file()):
                    _write(path, spec)
                    _warm = True
        for listing in self._listings:
            Path(listing).unlink(missing_ok=True)


def write_pngs(charts: list[tuple[Path, dict]]) -> None:
    """Write the PNG of each ``(path, spec)``."""
    with Pngs() as pngs:
        for path, spec in charts:
            pngs.add(path, spec)


def spec_json(spec: dict) -> str:
    """``spec`` in compact JSON, every character past ASCII escaped (what the report's
    page embeds, the renderers read and :func:`own_font_covers` checks: encoded once)."""
    return json.dumps(spec, separators=(",", ":"), default=str)


def own_font_covers(spec: dict, text: str | None = None) -> bool:
    """Whether vl-convert's own font draws every character of ``spec`` (else the chart
    is rendered in this process, with the system's fonts); ``text``: its
    :func:`spec_json`, which without an escape holds printable ASCII only, all drawn."""
    if text is not None and "\\u" not in text:
        return True
    return set(json.dumps(spec, ensure_ascii=False, default=str)) <= OWN_FONT_COVERS


def _own_font_only(folder: str) -> None:
    """Make vl-convert, in this renderer, load no system font (call before it starts).

    Its font library maps a system font's file anew for each run of text (a chart:
    thousands of times, about half of its time), while its own font is in memory. It
    reads the system's font folders from fontconfig's file, here one empty folder."""
    Path(folder, "none").mkdir()
    conf = Path(folder, "fonts.conf")
    conf.write_text(f"<?xml version='1.0'?>\n<fontconfig><dir>{Path(folder, 'none')}</dir>"
                    "</fontconfig>\n", encoding="utf-8")
    os.environ["FONTCONFIG_FILE"] = str(conf)


def _renderer() -> subprocess.Popen | None:
    """A renderer process (see the module's text), or None when it cannot start."""
    try:
        return subprocess.Popen([sys.executable, __file__], stdin=subprocess.PIPE,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                text=True)
    except OSError:
        return None


def _send(child: subprocess.Popen, charts: list[tuple[Path, str]]) -> str:
    """Give ``child`` its ``charts`` (each spec in :func:`spec_json`, in a listing file);
    the listing's path."""
    fd, listing = tempfile.mkstemp(prefix="custseg-png-", suffix=".json")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write("[" + ",".join(f"[{json.dumps(str(p))},{text}]" for p, text in charts)
                 + "]")
    try:
        child.stdin.write(listing + "\n")
        child.stdin.flush()
    except OSError:  # it has stopped: Pngs renders its share here
        pass
    return listing


def _stop(child: subprocess.Popen) -> None:
    """Tell ``child`` that no more charts come: it stops once it has written its own."""
    with contextlib.suppress(OSError):
        child.stdin.close()


if __name__ == "__main__":
    with tempfile.TemporaryDirectory(prefix="custseg-fonts-") as fonts:
        _own_font_only(fonts)
        png({"mark": "point", "data": {"values": [{"x": 1}]},
             "encoding": {"x": {"field": "x", "type": "quantitative"}}})  # warm the runtime
        for given in filter(None, map(str.strip, sys.stdin)):  # a listing a line, to the end
            with open(given, encoding="utf-8") as fh:
                for target, definition in json.load(fh):
                    _write(target, definition)
