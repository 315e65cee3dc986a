import json

import pytest

import custseg
from conftest import MALL, needs_mall
from custseg import Config, ConfigError
from custseg.core.config import default_rfm_segments


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
    assert set(result.segments["rfm_segment"]) <= set(names)


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
