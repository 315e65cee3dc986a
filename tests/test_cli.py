import json
import subprocess
import sys

import pandas as pd
import pytest

from conftest import MALL, needs_mall, write_text


def custseg(*args, cwd=None):
    """Run the installed command as a user would."""
    return subprocess.run([sys.executable, "-m", "custseg.cli", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd)


def test_rfm_writes_outputs_and_prints_a_summary(tmp_path, lines):
    path = write_text(lines, tmp_path / "orders.csv")
    run = custseg("rfm", path, "--out", tmp_path / "out")
    assert run.returncode == 0, run.stderr
    assert "3 customers as of 2011-02-02" in run.stdout
    seg = pd.read_csv(tmp_path / "out" / "segments.csv", dtype={"customer_id": str})
    assert list(seg["customer_id"]) == ["A", "B", "C"]
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert set(summary) >= {"input", "mapping", "audit", "customers", "as_of", "rfm_segments",
                            "timings_s"}
    assert summary["input"] == {"path": str(path), "rows": 15, "format": "csv",
                                "encoding": "utf-8", "delimiter": ","}
    excluded = pd.read_csv(tmp_path / "out" / "excluded_customers.csv")
    assert excluded.to_dict("records") == [{"customer_id": "D", "reason": "no_valid_purchase"}]


def test_map_as_of_and_config_file(tmp_path, lines):
    frame = lines.rename(columns={"CustomerID": "Kunde", "InvoiceDate": "Datum"})
    path = write_text(frame, tmp_path / "orders.csv")
    run = custseg("rfm", path, "--map", "customer_id=Kunde", "--map", "invoice_date=Datum",
                  "--as-of", "2011-01-20", "--out", tmp_path / "out", "--quiet")
    assert run.returncode == 0, run.stderr
    assert run.stdout == ""
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["mapping"]["customer_id"] == "Kunde"
    assert summary["as_of"] == "2011-01-20"
    assert summary["audit"]["dropped"]["after_as_of"] == 7
    config = tmp_path / "custseg.toml"
    config.write_text('as_of = "2011-01-20"\n[mapping]\ncustomer_id = "Kunde"\n'
                      'invoice_date = "Datum"\n[cleaning]\nduplicates = false\n')
    run = custseg("rfm", path, "--config", config, "--out", tmp_path / "out2", "-q")
    assert run.returncode == 0, run.stderr
    summary = json.loads((tmp_path / "out2" / "summary.json").read_text())
    assert summary["audit"]["dropped"]["duplicate"] == 0


def bad_inputs(lines):
    garbage_price = lines.astype({"UnitPrice": str}).assign(UnitPrice="#DIV/0!")
    no_customer = lines.drop(columns=["CustomerID"])
    return {
        "empty": (b"", "empty"),
        "header_only": (b"InvoiceNo,CustomerID,InvoiceDate,UnitPrice,Quantity\n", "no data rows"),
        "no_customer": (no_customer.to_csv(index=False).encode(), "No column for customer_id"),
        "bad_price": (garbage_price.to_csv(index=False).encode(), "'UnitPrice'"),
        "all_future": (lines.to_csv(index=False).encode(), "before every order"),
        "binary": (bytes(range(256)) * 10, "binary"),
    }


@pytest.mark.parametrize("case", ["empty", "header_only", "no_customer", "bad_price",
                                  "all_future", "binary"])
def test_bad_input_is_one_line_nonzero_and_leaves_no_folder(tmp_path, lines, case):
    content, message = bad_inputs(lines)[case]
    path = tmp_path / "input.csv"
    path.write_bytes(content)
    extra = ["--as-of", "2000-01-01"] if case == "all_future" else []
    run = custseg("rfm", path, "--out", tmp_path / "out", *extra)
    assert run.returncode == 1
    assert "Traceback" not in run.stderr
    assert message in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1  # one line (soft-wrapped, never folded)
    assert "error:" in run.stderr
    assert not (tmp_path / "out").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]


def test_missing_path_and_bad_map_syntax(tmp_path):
    run = custseg("rfm", tmp_path / "nope.csv", "--out", tmp_path / "o")
    assert run.returncode == 1 and "does not exist" in run.stderr
    assert "Traceback" not in run.stderr
    run = custseg("rfm", tmp_path / "nope.csv", "--map", "customer_id")
    assert run.returncode == 1 and "FIELD=COLUMN" in run.stderr
    run = custseg("run", tmp_path / "nope.csv", "--no-such-flag")  # click's usage error
    assert run.returncode == 2 and "No such option: --no-such-flag" in run.stderr
    assert "internal error" not in run.stderr and "Traceback" not in run.stderr


def test_rerun_replaces_the_output_folder(tmp_path, lines):
    path = write_text(lines, tmp_path / "orders.csv")
    out = tmp_path / "out"
    out.mkdir()
    (out / "stale.txt").write_text("old")
    assert custseg("rfm", path, "--out", out, "-q").returncode == 0
    assert not (out / "stale.txt").exists()
    assert (out / "segments.csv").exists()


def test_customer_table_join_counts_both_sides(tmp_path, lines):
    orders = write_text(lines, tmp_path / "orders.csv")
    people = pd.DataFrame({"customer_id": ["A", "B", "Z"], "age": [30, 41, 55],
                           "gender": ["F", "M", "F"], "email": ["a@x", "b@x", "z@x"],
                           "Full Name": ["Ann", "Bob", "Zoe"]})
    table = write_text(people, tmp_path / "people.csv")
    run = custseg("rfm", orders, "--customers", table, "--out", tmp_path / "out", "-q")
    assert run.returncode == 0, run.stderr
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    info = summary["customer_table"]
    assert info["join"] == {"both": 2, "transactions_only": 1, "customer_table_only": 1}
    assert info["personal_columns_left_out"] == ["email", "Full Name"]
    seg = pd.read_csv(tmp_path / "out" / "segments.csv")
    assert "email" not in seg.columns and "Full Name" not in seg.columns
    assert seg.set_index("customer_id").loc["B", "age"] == 41
    excluded = pd.read_csv(tmp_path / "out" / "excluded_customers.csv")
    assert dict(zip(excluded["customer_id"], excluded["reason"], strict=True)) == {
        "D": "no_valid_purchase", "Z": "no_transactions"}


@needs_mall
def test_customer_table_alone_gets_a_helpful_error(tmp_path):
    run = custseg("rfm", MALL, "--out", tmp_path / "out")
    assert run.returncode == 1
    assert "looks like a customer table" in run.stderr


@needs_mall
def test_inspect_shows_mapping(tmp_path):
    run = custseg("inspect", MALL)
    assert run.returncode == 0
    assert "customer_id" in run.stdout and "200 rows" in run.stdout


def test_the_cli_starts_without_loading_scikit_learn_or_spark():
    """Clustering and Spark load on first use, so `custseg rfm` and `--help` start fast."""
    run = subprocess.run([sys.executable, "-c", "import sys, custseg, custseg.cli; "
                          "print(sorted(m for m in ('sklearn', 'scipy', 'pyspark', "
                          "'custseg.cluster') if m in sys.modules))"],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "[]"


def test_stage_timings_add_up_to_the_wall_clock(tmp_path):
    """summary.json's timings_s cover the whole command, start-up (imports) and writing
    the report included: they add up to the wall clock of the process within a second."""
    import time

    from custseg.synth import generate

    paths = generate(1500, tmp_path / "data", seed=2)
    start = time.perf_counter()
    run = custseg("run", paths["transactions"], "--out", tmp_path / "out", "-q")
    wall = time.perf_counter() - start
    assert run.returncode == 0, run.stderr
    timings = json.loads((tmp_path / "out" / "summary.json").read_text())["timings_s"]
    assert {"start", "read", "clean", "features", "rfm", "value", "cluster", "profile",
            "rules", "teardown", "write"} <= set(timings)
    assert timings["start"] > 0.1  # the imports are counted
    # Only Python's own start and exit are outside the stages (about 0.5 s here; the
    # margin is for a busy test machine, two test workers, where they slow down too).
    assert 0 <= wall - sum(timings.values()) < max(1.5, 0.15 * wall), (wall, timings)


@pytest.mark.parametrize("module, extra, args", [
    ("streamlit", "app", ["app"]),
    ("adbc_driver_postgresql", "postgres",
     ["run", "--db", "postgresql://shop@127.0.0.1:1/shop", "--sql", "select 1"]),
])
def test_a_missing_extra_is_a_one_line_hint(tmp_path, module, extra, args):
    """Without an extra installed, the command names the pip install that brings it."""
    code = ("import importlib.util, sys; real = importlib.util.find_spec; "
            f"importlib.util.find_spec = lambda n, *a: None if n == {module!r} else real(n, *a); "
            f"sys.modules[{module!r}] = None; sys.argv = ['custseg', *{args!r}]; "
            "import custseg.cli; custseg.cli.main()")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr
    assert f"pip install 'custseg[{extra}]'" in lines[0]


def test_run_prints_what_to_do_first_with_each_audience_command(tmp_path):
    """Near the top, before the segments: the actions ranked by the money at stake, and
    for each a command, whole on one line, that picks that segment of the run's folder."""
    import shlex

    from custseg.jobs.export import audience_table
    from custseg.synth import generate

    paths = generate(1500, tmp_path / "data", seed=4)
    out = tmp_path / "my run"
    run = custseg("run", paths["transactions"], "--out", out, "--no-report")
    assert run.returncode == 0, run.stderr
    first = json.loads((out / "summary.json").read_text())["first_actions"]
    assert 3 <= len(first["actions"]) <= 5
    text = run.stdout
    assert text.index("What to do first") < text.index("Segments") < text.index("Wrote")
    assert "Ranked by the money at stake" in text[:text.index("Segments")]
    commands = [line.split(". ", 1)[1] for line in text.splitlines()
                if line.lstrip().startswith(tuple(f"{i}. custseg export" for i in range(1, 6)))]
    assert len(commands) == len(first["actions"])
    table = pd.read_csv(out / "segments.csv", dtype={"customer_id": str})
    for command, action in zip(commands, first["actions"], strict=True):
        args = shlex.split(command)
        assert args[:3] == ["custseg", "export", str(out)]
        assert args[args.index("--holdout") + 1] == "10%"
        _, picked = audience_table(table, [args[args.index("--segment") + 1]])
        assert picked == {action["name"]: action["customers"]}


def test_rfm_prints_what_to_do_first_over_the_named_segments(tmp_path):
    from custseg.synth import generate

    paths = generate(800, tmp_path / "data", seed=5)
    out = tmp_path / "rfm"
    run = custseg("rfm", paths["transactions"], "--out", out, "--no-report")
    assert run.returncode == 0, run.stderr
    first = json.loads((out / "summary.json").read_text())["first_actions"]["actions"]
    text = run.stdout
    assert first and text.index("What to do first") < text.index("RFM segments")
    for action in first:  # named by their RFM names, their audience picked by name
        assert f"(#{action['segment']})" not in text
        assert f'--segment "{action["segment"]}"' in text or \
            f"--segment {action['segment']} " in text


def test_a_mapping_error_of_run_comes_before_the_clustering_libraries_load(tmp_path):
    """`custseg run` with a wrong --map says so from a sample of the file, without loading
    scikit-learn (the second it takes)."""
    from custseg.synth import generate

    paths = generate(200, tmp_path / "data", seed=1)
    code = ("import sys\nfrom custseg import cli\nsys.argv = ['custseg', 'run', sys.argv[1], "
            "'--map', 'customer_id=Nope', '--out', sys.argv[2]]\ntry:\n    cli.main()\n"
            "except SystemExit as exc:\n    print(exc.code, 'sklearn' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code, str(paths["transactions"]),
                           str(tmp_path / "out")], capture_output=True, text=True)
    assert proc.stdout.split() == ["1", "False"], proc.stderr
    assert "no column 'Nope'" in proc.stderr and not (tmp_path / "out").exists()


def test_run_samples_its_input_and_reads_its_columns_once(tmp_path, monkeypatch):
    """The sample the early mapping check takes, and the roles it reads there, are the
    run's: a large file is not sampled, nor its columns read, twice."""
    from custseg import cli as command
    from custseg.jobs import rfm
    from custseg.synth import generate

    paths = generate(300, tmp_path / "data", seed=2)
    sampled, read = [], []
    original, reading_of = rfm.peek, rfm.reading_of
    monkeypatch.setattr(rfm, "peek", lambda *a, **k: sampled.append(a[0]) or original(*a, **k))
    monkeypatch.setattr(rfm, "reading_of",
                        lambda *a, **k: read.append(a[0]) or reading_of(*a, **k))
    monkeypatch.setattr(sys, "argv", ["custseg", "run", str(paths["transactions"]), "--out",
                                      str(tmp_path / "out"), "-q", "--no-report"])
    command.main()
    assert (tmp_path / "out" / "segments.csv").is_file()
    assert len(sampled) == 1 and not rfm._checked
    assert len(read) == 1
