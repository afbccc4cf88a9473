"""run_eval / run_task in-process: summaries, truncation reports, and keeping finished work."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from smollab.errors import ConfigError
from smollab.eval.harness import make_task, run_eval, summary_markdown
from smollab.eval.lm import HFLM
from smollab.eval.runner import run_task, summarize
from tests.conftest import SHARED, needs_data

pytestmark = needs_data


@pytest.fixture(scope="module")
def small():
    """Tiny random GPT-2, real GPT-2 BPE, a 64-token window (shorter than any GSM8K prompt)."""
    from smollab.models import load_model

    return load_model(
        "scratch:gpt2",
        tokenizer=str(SHARED / "gpt2-tokenizer"),
        config={"n_layer": 1, "n_head": 2, "n_embd": 32, "block_size": 64},
        seed=1,
    )


def _lines(p: Path) -> list[dict]:
    """The records of a JSONL file (none when there is no file)."""
    if not p.exists():
        return []
    return [json.loads(x) for x in p.read_text().splitlines() if x.strip()]


def test_prompts_longer_than_the_window_are_cut_and_counted(small, tmp_path):
    tasks = [
        make_task("hellaswag", limit=3, data_dir=str(SHARED)),
        make_task("gsm8k", limit=2, max_tokens=8, data_dir=str(SHARED)),
    ]
    res = run_eval(small, tasks, tmp_path, batch_size=4, use_cache=False)
    g = res["tasks"]["gsm8k"]
    assert g["n"] == 2 and g["truncated"] == 2  # ~900-token 5-shot prompts, 64-token window
    assert set(g["metrics"]) == {"strict_match", "flexible_extract"}
    assert res["tasks"]["hellaswag"]["truncated"] == 0
    assert all(r["truncated"] for r in _lines(tmp_path / "samples_gsm8k.jsonl"))
    summary = (tmp_path / "summary.md").read_text()
    assert (
        "gsm8k: 2 of 2 items had their prompt or context cut from the left to fit the "
        "model's 64-token context window" in summary
    )
    assert "hellaswag: " not in summary
    assert res["context_window"] == 64
    assert res["device"] == "cpu" and isinstance(res["environment"]["cuda_available"], bool)
    assert json.loads((tmp_path / "results.json").read_text())["tasks"].keys() == {
        "hellaswag",
        "gsm8k",
    }


def test_results_name_the_files_read_when_the_data_dir_came_from_the_environment(
    small, tmp_path, monkeypatch
):
    monkeypatch.setenv("SMOLLAB_DATA_DIR", str(SHARED))
    tasks = [
        make_task("hellaswag", limit=1),
        make_task("gsm8k", limit=1, max_tokens=8),
        make_task("humaneval", limit=1, max_tokens=4),
        make_task("arith_probe", limit=1),
    ]
    res = run_eval(small, tasks, tmp_path, batch_size=4, use_cache=False)
    files = {name: t["data_files"] for name, t in res["tasks"].items()}
    # the config keeps what was passed (nothing: it is in the samples key); data_files what
    # was read, as absolute paths
    assert res["tasks"]["hellaswag"]["config"]["data_dir"] is None
    assert files["hellaswag"] == [str(SHARED / "hellaswag" / "hellaswag_val.jsonl.gz")]
    assert files["gsm8k"] == [str(SHARED / "gsm8k" / f) for f in ("test.jsonl", "train.jsonl")]
    assert files["humaneval"] == [str(SHARED / "humaneval" / "HumanEval.jsonl.gz")]
    assert files["arith_probe"] == []  # generated, nothing read


def test_library_calls_take_paths_as_text_or_path_and_one_task(small, tmp_path):
    """QA: run_eval(m, tasks, "out") and make_task(data_dir=Path(...)) raised AttributeError or
    a type error; run_eval(m, task) was not iterable; run_eval(m.model, ...) had no .source."""
    from smollab.models import load_model

    task = make_task("hellaswag", limit=1, data_dir=SHARED)  # a Path
    res = run_eval(small, task, str(tmp_path / "o"), batch_size=4, use_cache=False)
    assert res["tasks"]["hellaswag"]["n"] == 1 and (tmp_path / "o" / "results.json").is_file()
    with pytest.raises(ConfigError, match="run_eval takes what load_model returns"):
        run_eval(small.model, [task], tmp_path / "p")
    tok = load_model(
        "scratch:gpt2", tokenizer=SHARED / "gpt2-tokenizer", config={"n_layer": 1, "n_embd": 8}
    ).tokenizer
    assert tok.eos_token_id == small.tokenizer.eos_token_id
    with pytest.raises(ConfigError, match="must be strings or paths"):
        load_model(5)  # type: ignore[arg-type]
    # an empty data_dir is not the environment's folder (the CLI's --data-dir '' neither)
    with pytest.raises(ConfigError, match="data_dir is empty"):
        make_task("hellaswag", limit=1, data_dir="").docs()


def test_a_failing_task_keeps_the_finished_ones(small, tmp_path):
    tasks = [
        make_task("hellaswag", limit=2, data_dir=str(SHARED)),
        make_task("gsm8k", limit=1, max_tokens=64, data_dir=str(SHARED)),  # budget == window
    ]
    with pytest.raises(ConfigError, match="leaves no room"):
        run_eval(small, tasks, tmp_path, use_cache=False)
    res = json.loads((tmp_path / "results.json").read_text())
    assert list(res["tasks"]) == ["hellaswag"]
    assert "| hellaswag | acc |" in (tmp_path / "summary.md").read_text()


def test_items_written_before_a_crash_are_reused(small, tmp_path, monkeypatch):
    lm = HFLM(small.model, small.tokenizer, batch_size=4, model_key="k")
    task = make_task("hellaswag", limit=5, data_dir=str(SHARED))
    calls = {"n": 0}
    real = lm.loglikelihood

    def crash_on_second_chunk(reqs, progress=None):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("killed")
        return real(reqs, progress)

    monkeypatch.setattr(lm, "loglikelihood", crash_on_second_chunk)
    with pytest.raises(RuntimeError):
        run_task(lm, task, tmp_path, chunk=2)
    assert [r["id"] for r in _lines(tmp_path / "samples_hellaswag.jsonl")] == ["0", "1"]
    monkeypatch.setattr(lm, "loglikelihood", real)
    seen = []
    records, _ = run_task(lm, task, tmp_path, chunk=2, progress=seen.append)
    assert [r["id"] for r in records] == ["0", "1", "2", "3", "4"]
    assert seen[0] == 2  # the two reused items are reported first
    assert len(_lines(tmp_path / "samples_hellaswag.jsonl")) == 5
    # the reused records equal a fresh computation
    fresh, _ = run_task(lm, task, tmp_path / "fresh")
    assert [r["acc"] for r in fresh] == [r["acc"] for r in records]


def counted(lm: HFLM) -> list[int]:
    """Record each loglikelihood call of ``lm`` (one per chunk computed)."""
    calls: list[int] = []
    real = lm.loglikelihood
    lm.loglikelihood = lambda reqs, progress=None: calls.append(1) or real(reqs, progress)  # type: ignore[method-assign]
    return calls


def test_samples_of_another_model_are_set_aside_and_come_back(small, tmp_path):
    """Samples of another model or config are never mixed in nor lost: they move aside under
    their key (the caller is told) and are taken back when that model runs here again."""
    from smollab.eval.parallel import merge_parts
    from smollab.eval.runner import samples_key, set_aside_path

    task = make_task("hellaswag", limit=2, data_dir=str(SHARED))
    samples = tmp_path / "samples_hellaswag.jsonl"
    first, _ = run_task(HFLM(small.model, small.tokenizer, model_key="a"), task, tmp_path)
    key_a = samples_key("a", task)
    lm_b = HFLM(small.model, small.tokenizer, model_key="b")
    calls = counted(lm_b)
    told: list[tuple[Path, int]] = []
    merge_parts(samples, samples_key("b", task), lambda p, n: told.append((p, n)))
    run_task(lm_b, task, tmp_path)
    aside = set_aside_path(samples, key_a)
    assert calls and told == [(aside, 2)] and aside.name == f"samples_hellaswag.{key_a}.jsonl"
    assert [r["id"] for r in _lines(aside)] == ["0", "1"]
    lm_a = HFLM(small.model, small.tokenizer, model_key="a")
    calls_a = counted(lm_a)
    again, _ = run_task(lm_a, task, tmp_path)
    assert not calls_a and again == first  # model a's samples came back: nothing recomputed
    assert set_aside_path(samples, samples_key("b", task)).exists()


def test_a_torn_line_is_dropped_from_the_samples_file_on_resume(small, tmp_path):
    task = make_task("hellaswag", limit=3, data_dir=str(SHARED))
    lm = HFLM(small.model, small.tokenizer, model_key="a")
    run_task(lm, task, tmp_path)
    samples = tmp_path / "samples_hellaswag.jsonl"
    text = samples.read_text()
    samples.write_text(text[: text.rindex("\n", 0, len(text) - 1) + 20])  # the last record cut
    records, _ = run_task(lm, task, tmp_path)
    assert [r["id"] for r in records] == ["0", "1", "2"]
    rows = [json.loads(line) for line in samples.read_text().splitlines()]  # all valid JSON
    assert sorted(r["id"] for r in rows) == ["0", "1", "2"]


def test_summary_uses_wilson_for_binary_and_bootstrap_otherwise():
    task = make_task("arith_probe", strata=["2da", "2ds"], n_per_stratum=2)
    recs = [{"id": str(i), "stratum": s, "acc": a} for i, (s, a) in
            enumerate([("2da", 1.0), ("2da", 0.0), ("2ds", 1.0), ("2ds", 1.0)])]  # fmt: skip
    out = summarize(task, recs)
    assert out["metrics"]["acc"]["estimate"] == 0.75 and out["metrics"]["acc"]["method"] == "wilson"
    assert out["strata"]["2ds"]["acc"]["estimate"] == 1.0
    task.metrics = ("acc", "score")
    for r, v in zip(recs, [0.1, 0.5, 0.7, 0.2], strict=True):
        r["score"] = v
    assert summarize(task, recs)["metrics"]["score"]["method"].startswith("bootstrap")


def test_fractional_metric_that_happens_to_be_zero_is_not_given_a_wilson_interval():
    task = make_task("humaneval", limit=2, data_dir=str(SHARED))
    rec = {"stratum": "list", "pass@1": 0.0, "syntax_valid": 1.0, "repeat_ngram_ratio": 0.0,
           "doubled_keyword": 0.0, "n": 1, "c": 0, "completions": ["  pass"],
           "outcomes": ["assertion_error"]}  # fmt: skip
    recs = [{"id": str(i), **rec} for i in range(2)]
    out = summarize(task, recs)["metrics"]
    assert out["pass@1"]["method"] == "wilson"
    # a fractional score all alike is no point interval: its hull with Wilson(0 of 2)
    assert out["repeat_ngram_ratio"]["method"] == "bootstrap-percentile+wilson-hull"
    assert out["repeat_ngram_ratio"]["high"] == pytest.approx(0.6576, abs=1e-4)


def test_code_summary_reports_pass_at_k_once_and_no_zero_width_intervals():
    # the QA case: humaneval --limit 2 --samples 2, both items failed, one item per category
    task = make_task("humaneval", limit=2, n_samples=2, data_dir=str(SHARED))
    rec = {
        "n": 2,
        "c": 0,
        "pass@1": 0.0,
        "syntax_valid": 1.0,
        "doubled_keyword": 0.0,
        "completions": ["  pass", "  pass"],
        "outcomes": ["assertion_error"] * 2,
    }
    recs = [
        {"id": "HumanEval/0", "stratum": "list", "repeat_ngram_ratio": 0.059, **rec},
        {"id": "HumanEval/1", "stratum": "string", "repeat_ngram_ratio": 0.0, **rec},
    ]
    out = summarize(task, recs)
    # results.json: one pass@1, the Wilson interval of 0/2 that CodeTask.aggregate gives
    assert out["metrics"]["pass@1"] == out["pass_at_k"]["pass@1"]
    assert out["pass_at_k"]["pass@1"]["method"] == "wilson"
    assert out["pass_at_k"]["pass@1"]["high"] == pytest.approx(0.6576, abs=1e-4)
    # one item: the point bootstrap becomes its hull with the Wilson interval at 0.059 of 1
    one = out["strata"]["list"]["repeat_ngram_ratio"]
    assert one["estimate"] == 0.059
    assert (one["low"], one["high"]) == pytest.approx((0.00088, 0.8169), abs=1e-4)
    assert one["method"] == "bootstrap-percentile+wilson-hull"
    rows = summary_markdown({"model": "m", "tasks": {"humaneval": out}}).splitlines()[4:]
    assert rows[:6] == [
        "| humaneval | pass@1 | 0.0% [0.0%, 65.8%] | 2 |",
        "| humaneval | syntax_valid | 100.0% [34.2%, 100.0%] | 2 |",
        # two items: the hull with the t interval over items (1 degree of freedom)
        "| humaneval | repeat_ngram_ratio | 2.9% [0.0%, 40.4%] | 2 |",
        "| humaneval | doubled_keyword | 0.0% [0.0%, 65.8%] | 2 |",
        "| humaneval | pass@2 | 0.0% [0.0%, 65.8%] | 2 |",  # k = n, with 2 samples
        "| humaneval / list | pass@1 | 0.0% [0.0%, 79.3%] | 1 |",
    ]
    assert "| humaneval / list | repeat_ngram_ratio | 5.9% [0.1%, 81.7%] | 1 |" in rows
    assert len(rows) == 4 + 1 + 2 * 4  # each metric once: no second pass@1 row


def test_an_ending_longer_than_the_window_is_named_before_anything_is_computed(tmp_path):
    """QA: scratch:gpt2 (character tokenizer, 256-token window) on hellaswag --limit 600
    stopped after 256 items with 'A continuation of 296 tokens does not fit', naming no item.
    The 296 tokens are item 318's fourth ending alone (its context is 223 tokens and would
    have been cut from the left); lm-eval cannot score it either. The item is named, with
    what to do, before any item is computed."""
    from smollab.models import load_model

    char = load_model("scratch:gpt2")
    task = make_task("hellaswag", limit=600, data_dir=str(SHARED))
    with pytest.raises(ConfigError) as e:
        run_eval(char, [task], tmp_path, use_cache=False)
    msg = str(e.value)
    assert "hellaswag item '318' (number 319 in the data; request 4 of 4)" in msg
    assert "continuation is 296 tokens, longer than the model's context window of 256" in msg
    assert "1 more item(s) have the same problem (580)" in msg
    assert "--limit 318" in msg
    assert not _lines(tmp_path / "samples_hellaswag.jsonl")
    assert not (tmp_path / "results.json").exists() and not (tmp_path / "summary.md").exists()


def test_an_ending_found_too_long_mid_task_is_named_and_the_finished_items_kept(
    small, tmp_path, monkeypatch
):
    """Where the up-front check's byte bound lets one through, the LM's own check stops the
    chunk before it is computed and the error names the item; earlier chunks are kept."""
    import smollab.eval.runner as runner

    task = make_task("hellaswag", limit=10, data_dir=str(SHARED))  # item 8: a 34-token ending
    lm = HFLM(small.model, small.tokenizer, max_length=30, model_key="k")
    with pytest.raises(ConfigError, match=r"item '8' \(number 9 in the data; request 1 of 4\)"):
        run_task(lm, task, tmp_path / "a")  # the up-front check: nothing computed
    assert not _lines(tmp_path / "a" / "samples_hellaswag.jsonl")
    monkeypatch.setattr(runner, "TOKEN_MARGIN", -(10**6))  # the bound finds nothing
    with pytest.raises(ConfigError) as e:
        run_task(lm, task, tmp_path / "b", chunk=4)
    assert "item '8' (number 9 in the data; request 1 of 4): its continuation is 34" in str(e.value)
    assert "--limit 8" in str(e.value) and "stay in samples_hellaswag.jsonl" in str(e.value)
    assert [r["id"] for r in _lines(tmp_path / "b" / "samples_hellaswag.jsonl")] == [
        str(i) for i in range(8)
    ]


def test_results_cover_every_task_evaluated_in_the_folder(small, tmp_path):
    """QA: eval --task hellaswag --task arith_probe, then eval --task gsm8k into the same
    folder left results.json and summary.md with gsm8k only (the earlier samples still
    there). A later run keeps the entries of the tasks it does not evaluate and replaces
    those it does."""
    first = [
        make_task("hellaswag", limit=2, data_dir=str(SHARED)),
        make_task("arith_probe", limit=1),
    ]
    events: list[dict] = []
    res1 = run_eval(small, first, tmp_path, batch_size=4, use_cache=False)
    res2 = run_eval(
        small,
        [make_task("gsm8k", limit=1, max_tokens=4, data_dir=str(SHARED))],
        tmp_path,
        batch_size=4,
        use_cache=False,
        on_event=events.append,
    )
    saved = json.loads((tmp_path / "results.json").read_text())
    assert list(saved["tasks"]) == list(res2["tasks"]) == ["hellaswag", "arith_probe", "gsm8k"]
    assert saved["tasks"]["hellaswag"] == res1["tasks"]["hellaswag"]
    assert saved["model_key"] == res1["model_key"]
    assert {"event": "kept", "tasks": ["hellaswag", "arith_probe"]} in events
    summary = (tmp_path / "summary.md").read_text()
    assert all(f"| {t} | " in summary for t in ("hellaswag", "arith_probe", "gsm8k"))
    # the same task again, with another limit: its entry is replaced, the others kept
    run_eval(small, [make_task("hellaswag", limit=3, data_dir=str(SHARED))], tmp_path)
    saved = json.loads((tmp_path / "results.json").read_text())
    assert list(saved["tasks"]) == ["hellaswag", "arith_probe", "gsm8k"]
    assert saved["tasks"]["hellaswag"]["n"] == 3


def test_another_model_is_refused_where_results_of_one_are(small, tmp_path):
    """Another model's results never join a folder's results.json: refused before anything
    is computed, the folder unchanged. A results.json from before keys were recorded is
    matched by source and model_info."""
    from smollab.models import load_model

    run_eval(small, [make_task("arith_probe", limit=1)], tmp_path, use_cache=False)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    other = load_model("scratch:gpt2", config={"n_layer": 1, "n_embd": 16}, seed=2)
    task = make_task("hellaswag", limit=1, data_dir=str(SHARED))
    with pytest.raises(ConfigError) as e:
        run_eval(other, [task], tmp_path, use_cache=False)
    msg = str(e.value)
    assert f"{tmp_path / 'results.json'} holds the results of 'scratch:gpt2' (weights key" in msg
    assert "on arith_probe, and this run evaluates 'scratch:gpt2' (weights key" in msg
    assert "another folder (--out), or move results.json and summary.md away" in msg
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
    # an older results.json (no model_key): the same source and model_info are the same model
    old = json.loads(before["results.json"])
    del old["model_key"]
    (tmp_path / "results.json").write_text(json.dumps(old))
    res = run_eval(small, [task], tmp_path, use_cache=False)
    assert list(res["tasks"]) == ["arith_probe", "hellaswag"]
    # one that is not JSON is named, and left as it is
    (tmp_path / "results.json").write_text('{"model": "x", "tas')
    with pytest.raises(ConfigError, match="results.json is not valid JSON .* move it away"):
        run_eval(small, [task], tmp_path, use_cache=False)
    assert (tmp_path / "results.json").read_text() == '{"model": "x", "tas'


def _code_records(n: int, passed: list[int]) -> list[dict]:
    rec = {
        "stratum": "list",
        "syntax_valid": 1.0,
        "repeat_ngram_ratio": 0.0,
        "doubled_keyword": 0.0,
        "completions": ["  pass"] * n,
        "outcomes": ["passed"] * n,
    }
    return [{"id": str(i), "n": n, "c": c, "pass@1": c / n, **rec} for i, c in enumerate(passed)]


@pytest.mark.parametrize(
    ("n", "k", "want"),
    [
        (5, None, ["pass@1", "pass@5"]),  # QA: --samples 5 reported pass@1 only
        (20, None, ["pass@1", "pass@10", "pass@20"]),
        (1, None, ["pass@1"]),
        (5, [1, 3], ["pass@1", "pass@3"]),  # chosen (--pass-k 1 --pass-k 3): exactly these
    ],
)
def test_pass_at_k_is_reported_up_to_the_samples_drawn_and_at_n(n, k, want):
    task = make_task("mbpp", limit=2, n_samples=n, k=k, data_dir=str(SHARED))
    out = summarize(task, _code_records(n, [0, n // 2 + 1]))
    assert list(out["pass_at_k"]) == want
    # one item never passes, the other passes n // 2 + 1 of n: any k > n // 2 reaches it
    assert out["pass_at_k"][want[-1]]["estimate"] == 0.5


def test_a_pass_at_k_above_the_samples_is_refused_and_the_default_survives_a_round_trip():
    from smollab.tasks import validate_task_config

    with pytest.raises(ConfigError) as e:
        make_task("mbpp", n_samples=2, k=[1, 5])
    assert "field 'k': pass@k with k = [5] needs at least 5 samples per problem" in str(e.value)
    assert "n_samples is 2" in str(e.value) and "--pass-k" in str(e.value)
    # --procs workers rebuild the task from its dumped config, where the default k is set
    task = make_task("mbpp", n_samples=2)
    again = validate_task_config(task.config.model_dump(mode="json"))
    assert again.k == [1, 10, 100]  # type: ignore[attr-defined]


def test_results_record_the_sampling_settings_used():
    """QA: config.temperature was null for --samples 5, drawn at temperature 0.8."""
    from smollab.eval.harness import _config_used

    sampled = make_task("mbpp", limit=1, n_samples=5, max_tokens=32, data_dir=str(SHARED))
    got = _config_used(sampled, sampled.docs())
    assert (got["config"]["temperature"], got["config"]["top_p"]) == (0.8, 0.95)
    assert got["sampling"] == {"temperature": 0.8, "top_p": 0.95, "greedy": False,
                               "seeds": [0, 1, 2, 3, 4], "max_tokens": 32}  # fmt: skip
    greedy = make_task("humaneval", limit=1, data_dir=str(SHARED))
    got = _config_used(greedy, greedy.docs())
    assert (got["config"]["temperature"], got["config"]["top_p"]) == (0.0, 1.0)
    assert got["sampling"]["greedy"] and got["sampling"]["seeds"] == [0]
    gsm = make_task("gsm8k", limit=1, data_dir=str(SHARED))
    got = _config_used(gsm, gsm.docs())
    assert "temperature" not in got["config"] and got["sampling"]["temperature"] == 0.0
    hs = make_task("hellaswag", limit=1, data_dir=str(SHARED))
    assert "sampling" not in _config_used(hs, hs.docs())


def test_the_pass_at_k_chosen_does_not_change_which_samples_are_reused():
    from smollab.eval.runner import samples_key

    def key(**kw):
        return samples_key("m", make_task("mbpp", n_samples=5, data_dir=str(SHARED), **kw))

    assert key() == key(k=[1, 5]) == key(k=[2])
    assert key() != key(temperature=0.5)  # what the samples are drawn with does


def test_an_evaluation_stopped_before_any_task_finished_writes_no_empty_summary(small, tmp_path):
    """QA: an eval interrupted before its first item left a summary.md with an empty table.
    Where earlier tasks' results are in the folder, the summary keeps showing them."""

    def stop(e: dict) -> None:
        if e["event"] == "task":
            raise KeyboardInterrupt

    task = make_task("hellaswag", limit=2, data_dir=str(SHARED))
    with pytest.raises(KeyboardInterrupt):
        run_eval(small, [task], tmp_path, use_cache=False, on_event=stop)
    assert not (tmp_path / "summary.md").exists() and not (tmp_path / "results.json").exists()
    run_eval(small, [make_task("arith_probe", limit=1)], tmp_path, use_cache=False)
    with pytest.raises(KeyboardInterrupt):
        run_eval(small, [task], tmp_path, use_cache=False, on_event=stop)
    summary = (tmp_path / "summary.md").read_text()
    assert "| arith_probe | acc |" in summary and "hellaswag" not in summary


# ------------------------------------------------------------ exact-match tasks (arith.*)


def test_exact_match_items_are_those_a_study_run_evaluates(small, tmp_path):
    """Per item, `smollab eval --task arith.mul:1x1,3x3` gives the prompt, completion and
    correctness of a study run of the same model and format: the study's call of
    evaluate_items on its task (a [[tasks]] table giving only task) with its defaults."""
    from smollab.eval import evaluate_items
    from smollab.tasks import build_task, validate_task_config

    study_task = build_task(validate_task_config({"id": "mul", "task": "arith.mul"}))
    study = evaluate_items(  # as study/worker.py's _evaluate_tasks calls it ([eval] defaults)
        small.model, small.tokenizer, study_task, "plain", study_task.test_set(), batch_size=64
    )
    by_id = {r["id"]: r for r in study}
    task = make_task("arith.mul:1x1,3x3", limit=5)
    res = run_eval(small, [task], tmp_path, batch_size=4, use_cache=False)
    got = _lines(tmp_path / "samples_arith.mul.jsonl")
    assert [r["id"] for r in got] == [f"1x1-{j:04d}" for j in range(5)] + [
        f"3x3-{j:04d}" for j in range(5)
    ]
    for r in got:
        want = by_id[r["id"]]
        for k in ("stratum", "prompt", "target", "completion", "prediction", "correct"):
            assert r[k] == want[k], (r["id"], k)
        assert r["exact_match"] == float(want["correct"])
    entry = res["tasks"]["arith.mul"]
    assert entry["n"] == 10 and set(entry["strata"]) == {"1x1", "3x3"}
    assert entry["config"]["format"] == "plain" and entry["config"]["num_fewshot"] == 0
    assert entry["config"]["task_config"]["n_test_per_stratum"] == {"1x1": 50}
    iv = entry["strata"]["3x3"]["exact_match"]
    assert iv["method"] == "wilson" and iv["n"] == 5
    hits = sum(r["correct"] for r in got)
    assert entry["metrics"]["exact_match"]["estimate"] == pytest.approx(hits / 10)


def test_exact_match_resumes_finished_items_across_limits_and_strata(small, tmp_path):
    run_eval(small, [make_task("arith.add:2x2", limit=2)], tmp_path, use_cache=False)
    first = _lines(tmp_path / "samples_arith.add.jsonl")
    # more strata and more items: the 2 items computed are read back, not computed again
    res = run_eval(small, [make_task("arith.add", limit=3)], tmp_path, use_cache=False)
    t = res["tasks"]["arith.add"]
    assert t["n"] == 12 and t["n_reused"] == 2
    assert set(t["strata"]) == {"1x1", "1x2", "2x2", "3x3"}
    rows = _lines(tmp_path / "samples_arith.add.jsonl")
    assert rows[:2] == first and len(rows) == 12
    # another format is another key: its samples do not mix with these (set aside)
    task = make_task("arith.add:2x2", limit=2, num_fewshot=3)
    res = run_eval(small, [task], tmp_path, use_cache=False)
    assert res["tasks"]["arith.add"]["n_reused"] == 0
    assert res["tasks"]["arith.add"]["config"]["format"] == "fewshot"
    assert len(list(tmp_path.glob("samples_arith.add.*.jsonl"))) == 1


def test_exact_match_uses_the_batch_size(small, tmp_path, monkeypatch):
    import smollab.eval.evaluator as evaluator

    seen = []
    real = evaluator.greedy_generate

    def spy(*args, **kw):
        seen.append(kw["batch_size"])
        return real(*args, **kw)

    monkeypatch.setattr(evaluator, "greedy_generate", spy)
    run_eval(small, [make_task("arith.mul:2x2", limit=3)], tmp_path, batch_size=3,
             use_cache=False)  # fmt: skip
    assert seen == [3]


def test_exact_match_task_errors():
    with pytest.raises(ConfigError) as e:
        make_task("arith.mul:4x4")
    assert "has no stratum '4x4'" in e.value.message
    assert "1x1, 1x2, 2x2, 3x3" in e.value.message
    with pytest.raises(ConfigError) as e:
        make_task("hellaswag:2x2")
    assert "only the exact-match tasks (arith.add, arith.mul) take a :STRATUM" in e.value.message
    with pytest.raises(ConfigError) as e:
        make_task("arith.mul", num_fewshot=2, format="compact")
    assert "'compact' puts no solved examples" in e.value.message
    assert make_task("arith.mul", num_fewshot=5).fmt.n_shots == 5
