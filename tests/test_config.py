import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import typer

import custseg
from conftest import MALL, needs_mall
from custseg import Config, ConfigError, Segmenter
from custseg.cli import app as cli_app
from custseg.core.config import SETTINGS, default_rfm_segments


def test_unknown_key_lists_allowed_keys(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('as_off = "2011-01-01"\n')
    with pytest.raises(ConfigError, match="Unknown key 'as_off'.*allowed keys: .*as_of"):
        Config.from_file(path)


@pytest.mark.parametrize("kwargs, message", [
    ({"as_of": "31/12/2011"}, "YYYY-MM-DD"),
    ({"dayfirst": "yes"}, "'dayfirst' setting must be bool or null"),
    ({"cleaning": {"dupes": False}}, "Unknown cleaning rule 'dupes'; allowed: .*duplicates"),
    ({"threads": True}, "'threads' setting must be int"),
])
def test_bad_values_name_the_key(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        Config(**kwargs)


def test_json_config_and_custom_segments(tmp_path, lines):
    segments = default_rfm_segments()
    merged = {"Best": segments.pop("Champions") + segments.pop("Loyal Customers"), **segments}
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"rfm_segments": merged, "memory_limit": "512MB"}))
    config = Config.from_file(path)
    result = custseg.run_rfm(frame=lines, config=config)
    names = [s["name"] for s in result.summary["rfm_segments"]]
    assert names[0] == "Best" and "Champions" not in names
    assert set(result.customers["rfm_segment"]) <= set(names)


def test_incomplete_segment_map_is_rejected_before_any_work(lines):
    segments = default_rfm_segments()
    segments.pop("Lost")
    with pytest.raises(ConfigError, match="6 cell"):
        custseg.run_rfm(frame=lines, config=Config(rfm_segments=segments))


def test_bad_memory_limit_is_a_config_error(lines):
    with pytest.raises(ConfigError, match="memory_limit"):
        custseg.run_rfm(frame=lines, config=Config(memory_limit="lots"))


@needs_mall
def test_customer_table_alone_is_read_with_kinds():
    people = custseg.read_customers(MALL)
    assert len(people) == 200 and people["customer_id"].is_unique
    assert people["customer_id"].iloc[0] == "0001"  # ids keep their leading zeros
    numeric = people.select_dtypes("number").columns.tolist()
    assert numeric == ["Age", "Annual Income (k$)", "Spending Score (1-100)"]
    assert set(people["Genre"]) == {"Male", "Female"}


# ------------------------------------------------------------------ one declaration per key
ALGORITHMS_IN_WORDS = "one of kmeans, hierarchical, gmm, kprototypes, dbscan, hdbscan, affinity"


def cli(*args):
    return subprocess.run([sys.executable, "-m", "custseg.cli", *map(str, args)],
                          capture_output=True, text=True)


def people(path):
    """A small customer table with three planted groups."""
    rng = np.random.default_rng(0)
    centres = np.repeat([[10, 1, 20], [60, 8, 45], [200, 20, 70]], 30, axis=0)
    values = centres * (1 + 0.05 * rng.standard_normal(centres.shape))
    frame = pd.DataFrame(values.round(2), columns=["spend", "visits", "age"])
    frame.insert(0, "customer_id", [f"C{i:03d}" for i in range(len(frame))])
    frame.to_csv(path, index=False)
    return path


def test_clustering_table_drives_run_and_a_flag_overrides_it(tmp_path):
    table = people(tmp_path / "people.csv")
    config = tmp_path / "c.toml"
    config.write_text('[clustering]\nk = 3\nalgorithm = "gmm"\n')
    run = cli("run", table, "--config", config, "--out", tmp_path / "a", "-q")
    assert run.returncode == 0, run.stderr
    summary = json.loads((tmp_path / "a" / "summary.json").read_text())
    assert (summary["algorithm"], summary["k"]) == ("gmm", 3)
    run = cli("run", table, "--config", config, "--k", "2", "--out", tmp_path / "b", "-q")
    assert run.returncode == 0, run.stderr
    summary = json.loads((tmp_path / "b" / "summary.json").read_text())
    assert (summary["algorithm"], summary["k"]) == ("gmm", 2)


def test_bad_clustering_value_is_one_line_naming_the_key(tmp_path):
    config = tmp_path / "c.toml"
    config.write_text("[clustering]\nk = 1\n")
    run = cli("run", people(tmp_path / "people.csv"), "--config", config,
              "--out", tmp_path / "out")
    assert run.returncode == 1
    assert "Traceback" not in run.stderr
    assert run.stderr.strip().splitlines() == [
        "error: The 'clustering.k' setting must be 'auto' or an int >= 2. Got 1 instead."]
    assert not (tmp_path / "out").exists()


def test_unknown_clustering_key_lists_the_allowed_ones(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"clustering": {"algoritm": "gmm"}}))
    with pytest.raises(ConfigError, match=r"Unknown key 'algoritm' in .*\[clustering\]; "
                                          r"allowed keys: algorithm, k, k_range"):
        Config.from_file(path)


def test_config_and_segmenter_share_one_check():
    with pytest.raises(ConfigError, match=f"The 'clustering.algorithm' setting must be "
                                          f"{ALGORITHMS_IN_WORDS}. Got 'kmean' instead."):
        Config(clustering={"algorithm": "kmean"})
    with pytest.raises(ConfigError, match=f"The 'algorithm' parameter of Segmenter must be "
                                          f"{ALGORITHMS_IN_WORDS}. Got 'kmean' instead."):
        Segmenter(algorithm="kmean").fit(np.zeros((10, 2)))
    with pytest.raises(ConfigError, match="'clustering.options' setting takes, for gmm, "
                                          r"\['covariance_type'\]. Got 'eps' instead."):
        Config(clustering={"algorithm": "gmm", "options": {"eps": 0.4}})


def test_file_values_are_normalised_as_flags_are():
    clustering = Config.from_dict({"clustering": {"k_range": [3, 6]}}).clustering
    assert clustering.k_range == (3, 6)


def test_run_segments_keywords_default_to_the_config(tmp_path):
    frame = pd.read_csv(people(tmp_path / "people.csv"))
    config = Config(clustering={"k": 3})
    assert custseg.run_segments(frame=frame, config=config).summary["k"] == 3
    assert custseg.run_segments(frame=frame, config=config, k=2).summary["k"] == 2


@pytest.mark.parametrize("command", ["rfm", "run", "compare", "score", "track"])
def test_every_flag_is_a_declared_key(command):
    click_command = typer.main.get_command(cli_app).commands[command]
    options = [p for p in click_command.params if p.param_type_name == "option"
               and p.opts[0] not in ("--config", "--quiet", "--help")]
    assert options
    for option in options:
        key = option.name.replace("__", ".")
        assert key in SETTINGS, option.opts
        assert SETTINGS[key].flag.split("/")[0] == option.opts[0]
        assert option.help.startswith(SETTINGS[key].help)
