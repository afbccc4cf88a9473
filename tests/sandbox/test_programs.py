"""HumanEval/MBPP test programs and the loaders for their data files (real and broken)."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import pytest

from smollab.errors import DataError
from smollab.sandbox import (
    MBPP_TEST_IDS,
    Limits,
    Sandbox,
    humaneval_program,
    load_humaneval,
    load_mbpp,
    mbpp_program,
)
from tests.conftest import REPO


@pytest.fixture(scope="module")
def data() -> Path:
    for cand in (os.environ.get("SMOLLAB_DATA_DIR"), REPO.parent / "shared" / "data"):
        if cand and (Path(cand) / "humaneval" / "HumanEval.jsonl.gz").is_file():
            return Path(cand)
    pytest.skip("no benchmark data dir (set SMOLLAB_DATA_DIR to ../shared/data)")


def test_humaneval_program_is_the_reference_construction() -> None:
    problem = {
        "prompt": "def f(x):\n",
        "test": "def check(candidate):\n    assert candidate(2) == 4\n",
        "entry_point": "f",
    }
    prog = humaneval_program(problem, "    return 2 * x\n")
    assert prog == (
        "def f(x):\n    return 2 * x\n\ndef check(candidate):\n    assert candidate(2) == 4\n"
        "\ncheck(f)"
    )


def test_mbpp_program_orders_imports_code_setup_tests() -> None:
    problem = {
        "test_imports": ["import math"],
        "test_setup_code": "n = Node(3)",
        "test_list": ["assert n.v == 3", "assert math.pi > 3"],
        "challenge_test_list": ["assert n.v != 4"],
    }
    code = "class Node:\n    def __init__(self, v):\n        self.v = v"
    prog = mbpp_program(problem, code)
    assert prog == f"import math\n{code}\nn = Node(3)\nassert n.v == 3\nassert math.pi > 3\n"
    assert mbpp_program(problem, code, challenge_tests=True).endswith("assert n.v != 4\n")


def test_loaders_read_the_real_files(data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMOLLAB_DATA_DIR", str(data))
    he = load_humaneval()
    assert len(he) == 164 and he[0]["task_id"] == "HumanEval/0"
    assert len({p["task_id"] for p in he}) == 164
    full = load_mbpp(data)
    assert len(full) == 974 and [p["task_id"] for p in full] == list(range(1, 975))
    assert sum(p["task_id"] in MBPP_TEST_IDS for p in full) == 500
    assert len(load_mbpp(data, sanitized=True)) == 427


def test_reference_solutions_pass_and_empty_bodies_fail(data: Path, sandbox: Sandbox) -> None:
    he = load_humaneval(data)[:6]
    good = sandbox.run_many([humaneval_program(p, p["canonical_solution"]) for p in he])
    assert all(v.passed for v in good), [v.stderr_tail for v in good if not v.passed]
    bad = sandbox.run_many([humaneval_program(p, "    pass\n") for p in he])
    assert not any(v.passed for v in bad)
    assert all("AssertionError" in v.stderr_tail or "Error" in v.stderr_tail for v in bad)
    full = {p["task_id"]: p for p in load_mbpp(data)}
    sanitized = load_mbpp(data, sanitized=True)[:3]
    # 367 and 927 have test_setup_code that builds trees from the solution's Node class
    setup = [p for p in full.values() if p["test_setup_code"]]
    assert [p["task_id"] for p in setup] == [367, 927]
    probs = [full[2], full[11], *sanitized, *setup]
    vs = sandbox.run_many([mbpp_program(p, p["code"]) for p in probs])
    assert all(v.passed for v in vs), [v.stderr_tail for v in vs if not v.passed]
    v = sandbox.run(mbpp_program(full[2], "def similar_elements(a, b):\n    return ()"))
    assert not v.passed and "AssertionError" in v.stderr_tail


def test_no_data_dir_says_how_to_set_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SMOLLAB_DATA_DIR", raising=False)
    with pytest.raises(DataError, match="SMOLLAB_DATA_DIR"):
        load_humaneval()


def test_missing_file_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(DataError) as err:
        load_mbpp(tmp_path)
    msg = err.value.render()
    assert str(tmp_path / "mbpp" / "mbpp.jsonl") in msg and "does not exist" in msg


def _write(root: Path, rel: str, data: bytes) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def test_truncated_gzip_is_reported(data: Path, tmp_path: Path) -> None:
    raw = (data / "humaneval" / "HumanEval.jsonl.gz").read_bytes()
    _write(tmp_path, "humaneval/HumanEval.jsonl.gz", raw[: len(raw) // 2])
    with pytest.raises(DataError, match="truncated or corrupt"):
        load_humaneval(tmp_path)


def test_uncompressed_file_with_gz_name_is_reported(tmp_path: Path) -> None:
    _write(tmp_path, "humaneval/HumanEval.jsonl.gz", b'{"task_id": "x"}\n')
    with pytest.raises(DataError, match="not gzip-compressed"):
        load_humaneval(tmp_path)


def test_truncated_jsonl_names_the_line(data: Path, tmp_path: Path) -> None:
    raw = (data / "mbpp" / "mbpp.jsonl").read_bytes()
    _write(tmp_path, "mbpp/mbpp.jsonl", raw[: len(raw) // 3])
    with pytest.raises(DataError, match=r"Line \d+ of .*mbpp.jsonl is not valid JSON"):
        load_mbpp(tmp_path)


def test_wrong_format_names_the_missing_keys(tmp_path: Path) -> None:
    rows = [{"question": "q", "answer": "a"}]  # a GSM8K-like file in the HumanEval slot
    text = "\n".join(json.dumps(r) for r in rows)
    _write(tmp_path, "humaneval/HumanEval.jsonl.gz", gzip.compress(text.encode()))
    with pytest.raises(DataError, match="Record 1 .* lacks task_id, prompt"):
        load_humaneval(tmp_path)


def test_a_json_list_in_the_jsonl_slot_is_named(data: Path, tmp_path: Path) -> None:
    # sanitized-mbpp.json copied over mbpp.jsonl: one line holding a list (it said "Record 1
    # lacks task_id, text, ..."), and the same list written indented
    rows = [{"task_id": 2, "prompt": "x"}]
    for text in (json.dumps(rows), json.dumps(rows, indent=1)):
        _write(tmp_path, "mbpp/mbpp.jsonl", text.encode())
        with pytest.raises(DataError, match=r"mbpp.jsonl holds one JSON (list|document), not JSON"):
            load_mbpp(tmp_path)


def test_sanitized_mbpp_wrong_shape(tmp_path: Path) -> None:
    _write(tmp_path, "mbpp/sanitized-mbpp.json", b'{"not": "a list"}')
    with pytest.raises(DataError, match="JSON array"):
        load_mbpp(tmp_path, sanitized=True)
    _write(tmp_path, "mbpp/sanitized-mbpp.json", b'[{"task_id": 2, "prompt": "x"')
    with pytest.raises(DataError, match="not valid JSON"):
        load_mbpp(tmp_path, sanitized=True)


@pytest.mark.slow
def test_all_humaneval_canonical_solutions_pass_and_pass_bodies_fail(
    data: Path, sandbox: Sandbox
) -> None:
    he = load_humaneval(data)
    good = sandbox.run_many([humaneval_program(p, p["canonical_solution"]) for p in he])
    assert [p["task_id"] for p, v in zip(he, good, strict=True) if not v.passed] == []
    bad = sandbox.run_many([humaneval_program(p, "    pass\n") for p in he])
    assert [p["task_id"] for p, v in zip(he, bad, strict=True) if v.passed] == []


@pytest.mark.slow
def test_all_mbpp_reference_solutions_pass(data: Path, sandbox: Sandbox) -> None:
    # 10 s, as in bench_sandbox.py: task 123's reference takes ~3.4 s on a loaded 2-core machine
    sandbox = Sandbox(Limits(timeout_s=10))
    for sanitized in (False, True):
        probs = load_mbpp(data, sanitized=sanitized)
        vs = sandbox.run_many([mbpp_program(p, p["code"]) for p in probs])
        assert [p["task_id"] for p, v in zip(probs, vs, strict=True) if not v.passed] == []
