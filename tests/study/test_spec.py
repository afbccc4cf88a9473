"""Study specs, RunSpecs and problem files: validation messages and content hashing."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from smollab.errors import ConfigError
from smollab.study.problem import load_problem
from smollab.study.runspec import RunSpec, expand
from smollab.study.spec import load_spec, loads_spec
from tests.conftest import TINY_SPEC


def bad(text: str, source: str = "s.toml") -> str:
    with pytest.raises(ConfigError) as e:
        loads_spec(text, source)
    msg = str(e.value)
    assert "\n\n" not in msg.strip(), "one paragraph"
    return msg


def test_tiny_spec_parses(tiny_spec_text: str) -> None:
    spec = loads_spec(tiny_spec_text, "tiny.toml")
    assert spec.study.name == "tiny"
    assert [c.name for c in spec.conditions] == ["baseline", "ft"]
    base, ft = spec.conditions
    assert base.is_baseline and not ft.is_baseline
    assert ft.train is not None and ft.train.steps == 4 and ft.train.lr == 1e-3
    # a from-scratch model's baseline is each seed's random initialisation: every seed runs
    assert spec.seeds_for(base) == [0, 1] and spec.seeds_for(ft) == [0, 1]
    assert spec.model_for(ft).source == "scratch:gpt2"


def test_a_pretrained_models_baseline_runs_once_a_scratch_models_on_every_seed(
    tiny_spec_text: str,
) -> None:
    """QA: with a scratch model each trained seed started from its own initialisation but the
    baseline ran seed 0 alone, so seeds 1.. were compared with an initialisation they never had."""
    text = tiny_spec_text.replace(
        'source = "scratch:gpt2"\ntokenizer = "char"\n'
        "config = { n_layer = 1, n_head = 2, n_embd = 32, block_size = 64 }",
        'source = "smollm2-135m-instruct"',
    )
    spec = loads_spec(text, "pre.toml")
    base, ft = spec.conditions
    assert spec.seeds_for(base) == [0] and spec.seeds_for(ft) == [0, 1]
    runs = expand(loads_spec(tiny_spec_text, "tiny.toml"))
    assert sorted((r.condition, r.seed) for r in runs) == [
        ("baseline", 0), ("baseline", 1), ("ft", 0), ("ft", 1)
    ]  # fmt: skip
    pinned = loads_spec(
        tiny_spec_text.replace('name = "baseline"', 'name = "baseline"\nseeds = [3]')
    )
    assert pinned.seeds_for(pinned.conditions[0]) == [3]  # a condition's own seeds still win


def test_load_spec_from_file(tmp_path: Path, tiny_spec_text: str) -> None:
    p = tmp_path / "study.toml"
    p.write_text(tiny_spec_text)
    assert load_spec(p).study.name == "tiny"
    with pytest.raises(ConfigError, match="does not exist"):
        load_spec(tmp_path / "missing.toml")
    with pytest.raises(ConfigError, match="cannot be read"):
        load_spec(tmp_path)


def test_malformed_toml_names_file(tmp_path: Path, tiny_spec_text: str) -> None:
    p = tmp_path / "broken.toml"
    p.write_text(tiny_spec_text.replace("[study]", "[study"))
    with pytest.raises(ConfigError) as e:
        load_spec(p)
    assert str(p) in str(e.value)
    assert "not valid TOML" in str(e.value)
    assert "line 2" in str(e.value)


def test_unknown_field_names_path_and_suggests(tiny_spec_text: str) -> None:
    msg = bad(tiny_spec_text.replace("lr = 1e-3", "lrr = 1e-3"))
    assert "s.toml" in msg
    assert "conditions[1].train.lrr" in msg
    assert "Did you mean 'lr'?" in msg


@pytest.mark.parametrize(
    ("old", "new", "field", "suggest"),
    [
        ('name = "tiny"\n', 'nme = "tiny"\nname = "tiny"\n', "study.nme", "name"),
        (
            'source = "scratch:gpt2"\n',
            'source = "scratch:gpt2"\nsorce = 1\n',
            "models[0].sorce",
            "source",
        ),
        ("[eval]\n", "[eval]\nbatchsize = 3\n", "eval.batchsize", "batch_size"),
        ("n_test = 12", "n_tset = 12", "n_tset", "n_test"),  # a task's own config class
    ],
)
def test_unknown_field_everywhere(
    tiny_spec_text: str, old: str, new: str, field: str, suggest: str
) -> None:
    msg = bad(tiny_spec_text.replace(old, new, 1))
    assert field in msg
    assert f"Did you mean {suggest!r}?" in msg


def test_negative_lr(tiny_spec_text: str) -> None:
    msg = bad(tiny_spec_text.replace("lr = 1e-3", "lr = -0.5"))
    assert "conditions[1].train.lr" in msg
    assert "greater than 0" in msg
    assert "-0.5" in msg


def test_a_warmup_that_never_ends(tiny_spec_text: str) -> None:
    msg = bad(tiny_spec_text.replace("warmup_steps = 1", "warmup_steps = 4"))
    assert "conditions[1].train" in msg
    assert "warmup_steps = 4 is not below steps = 4" in msg and "lr = 0.001" in msg
    # the default warm-up (10 steps) on a 4-step run stays a plain ramp, as before
    loads_spec(tiny_spec_text.replace("warmup_steps = 1\n", ""))


def test_a_default_warmup_longer_than_the_run_survives_the_run_folder(
    tiny_spec_text: str, tmp_path: Path
) -> None:
    """The worker reads the run back from spec.json, where the default warm-up (10) of a
    4-step run is written out like a field the user set: it is not refused there (it was, and
    every such run failed before training)."""
    from smollab.study.worker import load_run_spec, prepare_run_dir

    spec = loads_spec(tiny_spec_text.replace("warmup_steps = 1\n", ""))
    run = next(r for r in expand(spec) if r.train is not None)
    assert run.train.steps == 4 and run.train.warmup_steps == 10
    prepare_run_dir(tmp_path / run.hash, run)
    again = load_run_spec(tmp_path / run.hash)
    assert again == run and again.hash == run.hash


def test_missing_field(tiny_spec_text: str) -> None:
    msg = bad(tiny_spec_text.replace('source = "scratch:gpt2"\n', ""))
    assert "models[0].source" in msg and "required" in msg


def test_unknown_task_lists_valid(tiny_spec_text: str) -> None:
    msg = bad(tiny_spec_text.replace('task = "arith.add"', 'task = "arith.div"'))
    assert "'arith.div'" in msg
    assert "arith.add" in msg and "arith.mul" in msg
    assert "tasks[0]" in msg


def test_unknown_prompt_format(tiny_spec_text: str) -> None:
    text = tiny_spec_text.replace(
        'name = "ft"\nformat = "compact"', 'name = "ft"\nformat = "fancy"'
    )
    msg = bad(text)
    assert "'fancy'" in msg and "conditions[1].format" in msg
    assert "compact_rev" in msg and "plain" in msg


def test_duplicate_condition_names(tiny_spec_text: str) -> None:
    msg = bad(tiny_spec_text.replace('name = "ft"', 'name = "baseline"'))
    assert "condition names must be distinct" in msg
    assert "'baseline', 'baseline'" in msg


def test_condition_naming_unknown_model(tiny_spec_text: str) -> None:
    msg = bad(tiny_spec_text.replace('name = "ft"\n', 'name = "ft"\nmodel = "big"\n'))
    assert "'big'" in msg and "tiny-gpt2" in msg


def test_duplicate_seeds(tiny_spec_text: str) -> None:
    msg = bad(tiny_spec_text.replace("seeds = [0, 1]", "seeds = [0, 0]"))
    assert "seeds must be distinct" in msg


def test_identical_conditions_are_caught_by_expand(tiny_spec_text: str) -> None:
    twin = tiny_spec_text.split('[[conditions]]\nname = "ft"', 1)[1]
    text = tiny_spec_text.replace(
        "[eval]", '[[conditions]]\nname = "ft_twin"' + twin.split("[eval]")[0] + "[eval]"
    )
    spec = loads_spec(text, "twin.toml")
    assert [c.name for c in spec.conditions] == ["baseline", "ft", "ft_twin"]
    with pytest.raises(ConfigError) as e:
        expand(spec)
    assert "'ft'" in str(e.value) and "'ft_twin'" in str(e.value)
    assert "identical" in str(e.value)


def test_expand_runs(tiny_spec_text: str) -> None:
    runs = expand(loads_spec(tiny_spec_text))
    assert [r.label for r in runs] == ["baseline/seed0", "baseline/seed1", "ft/seed0", "ft/seed1"]
    assert len({r.hash for r in runs}) == 4
    assert all(len(r.hash) == 16 for r in runs)


# ---------------------------------------------------------------- RunSpec hashing


def _run(tiny_spec_text: str, **changes) -> RunSpec:
    base = next(r for r in expand(loads_spec(tiny_spec_text)) if r.label == "ft/seed0")
    return base.model_copy(update=changes)


def test_runspec_hash_stable(tiny_spec_text: str) -> None:
    a = expand(loads_spec(tiny_spec_text))
    b = expand(loads_spec(tiny_spec_text))
    assert [r.hash for r in a] == [r.hash for r in b]
    # a round trip through spec.json (how workers read it) keeps the hash
    r = a[1]
    again = RunSpec(**r.model_dump(mode="json"))
    assert again.hash == r.hash


def test_runspec_hash_ignores_labels(tiny_spec_text: str) -> None:
    r = _run(tiny_spec_text)
    renamed = (
        tiny_spec_text.replace('name = "tiny"', 'name = "other"')
        .replace('name = "ft"', 'name = "finetune"')
        .replace("tiny-gpt2", "my-model")
    )
    r2 = next(x for x in expand(loads_spec(renamed)) if x.label == "finetune/seed0")
    assert (r2.study, r2.condition, r2.model_name) == ("other", "finetune", "my-model")
    assert r2.hash == r.hash


def test_runspec_hash_depends_on_content(tiny_spec_text: str) -> None:
    r = _run(tiny_spec_text)
    assert r.train is not None
    assert _run(tiny_spec_text, seed=7).hash != r.hash
    assert _run(tiny_spec_text, train=r.train.model_copy(update={"lr": 2e-3})).hash != r.hash
    assert _run(tiny_spec_text, train=r.train.model_copy(update={"steps": 5})).hash != r.hash
    assert _run(tiny_spec_text, format="plain").hash != r.hash
    assert _run(tiny_spec_text, train=None).hash != r.hash


def test_runspec_hash_follows_task_and_format_versions(
    tiny_spec_text: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Prompt text lives in code: bumping a task's or format's version changes the hash of the
    runs that use it (so a finished run made with the old prompt is not reused), while parts at
    version 1 leave the hash exactly as it was before versions existed."""
    import dataclasses

    from smollab.tasks import PROMPT_FORMATS
    from smollab.tasks.code import HumanEvalTask

    r = _run(tiny_spec_text)
    assert "version" not in json.dumps(r.content())  # nothing bumped: old hashes stand
    before = r.hash
    fmt = PROMPT_FORMATS.get(r.format)
    monkeypatch.setitem(PROMPT_FORMATS._items, r.format, dataclasses.replace(fmt, version=2))
    assert r.content()["format_version"] == 2
    assert r.hash != before
    monkeypatch.setitem(PROMPT_FORMATS._items, r.format, fmt)
    assert r.hash == before

    he = r.model_copy(update={"tasks": [{"id": "he", "task": "humaneval"}]})
    assert he.content()["tasks"] == [{"id": "he", "task": "humaneval", "version": 2}]
    v2 = he.hash
    monkeypatch.setattr(HumanEvalTask, "version", 1)
    assert he.content()["tasks"] == [{"id": "he", "task": "humaneval"}]
    assert he.hash != v2


# ---------------------------------------------------------------- problem files


def test_problem_file_with_protocol(tmp_path: Path, tiny_spec_text: str) -> None:
    p = tmp_path / "adding.md"
    p.write_text(f"# Can a tiny model add?\n\nSome context.\n\n```toml\n{tiny_spec_text}```\n")
    prob = load_problem(p)
    assert prob.title == "Can a tiny model add?"
    assert prob.spec.study.name == "tiny"
    assert prob.protocol_text == tiny_spec_text


def test_problem_toml_error_gives_the_files_line(tmp_path: Path, tiny_spec_text: str) -> None:
    p = tmp_path / "q.md"
    # the block starts on line 5 of the file; the broken [study] header is its second line
    p.write_text(f"# Q\n\ntext\n\n```toml\n{tiny_spec_text.replace('[study]', '[study')}```\n")
    with pytest.raises(ConfigError, match=r"not valid TOML.*line 7"):
        load_problem(p)


@pytest.mark.parametrize("task_id", ["../../escaped", "ar/add", ".hidden", ""])
def test_task_ids_are_file_names(tiny_spec_text: str, task_id: str) -> None:
    """Files are named after task ids: a path in one would write outside the session."""
    msg = bad(tiny_spec_text.replace('id = "add"', f"id = {task_id!r}"))
    assert "tasks[0].id" in msg or "tasks[0]" in msg, msg


@pytest.mark.parametrize(
    ("config", "match"),
    [
        ("n_head = 0", r"n_head = 0: input should be greater than or equal to 1"),
        ('n_embd = "32"', r"n_embd = '32': input should be a valid integer"),
        ("n_layer = 1.5", r"n_layer = 1.5: input should be a valid integer"),
        ("dropout = 1.5", r"dropout = 1.5: input should be less than 1"),
        ("n_layer = 0", r"n_layer = 0: input should be greater"),
    ],
)
def test_scratch_config_types_and_ranges(tiny_spec_text: str, config: str, match: str) -> None:
    key = config.split(" = ")[0]
    text = re.sub(rf"{key} = [0-9.]+", config, tiny_spec_text, count=1)
    if text == tiny_spec_text:  # not in the tiny config: add it
        text = tiny_spec_text.replace("config = { ", f"config = {{ {config}, ")
    msg = bad(text)
    assert "models[0].config" in msg and re.search(match, msg), msg


def test_training_longer_than_a_scratch_models_window(tiny_spec_text: str) -> None:
    msg = bad(tiny_spec_text.replace("seq_len = 64", "seq_len = 128"))
    assert "conditions[1].train.seq_len = 128" in msg and "block_size = 64" in msg, msg


def test_config_and_tokenizer_only_for_scratch_models(tiny_spec_text: str) -> None:
    text = tiny_spec_text.replace('source = "scratch:gpt2"', 'source = "smollm2-135m"')
    msg = bad(text)
    assert "models[0]" in msg and "sets config and tokenizer" in msg, msg


def test_conditions_differing_only_in_threads_are_one_finding(tiny_spec_text: str) -> None:
    twin = tiny_spec_text.split("[[conditions]]")[2].split("[eval]")[0]
    twin = twin.replace('name = "ft"', 'name = "ft_b"')
    twin = twin.replace("threads = 1", "threads = 2")
    twin = twin.replace("checkpoint_every = 2", "checkpoint_every = 1")
    text = tiny_spec_text.replace("[eval]", "[[conditions]]" + twin + "[eval]")
    with pytest.raises(ConfigError, match=r"'ft' and 'ft_b' are identical but for .*threads"):
        expand(loads_spec(text, "s.toml"))


@pytest.mark.parametrize(
    ("old", "new", "match"),
    [
        ('"scratch:gpt2"', '"scratch:gpt3"', r"models\[0\].source: Unknown scratch architecture"),
        ("n_layer = 1,", "n_layers = 1,", r"models\[0\].config: Unknown scratch-model config keys"),
        ("n_embd = 32", "n_embd = 33", r"models\[0\].config: .*divisible by n_head"),
        ("n_test = 12", "n_test = 12\ndata_seed = -1", r"'data_seed'.*greater than or equal to 0"),
        (
            "threads = 1\n",
            'threads = 1\nweights = { "1x1" = 1, "3x3" = 2 }\n',
            r"conditions\[1\].train.weights' names strata \['3x3'\].*\['1x1', '1x2'\]",
        ),
        (
            "threads = 1\n",
            'threads = 1\nweights = { "1x1" = 0 }\n',
            r"conditions\[1\].train.weights' gives every stratum .* weight 0",
        ),
    ],
)
def test_run_time_faults_are_caught_when_the_spec_is_read(
    tiny_spec_text: str, old: str, new: str, match: str
) -> None:
    """These used to fail inside a run (the weights after the baseline had run)."""
    assert old in tiny_spec_text
    msg = bad(tiny_spec_text.replace(old, new))
    assert re.search(match, msg), msg


def test_problem_file_without_toml_block(tmp_path: Path) -> None:
    p = tmp_path / "q.md"
    p.write_text("# A question\n\nNo protocol here.\n\n```python\nprint(1)\n```\n")
    with pytest.raises(ConfigError) as e:
        load_problem(p)
    assert str(p) in str(e.value) and "toml" in str(e.value)


def test_problem_file_missing(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_problem(tmp_path / "nope.md")


def test_problem_protocol_errors_name_the_problem_file(tmp_path: Path, tiny_spec_text: str) -> None:
    p = tmp_path / "q.md"
    p.write_text(f"# Q\n\n```toml\n{tiny_spec_text.replace('lr = 1e-3', 'lrr = 1e-3')}```\n")
    with pytest.raises(ConfigError) as e:
        load_problem(p)
    assert str(p) in str(e.value) and "lrr" in str(e.value)


def test_targets_must_name_a_task_stratum() -> None:
    from smollab.study.spec import loads_spec

    text = """
[study]
name = "t"
targets = { "mul/9x9" = 0.5 }
[[models]]
name = "m"
source = "scratch:gpt2"
[[tasks]]
id = "mul"
task = "arith.mul"
strata = ["1x1"]
n_test = 10
[[conditions]]
name = "baseline"
"""
    with pytest.raises(ConfigError) as e:
        loads_spec(text, "t.toml")
    assert "mul/9x9" in str(e.value) and "mul/1x1" in str(e.value)
    with pytest.raises(ConfigError) as e:
        loads_spec(text.replace('"mul/9x9" = 0.5', '"mul/1x1" = 1.5'), "t.toml")
    assert "study.targets" in str(e.value)
    spec = loads_spec(text.replace('"mul/9x9"', '"mul/1x1"'), "t.toml")
    assert spec.study.targets == {"mul/1x1": 0.5}


def test_targets_are_judged_against_the_best_trained_condition() -> None:
    from smollab.analysis.results import _targets
    from smollab.study.spec import loads_spec

    spec = loads_spec(
        """
[study]
name = "t"
targets = { "mul/1x1" = 0.5, "mul/overall" = 0.9 }
[[models]]
name = "m"
source = "scratch:gpt2"
[[tasks]]
id = "mul"
task = "arith.mul"
strata = ["1x1"]
n_test = 10
[[conditions]]
name = "baseline"
""",
        "t.toml",
    )

    def block(x: float) -> dict:
        return {"exact_match": {"estimate": x, "low": x, "high": x}}

    out = {
        "conditions": {
            "baseline": {
                "kind": "baseline",
                "tasks": {"mul": {"strata": {"1x1": block(0.99)}, "overall": block(0.99)}},
            },
            "a": {
                "kind": "finetune",
                "tasks": {"mul": {"strata": {"1x1": block(0.4)}, "overall": block(0.4)}},
            },
            "b": {
                "kind": "finetune",
                "tasks": {"mul": {"strata": {"1x1": block(0.6)}, "overall": block(0.6)}},
            },
        }
    }
    rows = {r["key"]: r for r in _targets(spec, out)}
    assert rows["mul/1x1"]["condition"] == "b" and rows["mul/1x1"]["met"] is True
    assert rows["mul/overall"]["met"] is False  # the baseline never counts


def test_checking_a_spec_loads_no_model_library(tmp_path: Path, tiny_spec_text: str) -> None:
    """Spec errors come back in well under a second: checking a study (scratch config, API
    sources, tasks) imports neither torch nor transformers."""
    import subprocess
    import sys

    spec = tmp_path / "tiny.toml"
    spec.write_text(tiny_spec_text)
    code = (
        "import sys; from smollab.study.spec import load_spec; "
        f"load_spec({str(spec)!r}); "
        "print([m for m in ('torch', 'transformers') if m in sys.modules])"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        ("steps = 4\n", 'steps = "4"\n', "conditions[1].train.steps"),
        ("batch_size = 4\n", "batch_size = 4.0\n", "conditions[1].train.batch_size"),
        ("n_test = 12\n", "n_test = true\n", "tasks[0]"),
        ("n_test = 12\n", 'n_test = "12"\n', "tasks[0]"),
        ("seeds = [0, 1]\n", 'seeds = ["0", 1]\n', "study.seeds[0]"),
    ],
)
def test_numbers_given_as_text_or_floats_are_refused(old: str, new: str, field: str) -> None:
    """TOML has types: a count written as text or a float is a typo to report, not to coerce
    (`steps = "150"` ran as 150)."""
    text = TINY_SPEC.replace(old, new, 1)
    assert text != TINY_SPEC
    with pytest.raises(ConfigError, match=re.escape(field)) as err:
        loads_spec(text, "s.toml")
    assert "s.toml" in str(err.value) and "valid integer" in str(err.value)


def test_an_integer_is_a_float_and_betas_a_list() -> None:
    text = TINY_SPEC.replace("lr = 1e-3\n", "lr = 1\nbetas = [0.9, 0.98]\n")
    train = loads_spec(text).conditions[1].train
    assert train is not None and train.lr == 1.0 and train.betas == (0.9, 0.98)
