"""MkDocs hooks: the pages whose examples run as the site builds (:data:`EXECUTED`) run
them each in a folder of its own (deleted after the build), with the custseg of the Python
that builds the site, at a terminal width that fits the page. In the API reference, the
docstrings' Sphinx roles (``:func:`run_rfm` ``) are shown as code, linked where the name
is documented on the page."""

from __future__ import annotations

import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

#: Pages whose code blocks markdown-exec runs.
EXECUTED = ("tutorial.md", "python-api.md")
_work: Path | None = None
_back: str | None = None


def on_pre_build(config, **kwargs) -> None:
    global _work
    bin_dir = str(Path(sys.executable).parent)
    if not os.environ["PATH"].startswith(bin_dir + os.pathsep):  # once, under mkdocs serve
        os.environ["PATH"] = bin_dir + os.pathsep + os.environ["PATH"]
    os.environ["COLUMNS"] = "88"
    _work = Path(tempfile.mkdtemp(prefix="custseg-docs-"))


def on_page_markdown(markdown: str, page, **kwargs) -> str:
    global _back
    if page.file.src_uri in EXECUTED:
        _back = os.getcwd()
        folder = _work / Path(page.file.src_uri).stem
        folder.mkdir()
        os.chdir(folder)
    return markdown


#: A Sphinx role as mkdocstrings renders it: the role's text, then the name as code.
_ROLE = re.compile(r":(?:func|class|meth|mod|data|attr|obj):<code>(~?)([\w.]+)</code>")


def _roles_as_code(html: str) -> str:
    """``:func:`~custseg.run_rfm` `` -> ``run_rfm`` as code, a link when the page has it."""
    anchors = {a.rsplit(".", 1)[-1]: a for a in re.findall(r'id="(custseg\.[\w.]+)"', html)}

    def code(match: re.Match) -> str:
        short, name = match.group(1), match.group(2)
        shown = name.rsplit(".", 1)[-1] if short else name
        target = anchors.get(name.rsplit(".", 1)[-1])
        return (f'<a href="#{target}"><code>{shown}</code></a>' if target
                else f"<code>{shown}</code>")

    return _ROLE.sub(code, html)


def on_page_content(html: str, page, **kwargs) -> str:
    global _back
    if _back is not None:
        os.chdir(_back)
        _back = None
    return _roles_as_code(html) if page.file.src_uri == "api.md" else html


def on_post_build(config, **kwargs) -> None:
    if _work is not None:
        shutil.rmtree(_work, ignore_errors=True)
