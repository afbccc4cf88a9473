"""Loading benchmark data: formats, compression, and every kind of bad file."""

from __future__ import annotations

import bz2
import gzip
import json
from pathlib import Path

import pytest

from smollab.errors import DataError
from smollab.tasks.data import load_records, read_records, read_text
from tests.conftest import SHARED, needs_data

ROWS = [{"question": "1+1?", "answer": "#### 2"}, {"question": "2+2?", "answer": "#### 4"}]


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".gz":
        path.write_bytes(gzip.compress(text.encode()))
    elif path.suffix == ".bz2":
        path.write_bytes(bz2.compress(text.encode()))
    else:
        path.write_text(text)
    return path


JSONL = "".join(json.dumps(r) + "\n" for r in ROWS)


@pytest.mark.parametrize(
    "name,text",
    [
        ("d.jsonl", JSONL),
        ("d.jsonl.gz", JSONL),
        ("d.jsonl.bz2", JSONL),
        ("d.json", json.dumps(ROWS)),
        ("d.json.gz", json.dumps(ROWS)),
        ("crlf.jsonl", JSONL.replace("\n", "\r\n").rstrip()),  # MBPP's line ends, no final \n
    ],
)
def test_every_format_reads_the_same_records(tmp_path, name, text):
    assert read_records(_write(tmp_path / name, text)) == ROWS


def test_truncated_gzip_is_named(tmp_path):
    p = tmp_path / "d.jsonl.gz"
    p.write_bytes(gzip.compress(JSONL.encode() * 50)[:-30])
    with pytest.raises(DataError, match=r"d\.jsonl\.gz is truncated or corrupt"):
        read_records(p)


def test_truncated_bz2_is_named(tmp_path):
    p = tmp_path / "d.txt.jsonl.bz2"
    p.write_bytes(bz2.compress(JSONL.encode() * 50)[:-30])
    with pytest.raises(DataError, match="truncated or corrupt"):
        read_records(p)


@pytest.mark.parametrize("name", ["d.jsonl", "d.jsonl.gz", "d.jsonl.bz2"])
def test_a_leading_byte_order_mark_is_dropped(tmp_path, name):
    """Editors on Windows begin UTF-8 files with a byte order mark; it is no part of the
    first record (json.loads refused it) nor of a text's first document."""
    raw = b"\xef\xbb\xbf" + JSONL.replace("\n", "\r\n").encode()
    p = tmp_path / name
    p.write_bytes(gzip.compress(raw) if name.endswith(".gz") else
                  bz2.compress(raw) if name.endswith(".bz2") else raw)  # fmt: skip
    assert read_records(p) == ROWS
    assert read_text(p) == JSONL


@pytest.mark.parametrize("name", ["notes.txt", "notes.txt.gz"])
def test_text_that_is_not_utf8_names_its_line_and_the_fix(tmp_path, name):
    """The line of the first byte that is not UTF-8, in the whole (decompressed) file, and,
    for the user's own file, how to convert it."""
    raw = ("a line\n" * 5000).encode() + b"caf\xe9 au lait\n"
    p = tmp_path / name
    p.write_bytes(gzip.compress(raw) if name.endswith(".gz") else raw)
    with pytest.raises(DataError) as e:
        read_text(p, own=True)
    msg = e.value.message
    assert f"Data file {p} is not UTF-8 text (line 5001: byte 0xe9 is not UTF-8)" in msg
    assert "iconv -f latin1 -t utf-8" in msg


def test_jsonl_cut_mid_record_says_truncated(tmp_path):
    p = _write(tmp_path / "d.jsonl", JSONL + '{"question": "3+')
    with pytest.raises(DataError, match=r"line 3: not valid JSON.*looks truncated"):
        read_records(p)


@pytest.mark.parametrize(
    "text,what", [(json.dumps(ROWS), "list"), (json.dumps(ROWS, indent=2), "document")]
)
def test_a_json_list_where_jsonl_is_expected_is_named(tmp_path, text, what):
    # a list on one line read as one record said "record 0: missing field(s) ... (has list)"
    _write(tmp_path / "gsm8k" / "test.jsonl", text)
    with pytest.raises(DataError, match=f"test.jsonl holds one JSON {what}, not JSON Lines"):
        load_records("gsm8k", ("test.jsonl",), ("question", "answer"), data_dir=tmp_path)


def test_truncated_json_document(tmp_path):
    p = _write(tmp_path / "d.json", json.dumps(ROWS)[:-5])
    with pytest.raises(DataError, match="not valid JSON.*truncated"):
        read_records(p)
    # the user's own file has no source to copy it again from
    with pytest.raises(DataError, match=r"truncated\. Fix it there\.$"):
        read_records(p, own=True)


def test_wrong_format_names_the_missing_fields(tmp_path):
    _write(tmp_path / "gsm8k" / "test.jsonl", '{"text": "a", "label": 1}\n')
    with pytest.raises(DataError, match=r"record 0: missing field\(s\) \['question', 'answer'\]"):
        load_records("gsm8k", ("test.jsonl",), ("question", "answer"), data_dir=tmp_path)


def test_a_field_of_the_wrong_type_is_named_with_its_record(tmp_path):
    """A record with every field but a wrong value (null where text belongs) is refused when
    the data is loaded, before a model runs, not with a TypeError at scoring."""
    _write(tmp_path / "gsm8k" / "test.jsonl", JSONL + '{"question": 5, "answer": null}\n')
    fields = {"question": str, "answer": str}
    with pytest.raises(DataError) as e:
        load_records("gsm8k", ("test.jsonl",), fields, data_dir=tmp_path)
    msg = str(e.value)
    assert "test.jsonl, record 2: field 'question' is 5, where a string is expected" in msg
    assert load_records("gsm8k", ("test.jsonl",), ("question",), data_dir=tmp_path)[0][2] == {
        "question": 5,
        "answer": None,
    }


def test_missing_file_names_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.delenv("SMOLLAB_DATA_DIR", raising=False)
    (tmp_path / "gsm8k").mkdir()
    with pytest.raises(DataError, match=r"none of \['test.jsonl'\] found in .*gsm8k.*--data-dir"):
        load_records("gsm8k", ("test.jsonl",), ("question",), data_dir=tmp_path)


def test_missing_data_dir(tmp_path):
    with pytest.raises(DataError, match="Data dir .*nope does not exist"):
        load_records("gsm8k", ("test.jsonl",), ("question",), data_dir=tmp_path / "nope")


def test_a_missing_data_dir_from_the_environment_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv("SMOLLAB_DATA_DIR", str(tmp_path / "gone"))
    with pytest.raises(DataError, match="gone .from the environment variable SMOLLAB_DATA_DIR."):
        load_records("gsm8k", ("test.jsonl",), ("question",))


def test_env_var_is_the_default_data_dir(tmp_path, monkeypatch):
    _write(tmp_path / "gsm8k" / "test.jsonl", JSONL)
    monkeypatch.setenv("SMOLLAB_DATA_DIR", str(tmp_path))
    rows, where = load_records("gsm8k", ("test.jsonl",), ("question", "answer"))
    assert rows == ROWS and where == str(tmp_path / "gsm8k" / "test.jsonl")


@needs_data
@pytest.mark.parametrize(
    "folder,file,n",
    [
        ("gsm8k", "test.jsonl", 1319),
        ("gsm8k", "train.jsonl", 7473),
        ("hellaswag", "hellaswag_val.jsonl.gz", 10042),
    ],
)
def test_shared_data_counts_match_provenance(folder, file, n):
    rows, _ = load_records(folder, (file,), (), data_dir=SHARED)
    assert len(rows) == n
