"""The local web dashboard (Streamlit): upload, map columns, segment, explore, download.

``serve(host, port)`` runs ``main.py`` with Streamlit, bound to 127.0.0.1 unless told
otherwise.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

from custseg.core.exceptions import ConfigError, InputError

#: Upload size cap in MB (Streamlit's server.maxUploadSize).
DEFAULT_MAX_UPLOAD_MB = 1024


def inside_upload_area(path: str | Path, area: str | Path) -> Path:
    """``path`` resolved (symbolic links followed) when it lies inside the upload ``area``;
    otherwise :class:`~custseg.core.exceptions.InputError`: the dashboard reads nothing else."""
    root = Path(area).resolve()
    try:
        target = Path(path).resolve()
    except (OSError, RuntimeError, ValueError):  # a symlink loop, a NUL byte
        target = None
    if target is None or target == root or not target.is_relative_to(root):
        raise InputError(f"Refused to read {str(path)!r}: the dashboard only reads files "
                         "uploaded in this session. Upload the file instead.")
    return target


def command(host: str = "127.0.0.1", port: int = 8501,
            max_upload_mb: int = DEFAULT_MAX_UPLOAD_MB) -> list[str]:
    """The streamlit command line that serves the dashboard."""
    return [sys.executable, "-m", "streamlit", "run", str(Path(__file__).with_name("main.py")),
            "--server.address", host, "--server.port", str(port), "--server.headless", "true",
            "--server.maxUploadSize", str(max_upload_mb), "--browser.gatherUsageStats", "false",
            "--server.fileWatcherType", "none", "--global.developmentMode", "false",
            "--client.toolbarMode", "minimal"]


def serve(host: str = "127.0.0.1", port: int = 8501,
          max_upload_mb: int = DEFAULT_MAX_UPLOAD_MB) -> int:
    """Run the dashboard until interrupted; returns Streamlit's exit code."""
    if importlib.util.find_spec("streamlit") is None:
        raise ConfigError("The dashboard needs Streamlit: pip install 'custseg[app]'.")
    return subprocess.call(command(host, port, max_upload_mb))
