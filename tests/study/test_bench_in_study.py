"""Study specs naming benchmark tasks: evaluated through the LM interface, analysed like others."""

from __future__ import annotations

import pytest

from smollab.errors import ConfigError
from smollab.io import read_json, read_jsonl
from smollab.study.executor import InlineExecutor
from smollab.study.session import run_study
from smollab.study.spec import loads_spec
from tests.conftest import SHARED, needs_data

pytestmark = needs_data

SPEC = f"""\
[study]
name = "bench"
seeds = [0]

[[models]]
name = "tiny"
source = "scratch:gpt2"
tokenizer = "{SHARED / "gpt2-tokenizer"}"
config = {{ n_layer = 1, n_head = 2, n_embd = 32, block_size = 64 }}

[[tasks]]
id = "add"
task = "arith.add"
strata = ["1x1"]
n_test = 4

[[tasks]]
id = "hs"
task = "hellaswag"
limit = 4
data_dir = "{SHARED}"

[[tasks]]
id = "probe"
task = "arith_probe"
strata = ["2da", "2dm"]
n_per_stratum = 3

[[conditions]]
name = "baseline"
"""


def test_baseline_study_evaluates_benchmarks(tmp_path, report_ready):
    spec = loads_spec(SPEC)
    res = run_study(
        spec, SPEC, out_root=tmp_path, session_name="b", executor=InlineExecutor(), pdf=False
    )
    results = read_json(tmp_path / "b" / "results" / "results_baseline.json")
    assert results["tasks"]["hs"]["strata"] == ["all"]
    assert results["tasks"]["probe"]["strata"] == ["2da", "2dm"]
    hs = results["conditions"]["baseline"]["tasks"]["hs"]
    assert hs["overall"]["n_items"] == 4
    # the study's exact match is the per-item acc that the benchmark's own samples hold
    run = next((tmp_path / "b" / "runs").iterdir())
    preds = read_jsonl(run / "predictions" / "hs.jsonl")
    samples = read_jsonl(run / "predictions" / "samples" / "samples_hs.jsonl")
    assert [p["correct"] for p in preds] == [s["acc"] == 1.0 for s in samples]
    assert hs["overall"]["exact_match"]["estimate"] == pytest.approx(
        sum(p["correct"] for p in preds) / 4
    )
    assert res.session_dir == tmp_path / "b"
    # what the score is, named: a benchmark's own metric, not "exact match"
    scores = {k: v["score"] for k, v in results["tasks"].items()}
    assert scores == {"add": "exact_match", "hs": "acc", "probe": "acc"}
    # hellaswag's length-normalised accuracy is carried too, with its own interval
    assert results["tasks"]["hs"]["metrics"] == ["exact_match", "acc_norm"]
    norm = hs["overall"]["acc_norm"]
    assert norm["estimate"] == pytest.approx(sum(s["acc_norm"] for s in samples) / 4)
    assert norm["method"] == "wilson" and norm["low"] <= norm["estimate"] <= norm["high"]
    # guessing among four endings scores 25%; the arithmetic tasks have no fixed chance
    assert results["tasks"]["hs"]["chance"] == 0.25
    assert results["tasks"]["add"]["chance"] is None and results["tasks"]["probe"]["chance"] is None
    if report_ready:
        md = (tmp_path / "b" / "report.md").read_text()
        assert "Overall acc on `hs`" in md and "Overall exact match on `add`" in md
        assert "guessing scores 25% acc" in md and "acc-norm" in md


def test_training_on_a_benchmark_is_refused():
    text = SPEC.replace('[[tasks]]\nid = "add"', '[[tasks]]\nid = "add0"', 1)
    # hellaswag first: a trained condition without train.task would train on it
    hs_first = text.replace(
        '[[tasks]]\nid = "add0"\ntask = "arith.add"\nstrata = ["1x1"]\nn_test = 4\n\n', ""
    )
    hs_first += '\n[[conditions]]\nname = "ft"\n[conditions.train]\nsteps = 1\n'
    with pytest.raises(ConfigError, match=r"would train on task 'hs', a benchmark"):
        loads_spec(hs_first)


def test_sampled_code_tasks_are_refused_with_the_eval_command_to_use():
    """A study scores items 0/1 from one greedy sample: n_samples > 1 (pass@k) is refused,
    and the message names the field and the `smollab eval` command that measures pass@k."""
    text = SPEC + '\n[[tasks]]\nid = "he"\ntask = "humaneval"\nn_samples = 5\ntemperature = 0.8\n'
    with pytest.raises(ConfigError) as e:
        loads_spec(text, "s.toml")
    msg = str(e.value)
    assert "s.toml: field 'tasks[3].n_samples' is 5 (task 'he')" in msg
    assert "smollab eval --model M --task humaneval --samples 5" in msg
    assert "\n\n" not in msg.strip()
    loads_spec(
        SPEC + '\n[[tasks]]\nid = "he"\ntask = "humaneval"\nn_samples = 1\nmax_tokens = 32\n'
    )


def test_the_cli_results_table_names_a_benchmarks_score():
    from rich.console import Console

    from smollab.cli.common import results_table

    em = {"estimate": 0.5, "low": 0.25, "high": 0.75}
    block = {"strata": {"all": {"exact_match": em}}, "overall": {"exact_match": em}}
    results = {
        "tasks": {
            "add": {"strata": ["all"], "score": "exact_match"},
            "hs": {"strata": ["all"], "score": "acc"},
        },
        "conditions": {"base": {"tasks": {"add": block, "hs": block}}},
    }
    console = Console(width=120, record=True)
    console.print(results_table(results))
    text = console.export_text()
    assert "Score (95% interval)" in text
    # one stratum: one row (its items are the overall items)
    assert "hs (acc) / overall" in text and "add / overall" in text and "add (" not in text
    assert "/ all" not in text
    assert "50.0% [25.0%, 75.0%]" in text
