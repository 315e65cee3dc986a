"""The documentation: generated pages match the code, the README is one screen with links
that resolve, and every column a run writes to segments.csv is explained.

The site itself is built in strict mode by ``make docs``, which ``make test`` runs first
(a broken link, a page missing from the navigation or a failing tutorial command fails it).
"""

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import custseg
from custseg.synth import generate

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def reference_module():
    spec = importlib.util.spec_from_file_location("docs_reference", DOCS / "reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generated_pages_match_the_code():
    for path, text in reference_module().pages().items():
        assert path.read_text(encoding="utf-8") == text, (
            f"{path.relative_to(ROOT)} differs from the code: run python docs/reference.py")


def test_the_check_fails_on_a_page_that_drifted(tmp_path, monkeypatch):
    module = reference_module()
    stale = tmp_path / "cli-reference.md"
    page = module.CLI_PAGE.read_text(encoding="utf-8")
    stale.write_text("\n".join(line for line in page.splitlines()
                               if "`--holdout`" not in line) + "\n", encoding="utf-8")
    monkeypatch.setattr(module, "CLI_PAGE", stale)
    assert module.main(["--check"]) == 1
    assert module.main([]) == 0  # rewritten from the code
    assert stale.read_text(encoding="utf-8") == page


def _section(page: str, command: str) -> str:
    return page.split(f"## custseg {command}\n", 1)[1].split("\n## ", 1)[0]


@pytest.mark.parametrize("command", ["export", "measure"])
def test_cli_reference_names_every_flag_help_prints(command):
    """Each flag `custseg COMMAND --help` prints (typer's own rendering) is in the
    command's section of the reference, and no other."""
    shown = subprocess.run([sys.executable, "-m", "custseg.cli", command, "--help"],
                           capture_output=True, text=True, env={"COLUMNS": "200", "PATH": ""},
                           check=True).stdout
    panel = re.compile(r"^│\s+(?:\*\s+)?(--[a-z-]+)(?:,\s*-\w)?(?:\s+(--no-[a-z-]+))?")
    printed = set()
    for line in shown.splitlines():  # the options panel's first column
        if match := panel.match(line):
            printed |= {flag for flag in match.groups() if flag}
    assert len(printed) > 5
    section = _section((DOCS / "cli-reference.md").read_text(encoding="utf-8"), command)
    listed = set(re.findall(r"`(--[a-z][a-z-]+)`", section))
    assert printed - {"--help"} == listed, printed ^ listed
    assert "--holdout" in listed if command == "export" else "--orders" in listed


def test_readme_is_one_screen_with_links_that_resolve():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 150
    assert readme.startswith("# custseg\n\n```bash\nmake demo")
    nav = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    targets = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", readme)
    assert len(targets) >= 15
    for target in targets:
        if target.startswith(("http://", "https://")):
            continue
        assert (ROOT / target).is_file(), f"README links to {target}, which does not exist"
        if target.startswith("docs/") and target.endswith(".md"):
            assert target.removeprefix("docs/") in nav, f"{target} is not in mkdocs.yml's nav"


def _documented_columns() -> set[str]:
    page = (DOCS / "guide" / "outputs.md").read_text(encoding="utf-8")
    table = page.split("## The columns of segments.csv", 1)[1].split("\n## ", 1)[0]
    first_cells = [row.split("|")[1] for row in table.splitlines() if row.startswith("| `")]
    return {name for cell in first_cells for name in re.findall(r"`([^`]+)`", cell)}


def test_every_column_of_segments_csv_is_explained(tmp_path):
    """A run of order lines with a customer table: each column it writes is in the docs'
    table of segments.csv columns, except the customer table's own columns."""
    paths = generate(800, tmp_path / "data", seed=11)
    run = custseg.run_segments(paths["transactions"], customers=paths["customers_table"],
                               out_dir=tmp_path / "out",
                               config=custseg.Config(report=False))
    written = list(pd.read_csv(tmp_path / "out" / "segments.csv", nrows=1).columns)
    from_table = set(pd.read_parquet(paths["customers_table"]).columns)
    documented = _documented_columns()
    missing = [c for c in written if c not in documented and c not in from_table]
    assert not missing, f"columns of segments.csv not in docs/guide/outputs.md: {missing}"
    # the predictions and the lifecycle columns are there to be checked, not assumed
    assert {"clv", "churn_risk", "stage", "stage_reason", "segment_name"} <= set(written)
    assert len(run.customers) == len(pd.read_csv(tmp_path / "out" / "segments.csv"))


def test_sphinx_roles_in_docstrings_show_as_code_linked_on_the_page():
    spec = importlib.util.spec_from_file_location("docs_hooks", DOCS / "hooks.py")
    hooks = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hooks)
    html = ('<h3 id="custseg.jobs.rfm.run_rfm">run_rfm</h3><p>See :func:<code>~custseg.run_rfm'
            '</code>, :mod:<code>custseg.cluster._evaluate</code> and :class:<code>Other'
            '</code>.</p>')
    assert hooks._roles_as_code(html) == (
        '<h3 id="custseg.jobs.rfm.run_rfm">run_rfm</h3><p>See <a href="#custseg.jobs.rfm.'
        'run_rfm"><code>run_rfm</code></a>, <code>custseg.cluster._evaluate</code> and '
        '<code>Other</code>.</p>')


def test_every_benchmark_section_says_its_command_and_date():
    page = (DOCS / "benchmarks.md").read_text(encoding="utf-8")
    sections = re.split(r"\n(?=## )", page)[1:]
    assert len(sections) >= 10
    for section in sections:
        title = section.splitlines()[0]
        assert re.search(r"python benchmarks/\w+\.py", section), f"{title}: no command"
        assert re.search(r"\b20\d\d-\d\d-\d\d\b", section), f"{title}: no date measured"
    for name in re.findall(r"`(bench_[\w.-]+\.md)`", page.split("\n## ", 1)[0]):
        assert (ROOT / "benchmarks" / "results" / name).is_file(), name


def test_the_readmes_python_example_runs_on_a_real_shops_orders(tmp_path, monkeypatch):
    """The README's Python block, as written, on CDNOW's sample: orders before 1998 as
    orders.csv, the later ones as later_orders.csv."""
    from test_clv import cdnow_sample

    lines = cdnow_sample().drop(columns="new_id")
    lines["date"] = lines["date"].dt.strftime("%Y-%m-%d")
    lines[lines["date"] < "1998-01-01"].to_csv(tmp_path / "orders.csv", index=False)
    lines[lines["date"] >= "1998-01-01"].to_csv(tmp_path / "later_orders.csv", index=False)
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    code = readme.split("```python\n", 1)[1].split("```", 1)[0]
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(compile(code, "README.md", "exec"), scope)  # noqa: S102 (our own README)
    assert scope["result"].customers["customer_id"].nunique() == len(scope["result"].customers)
    assert (tmp_path / "winback.csv").is_file() and (tmp_path / "measured").is_dir()
    segments = [s.name for s in scope["measured"].segments]
    assert segments == ["Lapsed"], segments


@pytest.mark.parametrize("page, error", [
    ("```python exec=\"on\"\nprint(1 / 0)\n```\n", "ZeroDivisionError"),
    ("[a page](missing.md)\n", "missing.md"),
    ("```console exec=\"on\" source=\"console\"\n$ custseg no-such-command\n```\n", "Usage"),
])
def test_the_strict_build_fails_on_a_failing_example_or_a_broken_link(tmp_path, page, error):
    """mkdocs.yml's own settings (strict, validation, markdown-exec) on a one-page site:
    a failing example or a link to a missing page stops the build; the same page without
    it builds."""
    import yaml

    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
    config.pop("hooks")
    config["plugins"] = [p for p in config["plugins"] if p != "mkdocstrings"
                         and not (isinstance(p, dict) and "mkdocstrings" in p)]
    config.update(docs_dir=str(tmp_path / "docs"), site_dir=str(tmp_path / "site"),
                  nav=["index.md"], exclude_docs="")
    (tmp_path / "docs").mkdir()
    (tmp_path / "mkdocs.yml").write_text(yaml.safe_dump(config), encoding="utf-8")

    def build(text: str) -> subprocess.CompletedProcess:
        (tmp_path / "docs" / "index.md").write_text(f"# Page\n\n{text}", encoding="utf-8")
        # not --quiet: it hides the warnings strict mode counts, and the build passes
        return subprocess.run([sys.executable, "-m", "mkdocs", "build", "-f",
                               str(tmp_path / "mkdocs.yml")], capture_output=True, text=True,
                              env={**os.environ, "NO_MKDOCS_2_WARNING": "1",
                                   "PATH": f"{Path(sys.executable).parent}{os.pathsep}"
                                           f"{os.environ['PATH']}"})

    failed = build(page)
    assert failed.returncode != 0 and error in failed.stdout + failed.stderr, failed
    assert build("Nothing wrong here.\n").returncode == 0
