"""MkDocs hooks: the tutorial's commands run in a folder of their own (deleted after the
build), with the custseg of the Python that builds the site, at a terminal width that fits
the page."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

_work: Path | None = None
_back: str | None = None


def on_pre_build(config, **kwargs) -> None:
    global _work
    os.environ["PATH"] = str(Path(sys.executable).parent) + os.pathsep + os.environ["PATH"]
    os.environ["COLUMNS"] = "88"
    _work = Path(tempfile.mkdtemp(prefix="custseg-tutorial-"))


def on_page_markdown(markdown: str, page, **kwargs) -> str:
    global _back
    if page.file.src_uri == "tutorial.md":
        _back = os.getcwd()
        os.chdir(_work)
    return markdown


def on_page_content(html: str, page, **kwargs) -> str:
    global _back
    if _back is not None:
        os.chdir(_back)
        _back = None
    return html


def on_post_build(config, **kwargs) -> None:
    if _work is not None:
        shutil.rmtree(_work, ignore_errors=True)
