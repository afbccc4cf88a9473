"""Atomic writes and crash-tolerant JSONL logs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from smollab.io import (
    append_jsonl,
    atomic_write_json,
    atomic_write_text,
    read_json,
    read_jsonl,
    write_jsonl,
)


def test_atomic_write_json_leaves_no_temp_files(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "data.json"
    atomic_write_json(target, {"a": 1, "p": Path("/x"), "n": np.int64(3), "arr": np.arange(2)})
    atomic_write_json(target, {"a": 2})  # replace
    assert read_json(target) == {"a": 2}
    assert sorted(p.name for p in target.parent.iterdir()) == ["data.json"]
    first = tmp_path / "first.json"
    atomic_write_json(first, {"p": Path("/x"), "n": np.int64(3), "arr": np.arange(2)})
    assert read_json(first) == {"p": "/x", "n": 3, "arr": [0, 1]}


def test_failed_write_keeps_old_file_and_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "data.json"
    atomic_write_json(target, {"v": "old"})
    with pytest.raises(TypeError):
        atomic_write_json(target, {"v": object()})  # not serialisable: fails before writing
    assert read_json(target) == {"v": "old"}

    class Boom:
        def __iter__(self):
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        write_jsonl(tmp_path / "rows.jsonl", Boom())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.json"]


def test_atomic_writes_get_the_mode_open_gives(tmp_path: Path) -> None:
    # results shared with a lab: not the private 0600 of a temp file
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    p = atomic_write_json(tmp_path / "results.json", {"a": 1})
    assert p.stat().st_mode & 0o777 == plain.stat().st_mode & 0o777


def test_atomic_write_text_round_trip(tmp_path: Path) -> None:
    p = atomic_write_text(tmp_path / "t.txt", "héllo\n")
    assert p.read_text(encoding="utf-8") == "héllo\n"


def test_read_jsonl_ignores_torn_last_line(tmp_path: Path) -> None:
    p = tmp_path / "log.jsonl"
    append_jsonl(p, {"step": 1})
    append_jsonl(p, {"step": 2})
    with open(p, "a") as f:
        f.write('{"step": 3, "lo')  # a crash mid-write
    assert read_jsonl(p) == [{"step": 1}, {"step": 2}]
    # appending after a torn line (a re-run after kill -9) ends the torn line first, and the
    # torn line is skipped on read
    append_jsonl(p, {"step": 4})
    assert read_jsonl(p) == [{"step": 1}, {"step": 2}, {"step": 4}]
    # a complete-looking but corrupt line in the middle is a real error
    with open(p, "a") as f:
        f.write('{"step": 5,, }\n' + json.dumps({"step": 6}) + "\n")
    with pytest.raises(json.JSONDecodeError):
        read_jsonl(p)


def test_read_jsonl_skips_blank_lines_and_write_jsonl(tmp_path: Path) -> None:
    p = tmp_path / "rows.jsonl"
    write_jsonl(p, [{"a": 1}, {"a": 2}])
    assert p.read_text() == '{"a": 1}\n{"a": 2}\n'
    with open(p, "a") as f:
        f.write("\n\n")
    assert read_jsonl(p) == [{"a": 1}, {"a": 2}]
