"""Atomic writes and crash-tolerant JSONL logs."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from smollab.io import (
    append_jsonl,
    atomic_write_json,
    atomic_write_text,
    dumps,
    file_sha256,
    finite_or_null,
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


def strict_loads(text: str) -> Any:
    """``json.loads`` as jq or JavaScript parse: NaN, Infinity and -Infinity are errors."""

    def refuse(token: str) -> Any:
        raise ValueError(f"not strict JSON: {token}")

    return json.loads(text, parse_constant=refuse)


class _Stat:
    """A result object serialised through ``to_dict`` (as the stats dataclasses are)."""

    def to_dict(self) -> dict[str, Any]:
        return {"estimate": math.nan, "low": -math.inf, "high": np.float64(0.5)}


def test_non_finite_floats_are_written_as_null(tmp_path: Path) -> None:
    # a one-seed study's std/sem are nan: written as the NaN token, jq and JavaScript refused them
    nan, inf = math.nan, math.inf
    obj = {
        "sem": nan,
        "bounds": (-inf, 1.5, inf),
        "nested": [{"std": nan, "n": 1, "ok": True, "name": "NaN"}, [inf, (nan, 2)]],
        "np_scalars": [np.float64(nan), np.float32(inf), np.float32(0.5), np.int64(3)],
        "np_array": np.array([[1.0, nan], [-inf, 2.0]]),
        "stat": _Stat(),
        "none": None,
    }
    want = {
        "sem": None,
        "bounds": [None, 1.5, None],
        "nested": [{"std": None, "n": 1, "ok": True, "name": "NaN"}, [None, [None, 2]]],
        "np_scalars": [None, None, 0.5, 3],
        "np_array": [[1.0, None], [None, 2.0]],
        "stat": {"estimate": None, "low": None, "high": 0.5},
        "none": None,
    }
    assert strict_loads(dumps(obj)) == want
    assert strict_loads(dumps(obj, indent=None)) == want
    # every writer goes through dumps
    assert strict_loads(atomic_write_json(tmp_path / "r.json", obj).read_text()) == want
    write_jsonl(tmp_path / "rows.jsonl", [obj, {"loss": inf}])
    append_jsonl(tmp_path / "rows.jsonl", {"grad_norm": nan})
    lines = (tmp_path / "rows.jsonl").read_text().splitlines()
    assert [strict_loads(line) for line in lines] == [want, {"loss": None}, {"grad_norm": None}]
    # the caller's values are converted in a copy, never in place
    assert math.isnan(obj["sem"]) and obj["bounds"] == (-inf, 1.5, inf)
    assert math.isnan(obj["nested"][0]["std"])


def test_finite_or_null_keeps_finite_values_and_their_types() -> None:
    obj = {"a": [1, 2.5, "x", None, False], "b": {"c": (0.0, -0.0)}, 3: "int key"}
    assert finite_or_null(obj) == {
        "a": [1, 2.5, "x", None, False],
        "b": {"c": [0.0, -0.0]},
        3: "int key",
    }
    assert finite_or_null(math.nan) is None and finite_or_null(-math.inf) is None
    assert finite_or_null("nan") == "nan" and finite_or_null(7) == 7


def test_a_non_finite_value_that_cannot_be_nulled_is_refused(tmp_path: Path) -> None:
    # a float key cannot become null: the encoder refuses it rather than write a NaN token
    with pytest.raises(ValueError, match="not JSON compliant"):
        atomic_write_json(tmp_path / "bad.json", {math.nan: 1})
    assert not (tmp_path / "bad.json").exists()


def test_file_sha256_reads_a_file_once_while_it_is_unchanged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import hashlib

    f = tmp_path / "weights.bin"
    f.write_bytes(b"one")
    assert file_sha256(f) == hashlib.sha256(b"one").hexdigest()
    with monkeypatch.context() as m:  # the second call reads nothing
        m.setattr(Path, "open", lambda *a, **k: pytest.fail("read again"))
        assert file_sha256(str(f)) == hashlib.sha256(b"one").hexdigest()
    f.write_bytes(b"three")  # changed: read again
    assert file_sha256(f) == hashlib.sha256(b"three").hexdigest()
