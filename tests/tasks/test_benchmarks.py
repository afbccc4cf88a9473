"""Benchmark tasks: prompts, few-shot draws and scoring as lm-evaluation-harness defines them."""

from __future__ import annotations

import json
import random

import pytest

from smollab.errors import ConfigError
from smollab.eval.harness import bench_task_names, make_task
from smollab.tasks.gsm8k import FLEXIBLE, INVALID, STRICT, extract, normalise
from smollab.tasks.requests import Loglikelihood, LoglikelihoodRequest
from tests.conftest import SHARED, needs_data

pytestmark = needs_data


def test_registry_lists_benchmarks_beside_arithmetic():
    from smollab.tasks import TASKS

    assert {"hellaswag", "hellaswag_nanogpt", "gsm8k", "gsm8k_chat", "arith_probe"} <= set(
        bench_task_names()
    )
    assert "arith.mul" in TASKS and "arith.mul" not in bench_task_names()


def test_unknown_task_lists_valid_ones():
    with pytest.raises(ConfigError, match=r"Unknown task 'hellaswg'.*gsm8k, .*hellaswag"):
        make_task("hellaswg")


def test_exact_match_tasks_run_in_eval_and_grokking_tasks_are_pointed_at_studies():
    from smollab.eval.exact_match import ExactMatchEval

    assert isinstance(make_task("arith.mul"), ExactMatchEval)
    with pytest.raises(ConfigError, match="grok.x_plus_y.*smollab study"):
        make_task("grok.x_plus_y")


def test_hellaswag_requests_and_scores():
    task = make_task("hellaswag", limit=3, data_dir=str(SHARED))
    doc = task.docs()[0]
    assert doc["query"] == "Roof shingle removal: A man is sitting on a roof. he"
    reqs = task.requests(doc)
    assert reqs[3] == LoglikelihoodRequest(doc["query"], " starts pulling up roofing on a roof.")
    # acc takes the best sum; acc_norm divides by the ending's length in characters
    lls = [-10.0, -12.0, -30.0, -11.0]
    rec = task.score(doc, [Loglikelihood(x, False, 5) for x in lls])
    norm = [x / len(c) for x, c in zip(lls, doc["choices"], strict=True)]
    assert rec["pred"] == 0 and rec["pred_norm"] == max(range(4), key=norm.__getitem__)
    assert rec["acc"] == float(doc["label"] == 0)


@pytest.mark.parametrize("name", ["humaneval", "mbpp"])
def test_code_tasks_are_stratified_by_problem_category_in_a_study(name):
    """A study's strata for a code task are the summary's problem categories, not one "all"."""
    task = make_task(name, limit=40, data_dir=str(SHARED))
    cats = [d["category"] for d in task.docs()]
    assert task.strata == list(dict.fromkeys(cats)) and len(task.strata) >= 2
    assert [e.stratum for e in task.test_set()] == cats
    assert set(cats) <= {"string", "list", "dict", "math", "other"}


def test_hellaswag_nanogpt_uses_mean_token_loss():
    task = make_task("hellaswag_nanogpt", limit=1, data_dir=str(SHARED))
    doc = task.docs()[0]
    # ending 3 has the worst sum but the best mean per token
    resp = [Loglikelihood(-4.0, False, 2), Loglikelihood(-5.0, False, 2),
            Loglikelihood(-6.0, False, 2), Loglikelihood(-9.0, False, 10)]  # fmt: skip
    rec = task.score(doc, resp)
    assert (rec["pred"], rec["pred_norm"]) == (0, 3) and rec["acc_norm"] == 1.0


def test_gsm8k_fewshot_prompt_is_lm_eval_format_with_random_1234():
    from smollab.tasks.data import read_records

    task = make_task("gsm8k", limit=2, data_dir=str(SHARED))
    train = read_records(SHARED / "gsm8k" / "train.jsonl")
    test = read_records(SHARED / "gsm8k" / "test.jsonl")
    rnd = random.Random(1234)
    for i, doc in enumerate(task.docs()):
        shots = rnd.sample(train, 5)  # one draw per item, in order, from one generator
        want = "".join(f"Question: {s['question']}\nAnswer: {s['answer']}\n\n" for s in shots)
        assert doc["prompt"] == want + f"Question: {test[i]['question']}\nAnswer:"
    (req,) = task.requests(task.docs()[0])
    assert req.stop == ("Question:", "</s>", "<|im_end|>") and req.max_tokens == 256


def test_gsm8k_zero_shot_and_limit_keep_the_same_items():
    full = make_task("gsm8k", limit=3, num_fewshot=0, data_dir=str(SHARED)).docs()
    assert full[0]["prompt"].startswith("Question: Janet")


@pytest.mark.parametrize(
    "completion,strict,flexible",
    [
        (" She has 3 + 4 = 7 eggs.\n#### 7", "7", "7"),
        (" The answer is $1,200.", INVALID, "$1,200."),
        (" 5 apples and 6 pears make 11", INVALID, "11"),
        ("#### -3.5\n", "-3.5", "-3.5"),
        ("no numbers", INVALID, INVALID),
    ],
)
def test_gsm8k_extraction_filters(completion, strict, flexible):
    assert extract(completion, STRICT) == strict
    assert extract(completion, FLEXIBLE, group_select=-1) == flexible


def test_gsm8k_scoring_normalises_like_lm_eval():
    task = make_task("gsm8k", limit=1, num_fewshot=0, data_dir=str(SHARED))
    doc = {"id": "x", "answer": "Some work <<2*3=6>>6\n#### 1200"}
    assert normalise(doc["answer"]) == "1200"
    rec = task.score(doc, [" so $1,200.\n#### 1,200"])
    assert rec["strict_match"] == 1.0 and rec["flexible_extract"] == 1.0
    rec = task.score(doc, [" so 1200 then 7"])
    assert rec["strict_match"] == 0.0 and rec["flexible_extract"] == 0.0


def test_gsm8k_chat_requests_the_chat_template():
    task = make_task("gsm8k_chat", limit=1, data_dir=str(SHARED))
    (req,) = task.requests(task.docs()[0])
    assert req.chat and "####" in req.prompt and "Question: Janet" in req.prompt


def test_arith_probe_items_and_greedy_scoring():
    task = make_task("arith_probe", data_dir=None)
    docs = task.docs()
    assert len(docs) == 5 * 200 and docs[0]["stratum"] == "2da"
    d = docs[0]
    a, b = map(int, d["context"].removeprefix("Question: What is ").split("?")[0].split(" plus "))
    assert d["answer"] == str(a + b) and d["context"].endswith("?\nAnswer:")
    (req,) = task.requests(d)
    assert req.continuation == " " + d["answer"]
    assert task.score(d, [Loglikelihood(-1.0, True, 2)])["acc"] == 1.0
    assert task.score(d, [Loglikelihood(-0.5, False, 2)])["acc"] == 0.0
    assert make_task("arith_probe").docs() == docs  # seeded


def test_arith_probe_bad_stratum():
    with pytest.raises(ConfigError, match=r"'2dx'.*op"):
        make_task("arith_probe", strata=["2dx"])


def test_task_option_that_does_not_exist():
    with pytest.raises(ConfigError, match="has no option 'n-samples'"):
        make_task("hellaswag", n_samples=4)


def test_hellaswag_raw_records_get_lm_eval_preprocessing():
    from smollab.tasks.hellaswag import doc_from_record

    raw = {"activity_label": "Making a cake", "ctx_a": "[header] How to bake [title] Mix.",
           "ctx_b": "then", "endings": ["[step] Bake it  well.", "b", "c", "d"],
           "label": "2"}  # fmt: skip
    doc = doc_from_record(raw, 7)
    assert doc["query"] == "Making a cake: How to bake. Mix. Then"
    # lm-eval strips before removing tags, so a leading tag leaves its space
    assert doc["choices"][0] == " Bake it well." and doc["label"] == 2 and doc["id"] == "7"


#: the tasks that take --num-fewshot: gsm8k and the exact-match tasks (their fewshot format)
FEWSHOT_TAKERS = "Option --num-fewshot applies to the tasks arith.add, arith.mul, gsm8k;"


def test_fewshot_is_a_gsm8k_option_only():
    from smollab.eval.harness import make_tasks

    opts = {"num_fewshot": 2, "limit": 1, "data_dir": str(SHARED)}
    hs, g = make_tasks(["hellaswag", "gsm8k"], opts)
    assert g.num_fewshot == 2 and g.docs()[0]["prompt"].count("Question:") == 3
    with pytest.raises(ConfigError, match=FEWSHOT_TAKERS):
        make_tasks(["hellaswag"], opts, {"num_fewshot": "--num-fewshot"})


def test_fewshot_larger_than_the_pool_and_fewshot_on_the_chat_variant_are_refused(tmp_path):
    from smollab.eval.harness import make_tasks

    (tmp_path / "gsm8k").mkdir()
    rows = [{"question": f"q{i}", "answer": f"a #### {i}"} for i in range(3)]
    for split in ("test", "train"):
        (tmp_path / "gsm8k" / f"{split}.jsonl").write_text(
            "".join(json.dumps(r) + "\n" for r in rows[: 3 if split == "test" else 2])
        )
    with pytest.raises(ConfigError) as e:
        make_task("gsm8k", num_fewshot=5, data_dir=str(tmp_path)).docs()
    assert "num_fewshot (--num-fewshot) is 5" in str(e.value)
    assert "train.jsonl holds 2 solved examples; ask for at most 2" in str(e.value)
    assert len(make_task("gsm8k", num_fewshot=2, data_dir=str(tmp_path)).docs()) == 3
    # gsm8k_chat is zero-shot: the option is refused, not recorded and ignored
    with pytest.raises(ConfigError, match=FEWSHOT_TAKERS):
        make_tasks(["gsm8k_chat"], {"num_fewshot": 3}, {"num_fewshot": "--num-fewshot"})
