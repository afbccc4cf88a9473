"""A finished study run as a model source: ``load_model(RUN_DIR)`` rebuilds the model the run's
worker evaluated (base model, then ``ckpt/final``: full weights or LoRA adapter), ``smollab
eval --model RUN_DIR`` reproduces the run's own evaluation item by item under a weights key of
its own, a study can start from a run, and runs that cannot be loaded are clear errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from smollab.errors import ConfigError, ModelLoadError
from smollab.models import load_model
from tests.cli.test_cli import assert_clean_error
from tests.conftest import TINY_CONFIG, one_line

# The tiny model of the shared fixtures; the task as a [[tasks]] table giving only the task
# (what `smollab eval --task arith.add` evaluates); a baseline, a full and a LoRA fine-tune.
SPEC = """\
[study]
name = "runs-as-models"
seeds = [0]

[[models]]
name = "tiny"
source = "scratch:gpt2"
tokenizer = "char"
config = { n_layer = 1, n_head = 2, n_embd = 32, block_size = 64 }

[[tasks]]
id = "add"
task = "arith.add"

[[conditions]]
name = "baseline"
format = "compact"

[[conditions]]
name = "full"
format = "compact"
[conditions.train]
steps = 4
lr = 1e-3
warmup_steps = 1
batch_size = 4
seq_len = 64
threads = 1

[[conditions]]
name = "lora"
format = "compact"
[conditions.train]
method = "lora"
steps = 4
lr = 1e-2
warmup_steps = 1
batch_size = 4
seq_len = 64
threads = 1

[eval]
batch_size = 16
"""

IDS = [[20, 30, 14, 25, 31, 11, 4, 40, 22]]  # character ids (digits, '+', '=')


def _lines(p: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in p.read_text().splitlines() if x.strip()]


def _execute(spec_text: str, root: Path) -> tuple[dict[str, Path], dict[str, Any]]:
    """Every run of the spec executed in-process under ``root``: run folders by condition,
    and the model each run's worker evaluated (captured where it is handed to evaluation)."""
    import smollab.study.worker as worker
    from smollab.study.runspec import expand
    from smollab.study.spec import loads_spec

    evaluated: dict[str, Any] = {}
    real = worker._evaluate_tasks

    def capture(run_dir: Path, spec: Any, *args: Any) -> Any:
        evaluated[spec.condition] = args[3]  # (emit, tasks, fmt, model, tokenizer, bench_lm)
        return real(run_dir, spec, *args)

    dirs = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SMOLLAB_HOME", str(root / "home"))
        mp.setattr(worker, "_evaluate_tasks", capture)
        for r in expand(loads_spec(spec_text, "s.toml")):
            d = root / "runs" / r.hash
            worker.prepare_run_dir(d, r)
            worker.execute_run(d)
            dirs[r.condition] = d
    return dirs, evaluated


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Path], dict[str, Any]]:
    return _execute(SPEC, tmp_path_factory.mktemp("study"))


def _logits(model: Any) -> Any:
    import torch

    with torch.no_grad():
        return model(torch.tensor(IDS)).logits


def test_a_run_loads_as_the_model_its_worker_evaluated(study: Any) -> None:
    import torch

    runs, evaluated = study
    base = _logits(load_model("scratch:gpt2", config=dict(TINY_CONFIG), seed=0).model)
    for cond, d in runs.items():
        lm = load_model(d)  # a Path, as a researcher would pass it
        # bit for bit what the worker evaluated (the trainer's own model, for trained runs)
        assert torch.equal(_logits(lm.model), _logits(evaluated[cond])), cond
        assert lm.source == str(d)
        info = lm.info
        assert info["kind"] == "run" and info["location"] == str(d.resolve())
        assert info["run_hash"] == d.name and info["run_label"] == f"{cond}/seed0"
        assert info["base_source"] == "scratch:gpt2" and info["base_info"]["kind"] == "scratch"
        trained = cond != "baseline"
        assert info["method"] == ({"full": "full", "lora": "lora"}.get(cond))
        assert info["checkpoint"] == (str((d / "ckpt" / "final").resolve()) if trained else None)
        # the check has teeth: training changed the logits; a baseline is its base model
        assert torch.equal(_logits(lm.model), base) is not trained, cond
    lora = load_model(runs["lora"])
    assert type(lora.model).__name__.startswith("PeftModel")  # unmerged, as evaluated
    assert any("lora_B" in n for n, _ in lora.model.named_parameters())
    assert type(load_model(runs["full"]).model).__name__ == "GPT2LMHeadModel"

    # a LoRA run's ckpt/final is the run; a full run's is a model folder with the same weights
    final = runs["lora"] / "ckpt" / "final"
    by_ckpt = load_model(str(final))
    assert by_ckpt.source == str(final) and by_ckpt.info["location"] == str(runs["lora"].resolve())
    assert torch.equal(_logits(by_ckpt.model), _logits(evaluated["lora"]))
    full_dir = load_model(runs["full"] / "ckpt" / "final")
    assert full_dir.info["kind"] == "dir"
    assert torch.equal(_logits(full_dir.model), _logits(evaluated["full"]))

    # dtype still applies, to the adapter too
    bf16 = load_model(runs["lora"], dtype="bfloat16")
    assert {p.dtype for p in bf16.model.parameters()} == {torch.bfloat16}
    with pytest.raises(ConfigError, match="which brings its own"):
        load_model(runs["full"], config={"n_layer": 2})


def test_eval_of_a_run_reproduces_its_own_evaluation(cli: Any, study: Any, tmp_path: Path) -> None:
    """`smollab eval --model RUN --task arith.add` (in the run's format, compact, by default)
    gives each item the completion the run's own evaluation wrote (predictions/add.jsonl),
    under a weights key that is neither the base model's nor another run's."""
    from smollab.eval.harness import make_task, model_key, run_eval

    runs, _ = study
    out = tmp_path / "lora"
    proc = cli("eval", "--model", runs["lora"], "--task", "arith.add", "--out", out)
    assert proc.returncode == 0, proc.stderr
    said = one_line(proc.stdout)
    assert "format compact, the run's (--format sets another)" in said, said
    assert "the task is built from the run's own [[tasks]] table 'add'" in said
    res = json.loads((out / "results.json").read_text())
    assert res["model"] == str(runs["lora"])
    assert res["model_info"]["kind"] == "run" and res["model_info"]["method"] == "lora"
    assert res["model_info"]["run_hash"] == runs["lora"].name

    def same_items(samples: list[dict[str, Any]], run: Path) -> None:
        own = _lines(run / "predictions" / "add.jsonl")
        assert len(samples) == len(own) == 650  # every default item: 50 of 1x1, 200 of others
        got = {s["id"]: s for s in samples}
        for p in own:
            s = got[p["id"]]
            assert (s["prompt"], s["completion"], s["correct"]) == (
                p["prompt"],
                p["completion"],
                p["correct"],
            ), p["id"]

    same_items(_lines(out / "samples_arith.add.jsonl"), runs["lora"])
    # the full fine-tune in-process, as a library user would
    task = make_task("arith.add", format="compact")
    full = load_model(runs["full"])
    run_eval(full, [task], tmp_path / "full", use_cache=False)
    same_items(_lines(tmp_path / "full" / "samples_arith.add.jsonl"), runs["full"])
    # teeth: what the trained runs wrote differs from the untrained base's completions
    base_preds = _lines(runs["baseline"] / "predictions" / "add.jsonl")
    full_preds = _lines(runs["full"] / "predictions" / "add.jsonl")
    assert [p["completion"] for p in full_preds] != [p["completion"] for p in base_preds]

    # the request cache and samples key: every run its own, none the base model's
    base = load_model("scratch:gpt2", config=dict(TINY_CONFIG), seed=0)
    keys = {
        "base": model_key(base),
        "baseline run": model_key(load_model(runs["baseline"])),
        "full": model_key(full),
        "lora": res["model_key"],
    }
    assert len(set(keys.values())) == 4, keys
    assert model_key(load_model(runs["full"])) == keys["full"]  # stable across loads
    # so the base model's evaluation is never read back as the run's
    with pytest.raises(ConfigError, match="one results folder holds one model"):
        run_eval(base, [task], tmp_path / "full", use_cache=False)


def test_a_study_can_start_from_a_run(study: Any, tmp_path: Path) -> None:
    """source = a LoRA run: its baseline is that run's model (same predictions); full and LoRA
    fine-tunes train on its weights with the adapter merged in, and load back as evaluated."""
    import torch

    from smollab.models.loader import check_source, model_skeleton
    from smollab.study.spec import loads_spec

    runs, _ = study
    source = json.dumps(str(runs["lora"]))
    text = SPEC.replace('source = "scratch:gpt2"\ntokenizer = "char"\n', f"source = {source}\n")
    text = text.replace(
        "config = { n_layer = 1, n_head = 2, n_embd = 32, block_size = 64 }\n", ""
    ).replace('method = "lora"\n', 'method = "lora"\nlora_targets = ["c_attn"]\n')
    # the spec checks know the run's window: its base model's block_size
    gsm = '[[tasks]]\nid = "g"\ntask = "gsm8k"\nmax_tokens = 64\n\n[[conditions]]'
    with pytest.raises(ConfigError) as e:
        loads_spec(text.replace("[[conditions]]", gsm, 1), "s.toml")
    msg = str(e.value)
    assert "64 tokens (config.block_size = 64, the base model 'scratch:gpt2' of run" in msg
    check_source(str(runs["lora"]))  # what a session checks before its runs
    assert "transformer.h.0.attn.c_attn" in dict(model_skeleton(str(runs["lora"])).named_modules())

    chain, evaluated = _execute(text, tmp_path)
    assert _lines(chain["baseline"] / "predictions" / "add.jsonl") == _lines(
        runs["lora"] / "predictions" / "add.jsonl"
    )
    for cond, d in chain.items():
        lm = load_model(d)
        assert lm.info["base_source"] == str(runs["lora"])
        assert lm.info["base_info"]["kind"] == "run"
        assert torch.equal(_logits(lm.model), _logits(evaluated[cond])), cond
    record = json.loads((chain["full"] / "record.json").read_text())
    assert record["model_info"]["kind"] == "run"  # the new runs say what they started from


def test_runs_that_cannot_be_loaded_are_clear_errors(study: Any, tmp_path: Path) -> None:
    from smollab.study.runspec import expand
    from smollab.study.spec import loads_spec
    from smollab.study.worker import prepare_run_dir
    from tests.study.test_grok_study import spec_text

    runs, _ = study

    def fails(d: Path, says: str) -> str:
        with pytest.raises(ModelLoadError) as e:
            load_model(d)
        msg = str(e.value)
        assert says in msg and str(d) in msg, msg
        assert "\n" not in msg, "one paragraph"
        # a study spec naming it is refused before anything runs, with the same reason
        with pytest.raises(ConfigError, match="field 'models\\[0\\].source'"):
            loads_spec(SPEC.replace('"scratch:gpt2"\ntokenizer = "char"\n', json.dumps(str(d)) +
                                    "\n").replace("config = { n_layer = 1, n_head = 2, n_embd "
                                                  "= 32, block_size = 64 }\n", ""))  # fmt: skip
        return msg

    def copy(name: str, cond: str, *files: str) -> Path:
        d = tmp_path / name
        d.mkdir()
        for f in files:
            shutil.copy(runs[cond] / f, d / f)
        return d

    msg = fails(copy("unfinished", "full", "spec.json"), "is not a finished run (no record.json)")
    assert "smollab study SPEC.toml resumes" in msg
    msg = fails(
        copy("damaged", "full", "spec.json", "record.json"),
        "trains (full) but has no trained checkpoint",
    )
    assert "Delete the run folder and run its study again" in msg

    (tmp_path / "grok").mkdir()
    grok = next(iter(expand(loads_spec(spec_text(), "g.toml"))))
    prepare_run_dir(tmp_path / "grok", grok)
    (tmp_path / "grok" / "record.json").write_text("{}")
    fails(tmp_path / "grok", "is a run of a 'grok' study (model 'small:decoder'), which trains no")

    api_spec = (
        '[study]\nname = "api"\nseeds = [0]\n\n[[models]]\nname = "served"\nsource = '
        '"openai:local"\nbase_url = "http://127.0.0.1:9/v1"\n\n[[tasks]]\nid = "add"\ntask = '
        '"arith.add"\n\n[[conditions]]\nname = "baseline"\nformat = "chat_answer"\n'
    )
    api_run = next(iter(expand(loads_spec(api_spec, "a.toml"))))
    prepare_run_dir(tmp_path / "api", api_run)
    (tmp_path / "api" / "record.json").write_text("{}")
    msg = fails(tmp_path / "api", "is a run of the API model 'openai:local'")
    assert "smollab eval --model openai:local --task TASK" in msg

    bad = copy("corrupt", "full", "record.json")
    (bad / "spec.json").write_text("{")
    fails(bad, "cannot be loaded")
    (bad / "spec.json").write_text('{"model": {"source": "smollm2-135m"}}')
    fails(bad, "has a spec.json that is not a study run's (study: Field required)")

    gone = copy("gone", "baseline", "record.json")
    spec = json.loads((runs["baseline"] / "spec.json").read_text())
    spec["model"].update(source="./gone/model", tokenizer=None, config={})
    (gone / "spec.json").write_text(json.dumps(spec))
    msg = fails(gone, "starts from the model './gone/model' (its spec.json), which cannot be")
    assert "Model path ./gone/model does not exist" in msg and "relative path" in msg


def test_sample_run_uses_the_same_loader(cli: Any, study: Any, tmp_path: Path) -> None:
    """`smollab sample --run` refuses what load_model refuses, naming --run."""
    runs, _ = study
    d = tmp_path / "damaged"
    d.mkdir()
    for f in ("spec.json", "record.json"):
        shutil.copy(runs["full"] / f, d / f)
    msg = assert_clean_error(cli("sample", "--run", d, "--prompt", "1+1"), code=2)
    assert f"--run {d} trains (full) but has no trained checkpoint" in msg


def test_eval_of_a_run_holds_out_what_the_run_held_out(tmp_path: Path) -> None:
    """A run trained with its own split (n_test, data_seed, strata): `smollab eval`'s items for
    the run's task are exactly the run's test items, in the run's format, none of them trained
    on; the default split would have scored training items (the QA contamination)."""
    from smollab.eval.harness import make_tasks, run_eval
    from smollab.study.worker import load_run_spec

    table = 'task = "arith.add"\nstrata = ["1x1", "1x2"]\nn_test = 6\ndata_seed = 7\n'
    text = SPEC.replace('task = "arith.add"\n', table)
    text = text.split('[[conditions]]\nname = "lora"')[0] + "[eval]\nbatch_size = 16\n"
    text = text.replace('[[conditions]]\nname = "baseline"\nformat = "compact"\n\n', "")
    runs, _ = _execute(text, tmp_path / "study")
    run = runs["full"]
    spec = load_run_spec(run)
    trained = {(r["question"]["a"], r["question"]["b"]) for r in _lines(run / "train_data.jsonl")}
    own = _lines(run / "predictions" / "add.jsonl")
    opts = {"limit": None, "format": None, "num_fewshot": None}

    (task,) = make_tasks(["arith.add"], opts, run=spec, run_dir=run)
    assert [d["id"] for d in task.docs()] == [p["id"] for p in own]
    assert len(own) == 12 and task.fmt.name == "compact"
    asked = {(e.question["a"], e.question["b"]) for e in task.examples()}
    assert len(asked) == 12 and not asked & trained
    note = task.note  # type: ignore[attr-defined]
    assert f"held-out items of run {run}" in note and "n_test=6" in note and "data_seed=7" in note
    assert "format compact, the run's" in note
    res = run_eval(load_model(run), [task], tmp_path / "ev", use_cache=False)
    assert res["tasks"]["arith.add"]["note"] == note
    got = {s["id"]: s for s in _lines(tmp_path / "ev" / "samples_arith.add.jsonl")}
    for p in own:  # the run's own completions, item by item
        assert (got[p["id"]]["prompt"], got[p["id"]]["completion"]) == (
            p["prompt"],
            p["completion"],
        )
    # a stratum suffix and --limit narrow the run's items; an explicit --format wins
    (sub,) = make_tasks(
        ["arith.add:1x2"], {**opts, "limit": 2, "format": "plain"}, run=spec, run_dir=run
    )
    assert [d["id"] for d in sub.docs()] == [p["id"] for p in own if p["stratum"] == "1x2"][:2]
    assert sub.fmt.name == "plain" and "format" not in (sub.note or "")  # type: ignore[attr-defined]
    with pytest.raises(ConfigError, match="those of the run's own"):
        make_tasks(["arith.add:2x2"], opts, run=spec, run_dir=run)
    # teeth: without the run, the default split's items include training items
    (default,) = make_tasks(["arith.add:1x1,1x2"], opts)
    assert {(e.question["a"], e.question["b"]) for e in default.examples()} & trained


def test_eval_of_a_text_run_on_its_training_file_warns(tmp_path: Path) -> None:
    """--task text:PATH on a run that trained on PATH (its held-out sample drawn from it) is
    warned of, naming the session's test file to evaluate instead; the run's format is used."""
    from types import SimpleNamespace

    from smollab.eval.harness import make_tasks
    from tests.tasks.test_text import qa_records, write_jsonl

    qa = write_jsonl(tmp_path / "qa.jsonl", qa_records())
    run_dir = tmp_path / "s" / "runs" / "abc"
    (tmp_path / "s" / "data").mkdir(parents=True)
    write_jsonl(tmp_path / "s" / "data" / "qa_test.jsonl", [])
    run = SimpleNamespace(
        tasks=[{"id": "qa", "task": "text", "path": str(qa)}], format="text_chat", hash="abc"
    )
    opts = {"limit": None, "format": None, "num_fewshot": None}
    (task,) = make_tasks([f"text:{qa}"], opts, run=run, run_dir=run_dir)
    note = one_line(task.note)  # type: ignore[attr-defined]
    assert f"WARNING: {qa} is the file run {run_dir} trained on (task 'qa'" in note, note
    assert f"--task text:{tmp_path / 's' / 'data' / 'qa_test.jsonl'}" in note
    assert task.fmt.name == "text_chat"
    other = write_jsonl(tmp_path / "other.jsonl", qa_records())
    (task,) = make_tasks([f"text:{other}"], opts, run=run, run_dir=run_dir)
    assert "WARNING" not in (task.note or "")  # type: ignore[attr-defined]
