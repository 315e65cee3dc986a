"""The quickstart notebook runs from top to bottom, and is kept in git without outputs."""

from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parent.parent / "examples" / "quickstart.ipynb"


def test_the_quickstart_notebook_runs(tmp_path):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code and not any(cell.outputs or cell.execution_count for cell in code)
    nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [out for cell in code for out in cell.outputs]
    assert not [out for out in outputs if out.output_type == "error"]
    shown = [out.get("data", {}) for out in outputs]
    assert any("<iframe srcdoc=" in data.get("text/html", "") for data in shown)  # result
    assert any(key.startswith("application/vnd.vegalite") or "vegaEmbed" in str(value)
               for data in shown for key, value in data.items())  # the chart
    text = "\n".join(data.get("text/plain", "") for data in shown)
    assert "k=" in text and "report.html" in text and "clv" in text
