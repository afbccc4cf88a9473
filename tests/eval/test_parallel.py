"""``smollab eval --procs N``: the results of one process, and nothing lost when a worker dies."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from smollab.eval.harness import make_task, model_key, run_eval
from smollab.eval.parallel import PARTS, merge_parts
from smollab.eval.runner import samples_key
from smollab.io import append_jsonl, read_jsonl
from tests.cli.test_cli import assert_clean_error
from tests.conftest import REPO, SHARED, cli_env, find_processes, needs_data, smollab_cmd

pytestmark = needs_data
LOAD = {
    "source": "scratch:gpt2",
    "tokenizer": str(SHARED / "gpt2-tokenizer"),
    "config": {"n_layer": 1, "n_head": 2, "n_embd": 32, "block_size": 128},
    "seed": 1,
}


@pytest.fixture(scope="module")
def small() -> Any:
    from smollab.models import load_model

    return load_model(**LOAD)


def _plant_part(out: Path, task: str, key: str, name: str, recs: list[dict[str, Any]]) -> None:
    part = out / PARTS / task / name
    part.mkdir(parents=True)
    (part / f"samples_{task}.meta.json").write_text(json.dumps({"key": key}) + "\n")
    for r in recs:
        append_jsonl(part / f"samples_{task}.jsonl", r)


def test_merge_parts_takes_the_matching_parts_once_and_removes_them(tmp_path):
    samples = tmp_path / "samples_t.jsonl"
    assert merge_parts(samples, "k") == {}  # a fresh folder: the key is written, nothing done
    append_jsonl(samples, {"id": "0", "acc": 1.0})
    _plant_part(tmp_path, "t", "k", "a", [{"id": "0", "acc": 0.0}, {"id": "1", "acc": 0.0}])
    _plant_part(tmp_path, "t", "k", "b", [{"id": "2", "acc": 1.0}])
    _plant_part(tmp_path, "t", "other", "c", [{"id": "3", "acc": 1.0}])  # another model
    done = merge_parts(samples, "k")
    assert sorted(done) == ["0", "1", "2"]
    assert done["0"]["acc"] == 1.0  # the record already in the samples file is kept
    assert [r["id"] for r in read_jsonl(samples)] == ["0", "1", "2"]
    assert not (tmp_path / PARTS).exists()
    # the other model's part is kept aside under its key, as its samples file would be
    assert read_jsonl(tmp_path / "samples_t.other.jsonl") == [{"id": "3", "acc": 1.0}]
    assert merge_parts(samples, "other") == {"3": {"id": "3", "acc": 1.0}}  # and comes back


def test_procs_give_the_results_of_one_process(small, tmp_path):
    def tasks() -> list[Any]:
        return [
            make_task("hellaswag", limit=10, data_dir=str(SHARED)),
            make_task("arith_probe", limit=6, data_dir=str(SHARED)),
        ]

    one = run_eval(small, tasks(), tmp_path / "one", batch_size=4, use_cache=False)
    two = run_eval(
        small, tasks(), tmp_path / "two", batch_size=4, use_cache=False, procs=2, load_args=LOAD
    )
    assert two["workers"]["procs"] == 2 and two["workers"]["start_seconds"] > 0
    for name in ("hellaswag", "arith_probe"):
        a, b = one["tasks"][name], two["tasks"][name]
        assert a["metrics"] == b["metrics"] and a["n"] == b["n"]
        assert b["procs"] == 2 and b["items_per_second"] > 0
        ra = {r["id"]: r for r in read_jsonl(tmp_path / "one" / f"samples_{name}.jsonl")}
        rb = {r["id"]: r for r in read_jsonl(tmp_path / "two" / f"samples_{name}.jsonl")}
        assert ra.keys() == rb.keys() and len(rb) == a["n"]  # every item once
        for i, r in ra.items():
            assert {k: v for k, v in r.items() if k != "logprobs"} == {
                k: v for k, v in rb[i].items() if k != "logprobs"
            }
            assert r.get("logprobs", []) == pytest.approx(rb[i].get("logprobs", []), abs=1e-4)
    assert not (tmp_path / "two" / PARTS).exists()


def test_procs_score_a_corpus_as_one_process(small, tmp_path):
    # a rolling loglikelihood task, built by smollab eval from a file (not from the registry's
    # config class): the workers build the same task, and documents longer than the 128-token
    # window are scored in several windows as in one process
    rows = [json.loads(x) for x in (SHARED / "gsm8k/test.jsonl").read_text().splitlines()[:7]]
    docs = [r["question"] + "\n" + r["answer"] for r in rows[:5]] + [
        "\n\n".join(r["question"] for r in rows)
    ]
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n\n\n".join(d.replace("\n\n", "\n") for d in docs))

    def tasks() -> list[Any]:
        return [make_task(f"corpus:{corpus}")]

    one = run_eval(small, tasks(), tmp_path / "one", batch_size=4, use_cache=False)
    events: list[dict[str, Any]] = []
    two = run_eval(
        small,
        tasks(),
        tmp_path / "two",
        batch_size=4,
        use_cache=False,
        procs=2,
        load_args=LOAD,
        on_event=events.append,
    )
    a, b = one["tasks"]["corpus"], two["tasks"]["corpus"]
    assert a["n"] == b["n"] == 6 and b["procs"] == 2
    # each document computed by one worker only (its share, not every document)
    assert sum(e["n"] for e in events if e["event"] == "items") == 6
    ra = {r["id"]: r for r in read_jsonl(tmp_path / "one" / "samples_corpus.jsonl")}
    rb = {r["id"]: r for r in read_jsonl(tmp_path / "two" / "samples_corpus.jsonl")}
    assert ra.keys() == rb.keys() and len(rb) == 6  # every document once
    assert max(r["tokens"] for r in ra.values()) > 2 * 128  # rolled over several windows
    for i, r in ra.items():
        assert {k: v for k, v in r.items() if k != "logprob"} == {
            k: v for k, v in rb[i].items() if k != "logprob"
        }
        assert r["logprob"] == pytest.approx(rb[i]["logprob"], abs=1e-3)
    for m, v in a["metrics"].items():
        assert v["estimate"] == pytest.approx(b["metrics"][m]["estimate"], rel=1e-5)
    assert not (tmp_path / "two" / PARTS).exists()


def test_parts_left_by_a_stopped_run_are_used_not_recomputed(small, tmp_path):
    task = make_task("hellaswag", limit=4, data_dir=str(SHARED))
    key = samples_key(model_key(small), task)
    # what a killed `--procs 2` run left: items 1 and 3, marked so the test can tell them apart
    left = [{"id": i, "label": 0, "acc": 1.0, "acc_norm": 1.0, "mark": 1} for i in ("1", "3")]
    _plant_part(tmp_path, "hellaswag", key, "9-0", left)
    res = run_eval(small, [task], tmp_path, batch_size=4, use_cache=False)
    recs = {r["id"]: r for r in read_jsonl(tmp_path / "samples_hellaswag.jsonl")}
    assert sorted(recs) == ["0", "1", "2", "3"]
    assert recs["1"].get("mark") == 1 and recs["3"].get("mark") == 1 and "mark" not in recs["0"]
    assert res["tasks"]["hellaswag"]["n"] == 4
    assert not (tmp_path / PARTS).exists()


def test_procs_with_an_api_model_is_a_clear_error(cli):
    msg = assert_clean_error(
        cli("eval", "--model", "openai:gpt-4o-mini", "--task", "gsm8k_chat", "--procs", "2"),
        code=2,
    )
    assert "--procs 2 is for local models" in msg and "--batch-size" in msg


def _workers(parent: int) -> list[int]:
    """The pool workers among ``parent``'s children (not multiprocessing's resource tracker)."""
    return find_processes(lambda ppid, cmd: ppid == parent and any(b"spawn_main" in c for c in cmd))


def _count(p: Path) -> int:
    try:
        return p.read_bytes().count(b"\n")
    except OSError:
        return 0


def test_a_killed_worker_keeps_the_finished_items_and_the_run_resumes(tmp_path):
    home, out = tmp_path / "home", tmp_path / "ev"
    n, chunk = 240, 48  # each worker scores 120 items, 48 at a time
    args = ["eval", "--model", "scratch:gpt2", "--tokenizer", str(SHARED / "gpt2-tokenizer"),
            "--task", "hellaswag", "--limit", str(n), "--data-dir", str(SHARED),
            "--out", str(out), "--procs", "2", "--no-cache"]  # fmt: skip
    env = {**cli_env(home), "OMP_NUM_THREADS": "2", "SMOLLAB_EVAL_CHUNK": str(chunk)}
    proc = subprocess.Popen(
        smollab_cmd(*args), env=env, cwd=REPO, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
    )  # fmt: skip
    parts = out / PARTS / "hellaswag"
    t0 = time.monotonic()
    # kill one worker once a chunk is written
    while max((_count(p) for p in parts.glob("*/samples_hellaswag.jsonl")), default=0) < chunk:
        if proc.poll() is not None or time.monotonic() - t0 > 240:
            os.killpg(proc.pid, signal.SIGKILL)
            pytest.fail("the run ended before a worker finished a chunk:\n" + proc.stderr.read())
        time.sleep(0.05)
    workers = _workers(proc.pid)
    assert len(workers) == 2
    os.kill(workers[0], signal.SIGKILL)
    stdout, stderr = proc.communicate(timeout=240)
    msg = assert_clean_error(subprocess.CompletedProcess(args, proc.returncode, stdout, stderr), 1)
    assert "worker process of `--procs 2` died" in msg and "run the same command again" in msg
    kept = read_jsonl(out / "samples_hellaswag.jsonl")
    assert chunk <= len(kept) < n and len({r["id"] for r in kept}) == len(kept)
    assert not parts.exists()
    # the same command again: only the rest is computed
    again = subprocess.run(smollab_cmd(*args), env=env, cwd=REPO, text=True, capture_output=True,
                           timeout=300)  # fmt: skip
    assert again.returncode == 0, again.stderr
    res = json.loads((out / "results.json").read_text())["tasks"]["hellaswag"]
    recs = read_jsonl(out / "samples_hellaswag.jsonl")
    assert res["n"] == n and len(recs) == n and len({r["id"] for r in recs}) == n
    assert {r["id"]: r for r in recs}.keys() >= {r["id"] for r in kept}


def test_eval_chunk_from_the_environment(monkeypatch, small):
    from smollab.errors import ConfigError
    from smollab.eval.lm import HFLM
    from smollab.eval.runner import CHUNK, _chunk

    task, lm = (
        make_task("hellaswag", limit=2, data_dir=str(SHARED)),
        HFLM(small.model, small.tokenizer),
    )
    monkeypatch.delenv("SMOLLAB_EVAL_CHUNK", raising=False)
    assert _chunk(task, lm) == CHUNK
    monkeypatch.setenv("SMOLLAB_EVAL_CHUNK", "32")
    assert _chunk(task, lm) == 32
    for bad in ("0", "-4", "lots"):
        monkeypatch.setenv("SMOLLAB_EVAL_CHUNK", bad)
        with pytest.raises(ConfigError, match=f"SMOLLAB_EVAL_CHUNK={bad!r} is not a whole number"):
            _chunk(task, lm)
