"""``smollab train``: one model trained as a study of one condition, through the real CLI,
and the study spec its flags describe."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import pytest

from smollab.cli.train import build_spec, parse_sets
from smollab.errors import ConfigError
from smollab.study.runspec import expand
from smollab.study.spec import dumps_spec, load_spec, loads_spec
from tests.cli.test_cli import assert_clean_error
from tests.conftest import TINY_SPEC, one_line

# the tiny study's model and its fine-tuned condition, as flags
TINY = ("--model", "scratch:gpt2", "--set", "model.n_layer=1", "--set", "model.n_head=2",
        "--set", "model.n_embd=32", "--set", "model.block_size=64",
        "--tokenizer", "char")  # fmt: skip
FT = ("--format", "compact", "--steps", "4", "--lr", "1e-3", "--batch-size", "4", "--seq-len",
      "64", "--set", "warmup_steps=1", "--set", "eval_every=2", "--set", "eval_items=4",
      "--set", "checkpoint_every=2", "--set", "threads=1",
      "--set", "eval.batch_size=16")  # fmt: skip
TASK = ("--task", "arith.add:1x1,1x2", "--set", "task.n_test=12")


def _spec(**kw: Any) -> dict[str, Any]:
    args: dict[str, Any] = dict(model=None, tasks=["arith.add"], fmt=None, train_flags={},
                                sets=[], seeds=[0], baseline=False, name=None,
                                tokenizer=None)  # fmt: skip
    return build_spec(**{**args, **kw})


def test_train_is_the_study_of_its_flags(cli: Any, tmp_path: Path) -> None:
    """The flags of the tiny study's fine-tune give the same runs (the same content hashes) as
    the hand-written spec; each trained run keeps its model, and the results compare it with
    the baseline; the same command again reuses the runs, and so does `smollab study` on the
    spec it wrote."""
    out = tmp_path / "out"
    args = ("train", *TASK, *TINY, *FT, "--seed", "0", "--seed", "1", "--baseline",
            "--session-name", "tiny", "--out", out, "--no-pdf")  # fmt: skip
    proc = cli(*args)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    session = out / "tiny"
    written = load_spec(session / "study.toml")
    want = loads_spec(TINY_SPEC)
    assert sorted(r.hash for r in expand(written)) == sorted(r.hash for r in expand(want))
    assert [c.name for c in written.conditions] == ["baseline", "train"]
    for r in expand(written):
        rec = json.loads((session / "runs" / r.hash / "record.json").read_text())
        if r.condition == "train":
            assert rec["train"]["steps"] == 4
            assert (session / "runs" / r.hash / "ckpt" / "final" / "config.json").is_file()
    results = json.loads((session / "results" / "results.json").read_text())
    assert set(results["conditions"]) == {"baseline", "train"}
    assert results["comparisons"], "the trained condition is compared with the baseline"
    assert not (session / "report.md").exists()  # --report writes it; smollab report later
    said = one_line(proc.stdout)
    assert "train/seed0: 4 steps" in said and "train/seed1: 4 steps" in said
    assert "(mean of the last 4 steps)" in said
    assert "smollab sample --run" in said and f"smollab report {session}" in said
    # the hints need no --format: sample and eval of a run default to its format (compact)
    assert "--prompt '23*47' (wrapped in its format, compact)" in said
    assert "on its held-out items, in its format: smollab eval --model" in said
    assert said.split("smollab eval --model ")[1].split()[1:3] == ["--task", "arith.add"]

    again = cli(*args)
    assert again.returncode == 0, again.stderr
    # a from-scratch model's baseline runs on every seed too: 2 + 2 runs
    assert one_line(again.stdout).count("reused finished run") == 4
    study = cli("study", session / "study.toml", "--out", out, "--no-pdf")
    assert study.returncode == 0, study.stderr
    assert one_line(study.stdout).count("reused finished run") == 4
    assert (session / "report.md").is_file()  # a study writes its report


def test_train_grokking_task(cli: Any, tmp_path: Path) -> None:
    """A grokking task trains the reference protocol's small model from scratch."""
    out = tmp_path / "out"
    proc = cli("train", "--task", "grok.x_plus_y", "--set", "task.p=11", "--steps", "30",
               "--batch-size", "32", "--set", "eval_every=10", "--set", "snapshot_steps='none'",
               "--out", out, "--no-pdf")  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    session = out / "train-x_plus_y-small-decoder"
    spec = load_spec(session / "study.toml")
    assert spec.study.kind == "grok"
    assert spec.models[0].source == "small:decoder" and spec.models[0].config == {"init": "mha"}
    (run,) = expand(spec)
    rec = json.loads((session / "runs" / run.hash / "record.json").read_text())
    assert rec["train"]["steps"] == 30 and rec["train"]["planned_steps"] == 30
    assert "train/x_plus_y/seed0: 30 steps" in one_line(proc.stdout)


def test_help_shows_the_spec_tables(cli: Any) -> None:
    """rich read [conditions.train] in the help as markup and printed "a study's (language
    models)"."""
    said = one_line(cli("train", "--help").stdout)
    assert "a study's [conditions.train] (language models) or [conditions.config]" in said


def test_bad_flags_are_clean_errors_and_write_nothing(cli: Any, tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = cli("train", "--task", "arith.add", "--lr", "-1", "--out", out)
    msg = assert_clean_error(proc, 2)
    assert "--lr" in msg and "greater than 0" in msg
    assert not out.exists()


@pytest.mark.parametrize(
    ("kw", "said"),
    [
        ({"tasks": ["hellaswag"]}, "hellaswag is a benchmark that is only evaluated"),
        ({"tasks": ["nope"]}, "Unknown task 'nope' in --task nope"),
        ({"tasks": ["arith.add:"]}, "names no stratum after ':'"),
        ({"tasks": ["arith.add", "arith.add:1x1"]}, "names one task twice"),
        ({"tasks": ["grok.x_plus_y", "arith.add"]}, "mixes grokking tasks (grok.x_plus_y)"),
        ({"train_flags": {"method": "lorax"}}, "--method: Input should be 'full' or 'lora'"),
        ({"sets": ["lrr=3"]}, "--set lrr=...: fine-tuning has no setting 'lrr'. Did you mean 'lr'"),
        ({"sets": ["foo"]}, "--set 'foo' is not KEY=VALUE"),
        ({"sets": ["bogus.x=1"]}, "'bogus.x' is not a setting"),
        ({"sets": ["lr=1", "lr=2"]}, "--set gives 'lr' twice"),
        ({"train_flags": {"steps": 5}, "sets": ["steps=6"]}, "--steps and --set steps=..."),
        ({"sets": ["task.bogus=1"]}, "none of the tasks (arith.add) has an option 'bogus'"),
        ({"fmt": "nope"}, "Unknown prompt format 'nope' in --format"),
        (
            {"train_flags": {"steps": 20}, "sets": ["warmup_steps=50"]},
            "warmup_steps = 50 is not below steps = 20",
        ),  # fmt: skip
        (
            {"tasks": ["grok.x_plus_y"], "fmt": "compact", "baseline": True},
            "--format, --baseline are for language-model training",
        ),  # fmt: skip
        (
            {"tasks": ["grok.x_plus_y"], "sets": ["pack=false"]},
            "grokking training has no setting 'pack'",
        ),  # fmt: skip
        # --task names the task; a --set task.task would train another under its name
        ({"sets": ["task.task=arith.mul"]}, "--set task.task='arith.mul': the task is named by"),
        ({"sets": ["task.id=x"]}, "--set task.id='x': the task is named by --task"),
        (
            {"tasks": ["arith.add:1x1"], "sets": ['task.strata=["1x2"]']},
            "--task arith.add:1x1 and --set task.strata=... both give arith.add's strata",
        ),  # fmt: skip
        # inf passed pydantic's lr > 0 and failed later, in the spec writer, unnamed
        ({"train_flags": {"lr": float("inf")}}, "--lr: inf is not a finite number"),
        ({"sets": ["betas=[0.9, inf]"]}, "--set betas=[0.9, inf]: inf is not a finite number"),
        ({"sets": ["task.n_test=nan"]}, "--set task.n_test=nan: nan is not a finite number"),
        # a bad --set value is named as the --set, not as the flag the user did not give
        ({"sets": ['lr="3e-4"']}, "--set lr=...: Input should be a valid number (got '3e-4')"),
        # a tuple setting given too few values: not pydantic's "Field required"
        ({"sets": ["betas=[0.9]"]}, "--set betas=...: betas takes 2 numbers, e.g. --set"),
    ],
)
def test_bad_flags_name_the_flag(kw: dict[str, Any], said: str) -> None:
    with pytest.raises(ConfigError) as e:
        _spec(**kw)
    assert said in one_line(e.value.message)


def test_set_values_are_toml() -> None:
    got = parse_sets(["warmup_steps=5", "betas=[0.9, 0.99]", 'weights={"2x2" = 4}',
                      "bf16_autocast=true", "lora_targets=q_proj", "task.n_test=100",
                      "model.n_layer=2", "eval.batch_size=8", "lr=3e-4"])  # fmt: skip
    assert got == {
        "train": {
            "warmup_steps": 5,
            "betas": [0.9, 0.99],
            "weights": {"2x2": 4},
            "bf16_autocast": True,
            "lora_targets": "q_proj",
            "lr": 3e-4,
        },  # fmt: skip
        "task": {"n_test": 100},
        "model": {"n_layer": 2},
        "eval": {"batch_size": 8},
    }


def test_task_options_go_to_the_tasks_that_take_them() -> None:
    spec = _spec(tasks=["arith.mul:2x2", "hellaswag"], sets=["task.n_test=20", "task.limit=5"])
    assert spec["tasks"] == [
        {"id": "mul", "task": "arith.mul", "n_test": 20, "strata": ["2x2"]},
        {"id": "hellaswag", "task": "hellaswag", "limit": 5},
    ]
    assert spec["conditions"] == [{"name": "train", "train": {}}]
    assert spec["models"] == [{"name": "smollm2-135m", "source": "smollm2-135m"}]


def test_dumps_spec_reads_back() -> None:
    data = tomllib.loads(TINY_SPEC)
    data["study"]["title"] = 'a "quoted" title \\ with ünïcode\nand a newline'
    data["conditions"][1]["train"]["weights"] = {"1x1": 1, "1x2": 2.5}
    text = dumps_spec(data)
    assert tomllib.loads(text) == data
    assert "[conditions.train]" in text and "[[tasks]]" in text
    with pytest.raises(ConfigError, match="cannot hold the value nan"):
        dumps_spec({"study": {"x": float("nan")}})


def test_local_model_and_tokenizer_paths_are_written_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A relative --model/--tokenizer is read against the current directory; the spec holds
    it absolute, so `smollab study SESSION/study.toml` from another directory loads the same
    model (and finds the same run hashes)."""
    (tmp_path / "runs" / "abc").mkdir(parents=True)
    (tmp_path / "tok").mkdir()
    monkeypatch.chdir(tmp_path)
    spec = _spec(model="runs/abc", tokenizer="tok")
    assert spec["models"] == [
        {
            "name": "abc",
            "source": str(tmp_path / "runs" / "abc"),
            "tokenizer": str(tmp_path / "tok"),
        }
    ]
    assert spec["study"]["name"] == "train-add-abc"
    kept = _spec(model="scratch:gpt2", tokenizer="char")["models"][0]
    assert (kept["source"], kept["tokenizer"]) == ("scratch:gpt2", "char")
    assert _spec(tasks=["grok.x_plus_y"], model="runs/abc")["models"][0]["source"] == str(
        tmp_path / "runs" / "abc"
    )


def test_spec_errors_name_the_flag(cli: Any, tmp_path: Path) -> None:
    """An error the study spec raises names its field (conditions[0].train.seq_len); the
    message also says which flag sets it, and nothing is written."""
    out = tmp_path / "out"
    # the tiny model's block_size is 64, below the default seq_len
    proc = cli("train", "--task", "arith.add", *TINY, "--out", out)
    msg = assert_clean_error(proc, 2)
    assert "seq_len = 128 is longer than" in msg
    assert msg.endswith("(In smollab train's flags: --seq-len)")
    proc = cli("train", "--task", "arith.add", *TINY, "--set", "task.n_test=abc", "--out", out)
    assert "(In smollab train's flags: --set task.n_test=...)" in assert_clean_error(proc, 2)
    assert not out.exists()


def test_lora_run_says_where_its_adapter_is(cli: Any, tmp_path: Path) -> None:
    """A LoRA run's ckpt/final holds the adapter, and the output says so; a LoRA setting that
    fails when the run starts (a target the model lacks) is also named as its flag."""
    out = tmp_path / "out"
    args = ("train", *TASK, *TINY, *FT, "--method", "lora", "--out", out, "--no-pdf")
    bad = cli(*args, "--set", 'lora_targets=["zzz"]')
    msg = assert_clean_error(bad, 2)
    assert (
        "'zzz' names no module" in msg
        and "(In smollab train's flags: --set lora_targets=...)" in msg
    )
    proc = cli(*args)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    said = one_line(proc.stdout)
    assert "train/seed0: 4 steps" in said and "; LoRA adapter in " in said
    (final,) = (out / "train-add-scratch-gpt2" / "runs").glob("*/ckpt/final")
    assert (final / "adapter_config.json").is_file()


def test_text_task_data_file_is_written_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A relative task.path is made absolute in study.toml, as --model is, so the study runs
    again from any folder; a format that does not fit the text task names --format."""
    (tmp_path / "qa.jsonl").write_text(
        "".join(json.dumps({"prompt": f"Q{i}:", "answer": str(i)}) + "\n" for i in range(20))
    )
    monkeypatch.chdir(tmp_path)
    spec = _spec(tasks=["text"], sets=["task.path=qa.jsonl"])
    assert spec["tasks"][0]["path"] == str(tmp_path / "qa.jsonl")
    assert "format" not in spec["conditions"][0]  # the text task's own default format


def test_text_task_file_given_after_the_colon(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--task text:PATH names the data file, as in smollab eval; each such task is named after
    its file, so one file is trained on and another evaluated; the file given twice, or no
    file after the colon, is refused naming the flags."""
    from smollab.errors import ConfigError

    for name in ("qa.jsonl", "held.jsonl.gz"):
        (tmp_path / name).write_text("")
    monkeypatch.chdir(tmp_path)
    spec = _spec(tasks=["text:qa.jsonl", "text:held.jsonl.gz"], name="s")
    assert [(t["id"], t["task"], t["path"]) for t in spec["tasks"]] == [
        ("qa", "text", str(tmp_path / "qa.jsonl")),
        ("held", "text", str(tmp_path / "held.jsonl.gz")),
    ]
    with pytest.raises(ConfigError, match=r"--task text:qa.jsonl and --set task.path='x.jsonl'"):
        _spec(tasks=["text:qa.jsonl"], sets=["task.path=x.jsonl"])
    with pytest.raises(ConfigError, match=r"--task text: names no file after ':'"):
        _spec(tasks=["text:"])


def test_a_format_that_does_not_fit_names_the_flag(cli: Any, tmp_path: Path) -> None:
    data = tmp_path / "qa.jsonl"
    data.write_text(
        "".join(json.dumps({"prompt": f"Q{i}:", "answer": str(i)}) + "\n" for i in range(20))
    )
    proc = cli("train", "--task", "text", "--set", f"task.path={data}", "--format", "plain",
               "--model", "scratch:gpt2", "--tokenizer", "char",
               "--out", tmp_path / "out")  # fmt: skip
    msg = assert_clean_error(proc, 2)
    assert "formats that fit it are text, text_chat" in msg
    assert msg.endswith("(In smollab train's flags: --format)")


def test_a_task_rule_error_gives_its_fix_in_flag_syntax() -> None:
    """--set task.n_test=100 on arith.mul (1x1 has 100 pairs): the spec's refusal, as train
    says it, names no '(top level)' field and gives the fix as a --set flag that works."""
    from smollab.cli.train import _in_flags

    def refusal(sets: list[str]) -> str:
        spec = build_spec(model="scratch:gpt2", tasks=["arith.mul"], fmt=None, train_flags={},
                          sets=sets, seeds=[0], baseline=False, name="t",
                          tokenizer=None)  # fmt: skip
        with pytest.raises(ConfigError) as e:
            loads_spec(dumps_spec(spec), "study.toml")
        return _in_flags(e.value.message)

    msg = refusal(["task.n_test=100"])
    assert "(top level)" not in msg and "n_test for stratum '1x1' is 100" in msg, msg
    fix = """--set 'task.n_test_per_stratum={"1x1"=50}'"""
    assert f"(e.g. {fix})" in msg, msg
    spec = build_spec(model="scratch:gpt2", tasks=["arith.mul"], fmt=None, train_flags={},
                      sets=["task.n_test=100", fix.split()[1].strip("'")], seeds=[0],
                      baseline=False, name="t", tokenizer=None)  # fmt: skip
    loads_spec(dumps_spec(spec), "study.toml")  # the fix works
    # the help's example works on the default task
    loads_spec(dumps_spec(build_spec(model="scratch:gpt2", tasks=["arith.mul"], fmt=None,
               train_flags={}, sets=["task.n_test=50"], seeds=[0], baseline=False, name="t",
               tokenizer=None)), "study.toml")  # fmt: skip


def test_a_model_that_brings_its_own_config_names_the_flags() -> None:
    """--set model.n_layer=2 / --tokenizer DIR on smollm2: the refusal maps to train's flags."""
    from smollab.cli.train import _in_flags

    msg = (
        "s.toml: models[0] ('smollm2-135m') sets config and tokenizer, which only from-scratch "
        "models use; 'smollm2-135m' brings its own. Remove config and tokenizer."
    )
    said = _in_flags(msg)
    assert said.endswith("(In smollab train's flags: --set model.FIELD=... and --tokenizer)")
    assert _in_flags(msg.replace("config and tokenizer", "tokenizer")).endswith(
        "(In smollab train's flags: --tokenizer)"
    )
