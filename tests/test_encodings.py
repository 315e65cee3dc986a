"""Every encoding a business export comes in: guessed, transcoded, recorded, or refused
in one line naming the byte."""

from __future__ import annotations

import codecs
import importlib.util
import io
import json
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import custseg
from conftest import tiny_lines
from custseg import Config, ConfigError, InputError
from custseg.core.exceptions import CustsegError
from custseg.io import _readers

#: Windows-1252 has these and Latin-1 does not; a non-breaking space besides.
EXCEL_TEXT = "Österreich € ™\xa0Ltd"
#: The five bytes Windows-1252 leaves undefined.
CP1252_HOLES = {0x81, 0x8D, 0x8F, 0x90, 0x9D}


def orders() -> pd.DataFrame:
    frame = tiny_lines()
    frame["Country"] = frame["Country"].replace({"Germany": EXCEL_TEXT})
    return frame


def export(frame: pd.DataFrame, path: Path, encoding: str, sep: str = ",",
           bom: bytes = b"") -> Path:
    """``frame`` as a spreadsheet program saves it: CRLF lines in ``encoding``."""
    path.write_bytes(bom + frame.to_csv(index=False, sep=sep, lineterminator="\r\n")
                     .encode(encoding))
    return path


def country_of_b(result) -> str:
    return result.customers.set_index("customer_id").loc["B", "country"]


def encoding_warnings(result) -> list[str]:
    return [w for w in result.summary["audit"]["warnings"] if "--encoding" in w]


@pytest.mark.parametrize(("encoding", "sep", "bom", "recorded", "label"), [
    ("cp1252", ",", b"", "cp1252", "Windows-1252"),  # Excel's "CSV" on Windows
    ("utf-16", "\t", b"", "utf-16", "UTF-16"),  # Excel's "Unicode text": BOM + tabs
    ("utf-16-le", "\t", b"", "utf-16-le", "UTF-16LE"),  # no BOM: told by its NUL bytes
    ("utf-16-be", ";", b"", "utf-16-be", "UTF-16BE"),
    ("utf-32", ",", b"", "utf-32", "UTF-32"),
])
def test_non_utf8_exports_are_guessed_read_and_warned_about(tmp_path, encoding, sep, bom,
                                                            recorded, label):
    frame = orders()
    result = custseg.run_rfm(export(frame, tmp_path / "orders.csv", encoding, sep, bom))
    assert result.summary["input"]["encoding"] == recorded
    assert result.summary["input"]["delimiter"] == sep
    assert country_of_b(result) == EXCEL_TEXT
    pd.testing.assert_frame_equal(result.customers, custseg.run_rfm(frame=frame).customers)
    (warning,) = encoding_warnings(result)
    assert label in warning and "orders.csv" in warning


@pytest.mark.parametrize("bom", [b"", b"\xef\xbb\xbf"])
def test_utf8_is_read_without_a_warning(tmp_path, bom):
    result = custseg.run_rfm(export(orders(), tmp_path / "orders.csv", "utf-8", bom=bom))
    assert result.summary["input"]["encoding"] == "utf-8"
    assert country_of_b(result) == EXCEL_TEXT
    assert encoding_warnings(result) == []


@pytest.mark.parametrize(("codec", "asked", "recorded", "country"), [
    ("cp1252", "windows-1252", "cp1252", EXCEL_TEXT),
    ("cp1251", "cp1251", "cp1251", "Россия"),  # Cyrillic Windows
    ("mac_roman", "macroman", "mac-roman", "Österreich ™"),
    ("latin-1", "ISO-8859-1", "latin-1", "Österreich"),
    ("utf-16-le", "UTF-16LE", "utf-16-le", EXCEL_TEXT),
])
def test_encoding_option_takes_any_python_codec(tmp_path, codec, asked, recorded, country):
    frame = tiny_lines()
    frame["Country"] = frame["Country"].replace({"Germany": country})
    path = export(frame, tmp_path / "orders.csv", codec)
    result = custseg.run_rfm(path, config=Config(encoding=asked))
    assert result.summary["input"]["encoding"] == recorded
    assert country_of_b(result) == country
    assert encoding_warnings(result) == []  # asked for, not guessed


@pytest.mark.parametrize("asked", ["klingon", "rot13", "base64"])
def test_an_unknown_encoding_is_one_line_naming_it(tmp_path, asked):
    path = export(orders(), tmp_path / "orders.csv", "utf-8")
    with pytest.raises(ConfigError, match=f"--encoding '{asked}'"):
        custseg.run_rfm(path, config=Config(encoding=asked))


def test_a_byte_no_candidate_encoding_reads_is_named_with_its_offset(tmp_path):
    data = orders().to_csv(index=False, lineterminator="\n").encode("cp1252")
    offset = data.index("€".encode("cp1252"))
    path = tmp_path / "orders.csv"
    path.write_bytes(data[:offset] + b"\x81" + data[offset + 1:])
    line = data[:offset].count(b"\n") + 1
    with pytest.raises(InputError) as caught:
        custseg.run_rfm(path)
    message = str(caught.value)
    assert "\n" not in message
    assert f"{path}: byte 0x81 at offset {offset:,}, line {line:,}," in message
    assert "not valid UTF-8 or Windows-1252" in message and "--encoding" in message
    # Latin-1 reads any byte, when asked for.
    assert custseg.run_rfm(path, config=Config(encoding="latin-1")).summary["customers"] == 3


def test_an_asked_encoding_that_does_not_fit_names_the_byte(tmp_path):
    path = export(orders(), tmp_path / "orders.csv", "cp1252")
    offset = path.read_bytes().index("Ö".encode("cp1252"))
    with pytest.raises(InputError, match=f"byte 0xD6 at offset {offset:,}, .* not valid "
                                         r"UTF-8 \(--encoding utf8\)"):
        custseg.run_rfm(path, config=Config(encoding="utf8"))


def test_utf8_with_a_stray_byte_is_damaged_not_windows_1252(tmp_path):
    """A file whose text is UTF-8 but for one byte would be garbled as Windows-1252
    (``Ã–sterreich``), so it is refused, naming the byte."""
    data = orders().to_csv(index=False, lineterminator="\n").encode("utf-8")
    offset = data.index(b"\n1008,")
    path = tmp_path / "orders.csv"
    path.write_bytes(data[:offset] + b"\xe9" + data[offset:])
    line = data[:offset].count(b"\n") + 1
    with pytest.raises(InputError, match=f"byte 0xE9 at offset {offset:,}, line {line}, is "
                                         "not valid UTF-8, but the rest of the file is"):
        custseg.run_rfm(path)


def test_a_temporary_copy_is_removed_after_reading_and_after_failing(tmp_path):
    temp = tmp_path / "scratch"
    config = Config(temp_directory=str(temp))
    good = export(orders(), tmp_path / "good.csv", "utf-16")
    assert custseg.run_rfm(good, config=config).summary["customers"] == 3
    bad = tmp_path / "bad.csv"
    bad.write_bytes(export(orders(), tmp_path / "x.csv", "cp1252").read_bytes() + b"\x90\r\n")
    with pytest.raises(InputError, match="0x90"):
        custseg.run_rfm(bad, config=config)
    assert temp.is_dir() and list(temp.iterdir()) == []


# ---------------------------------------------------------------- streaming invariant
TEXTS = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=300)


@settings(max_examples=150, deadline=None)
@given(text=TEXTS, codec=st.sampled_from(["utf-8", "utf-16", "utf-16-be", "utf-32",
                                          "cp1252", "gb18030"]),
       chunk=st.integers(1, 9))
def test_transcoding_in_chunks_equals_decoding_whole(tmp_path_factory, text, codec, chunk):
    """Whatever the chunk size (multi-byte characters and BOMs cut anywhere), the copy is
    the whole file decoded; or, for a character the codec cannot hold, nothing."""
    try:
        data = text.encode(codec)
    except UnicodeEncodeError:
        return
    path = tmp_path_factory.mktemp("t") / "in.txt"
    path.write_bytes(data)
    out = path.with_suffix(".out")
    with pytest.MonkeyPatch.context() as mp, out.open("wb") as fh:
        mp.setattr(_readers, "_CHUNK_BYTES", chunk)
        _readers._transcode(path, codec, fh)
    if codec == "cp1252" and data.startswith(codecs.BOM_UTF8):
        data = data[3:]  # the UTF-8 byte-order mark, not the letters ï»¿
    assert out.read_bytes().decode("utf-8") == data.decode(codec).removeprefix("\ufeff")


@settings(max_examples=150, deadline=None)
@given(text=st.text(st.characters(codec="cp1252"), max_size=200), cut=st.integers(0, 200),
       byte=st.sampled_from(sorted(CP1252_HOLES)), chunk=st.integers(1, 9),
       codec=st.sampled_from(["cp1252", "utf-8"]))
def test_the_offset_of_a_bad_byte_is_exact_at_any_chunk_size(tmp_path_factory, text, cut,
                                                             byte, chunk, codec):
    data = text.encode(codec)
    cut = min(cut, len(data))
    while codec == "utf-8" and cut < len(data) and 0x80 <= data[cut] < 0xC0:
        cut += 1  # insert between characters
    data = data[:cut] + bytes([byte]) + data[cut:]
    path = tmp_path_factory.mktemp("t") / "in.txt"
    path.write_bytes(data)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(_readers, "_CHUNK_BYTES", chunk)
        with pytest.raises(_readers._Undecodable) as caught:
            _readers._transcode(path, codec)
        report = _readers._utf8_report(path)
    assert (caught.value.offset, caught.value.byte) == (cut, byte)
    assert caught.value.line == data[:cut].count(b"\n") + 1
    if codec == "utf-8":
        assert report.first == (cut, byte, data[:cut].count(b"\n") + 1) and report.bad == 1


# ------------------------------------------------------------------- stray-byte fuzz
def retail_like() -> bytes:
    """An order-line export in plain ASCII (as Online Retail's first lines are)."""
    rng = random.Random(7)
    rows = []
    for i in range(600):
        invoice = 536365 + i // 4
        rows.append((("C" if i % 97 == 0 else "") + str(invoice), f"{84000 + i % 37}A",
                     f"WHITE HANGING HEART T-LIGHT HOLDER {i % 11}", rng.randint(1, 24),
                     f"2011-{1 + i % 12:02d}-{1 + i % 28:02d} 08:26:00",
                     f"{rng.randint(10, 999) / 100:.2f}", 12346 + i % 41, "United Kingdom"))
    frame = pd.DataFrame(rows, columns=["InvoiceNo", "StockCode", "Description", "Quantity",
                                        "InvoiceDate", "UnitPrice", "CustomerID", "Country"])
    return frame.to_csv(index=False, lineterminator="\n").encode("ascii")


def test_a_stray_high_byte_anywhere_is_read_with_a_warning_or_refused_in_one_line(tmp_path):
    """12 seeded mutations: one byte 0x80-0xFF inserted at a random offset. Each ends in
    a clean run read as Windows-1252 with a warning naming that byte, or (for a byte
    Windows-1252 does not define) one error line naming it; never anything else."""
    base = retail_like()
    rows = base.count(b"\n") - 1
    rng = random.Random(12)
    mutations = [(rng.randrange(len(base)), rng.randrange(0x80, 0x100)) for _ in range(10)]
    mutations += [(rng.randrange(len(base)), 0x81), (rng.randrange(len(base)), 0x9D)]
    outcomes = set()
    for i, (offset, byte) in enumerate(mutations):
        path = tmp_path / f"orders{i}.csv"
        path.write_bytes(base[:offset] + bytes([byte]) + base[offset:])
        line = base[:offset].count(b"\n") + 1
        where = f"byte 0x{byte:02X} at offset {offset:,}, line {line:,}"
        try:
            result = custseg.run_rfm(path)
        except CustsegError as exc:
            assert "\n" not in str(exc)
            if byte in CP1252_HOLES:
                assert f"{where}, is not valid UTF-8 or Windows-1252" in str(exc)
                outcomes.add("error")
            else:  # a damaged header: the column names no longer match
                assert line == 1 and "--map" in str(exc), exc
            continue
        assert byte not in CP1252_HOLES
        assert result.summary["input"]["encoding"] == "cp1252"
        assert result.summary["audit"]["rows_in"] == rows
        (warning,) = encoding_warnings(result)
        assert where in warning and "Windows-1252" in warning
        outcomes.add("warning")
    assert outcomes == {"error", "warning"}


def test_cli_undecodable_byte_is_one_error_line_and_exit_1(tmp_path):
    base = retail_like()
    path = tmp_path / "orders.csv"
    path.write_bytes(base[:5000] + b"\x8d" + base[5000:])
    run = subprocess.run([sys.executable, "-m", "custseg.cli", "rfm", str(path), "--out",
                          str(tmp_path / "out")], capture_output=True, text=True)
    lines = [ln for ln in run.stderr.splitlines() if ln.strip()]
    assert run.returncode == 1 and len(lines) == 1, run.stderr
    assert lines[0].startswith("error:") and "0x8D at offset 5,000" in lines[0]
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------------------ spark
needs_spark = pytest.mark.skipif(
    importlib.util.find_spec("pyspark") is None or shutil.which("java") is None,
    reason="the Spark engine needs pyspark and a Java runtime")


@needs_spark
@pytest.mark.parametrize("encoding", ["cp1252", "utf-16"])
def test_spark_reads_the_same_encodings_as_duckdb(tmp_path, encoding):
    base = pd.read_csv(io.StringIO(retail_like().decode()), dtype=str)
    base.loc[base["CustomerID"] == "12346", "Country"] = EXCEL_TEXT
    path = export(base, tmp_path / "orders.csv", encoding, "\t" if encoding == "utf-16"
                  else ",")
    duck = custseg.run_rfm(path)
    spark = custseg.run_rfm(path, config=Config(engine="spark", spark_master="local[2]"))
    assert spark.summary["input"]["encoding"] == duck.summary["input"]["encoding"] == encoding
    assert spark.summary["audit"] == duck.summary["audit"]
    pd.testing.assert_frame_equal(duck.customers, spark.customers, check_dtype=False)
    assert EXCEL_TEXT in set(spark.customers["country"])
    bad = tmp_path / "bad.csv"
    bad.write_bytes(path.read_bytes().replace(b"\x80", b"\x81") if encoding == "cp1252"
                    else path.read_bytes()[:-1])
    with pytest.raises(InputError) as from_spark:
        custseg.run_rfm(bad, config=Config(engine="spark", spark_master="local[2]"))
    with pytest.raises(InputError) as from_duck:
        custseg.run_rfm(bad)
    assert str(from_spark.value) == str(from_duck.value)


def test_summary_json_records_the_encoding(tmp_path):
    path = export(orders(), tmp_path / "orders.csv", "utf-16")
    out = tmp_path / "out"
    custseg.run_rfm(path, out_dir=out)
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["input"]["encoding"] == "utf-16"
    assert any("UTF-16" in w and "--encoding" in w for w in summary["audit"]["warnings"])


def test_a_wrong_single_byte_encoding_for_utf16_text_says_so(tmp_path):
    path = export(orders(), tmp_path / "orders.txt", "utf-16", "\t")
    with pytest.raises(InputError, match="is UTF-16 text, not latin-1; drop --encoding"):
        custseg.run_rfm(path, config=Config(encoding="latin-1"))
