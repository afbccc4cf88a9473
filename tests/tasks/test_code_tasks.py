"""HumanEval / MBPP: prompts, stops, sandboxed scoring, pass@k, categories."""

from __future__ import annotations

import pytest

from smollab.errors import ConfigError
from smollab.eval.harness import make_task
from smollab.tasks.code import HUMANEVAL_STOP, MBPP_STOP, extract_code, problem_category
from tests.conftest import SHARED, needs_data

pytestmark = needs_data


def _sandbox_ok() -> bool:
    from smollab.sandbox import sandbox_status

    return sandbox_status() is None


needs_sandbox = pytest.mark.skipif(not _sandbox_ok(), reason="sandbox unavailable here")


def test_humaneval_docs_and_requests():
    task = make_task("humaneval", limit=3, data_dir=str(SHARED))
    doc = task.docs()[0]
    assert doc["id"] == "HumanEval/0" and doc["prompt"].startswith("from typing import List")
    (req,) = task.requests(doc)
    assert req.stop == HUMANEVAL_STOP and req.temperature == 0.0 and req.max_tokens == 512
    # bigcode's default: the prompt stripped (it ends at the docstring's closing quotes), and
    # the program starts with that same prompt
    raw = doc["problem"]["prompt"]
    assert raw.endswith('"""\n') and doc["prompt"] == raw.strip()
    body = "\n    return False\n"
    prog = task.program(doc, body)
    assert prog.startswith(raw.strip() + body) and prog.endswith("check(has_close_elements)")
    compile(prog, "prog.py", "exec")
    unstripped = make_task("humaneval_unstripped", limit=1, data_dir=str(SHARED))
    udoc = unstripped.docs()[0]
    assert udoc["prompt"] == raw
    assert unstripped.program(udoc, "    return False\n").startswith(raw + "    return False\n")


def test_mbpp_prompt_split_and_sanitized_subset():
    task = make_task("mbpp", data_dir=str(SHARED))
    docs = task.docs()
    assert len(docs) == 500 and docs[0]["id"] == "11"
    p = docs[0]["problem"]
    assert docs[0]["prompt"] == f'"""\n{p["text"]}\n{p["test_list"][0]}\n"""\n'
    assert task.requests(docs[0])[0].stop == MBPP_STOP
    assert len(make_task("mbpp_sanitized", data_dir=str(SHARED)).docs()) == 257


def test_samples_are_seeded_and_sampled():
    task = make_task("humaneval", limit=1, n_samples=4, data_dir=str(SHARED))
    reqs = task.requests(task.docs()[0])
    assert [r.seed for r in reqs] == [0, 1, 2, 3]
    assert {(r.temperature, r.top_p) for r in reqs} == {(0.8, 0.95)}


def test_greedy_with_many_samples_is_refused():
    with pytest.raises(ConfigError, match="temperature=0 would draw the same"):
        make_task("humaneval", n_samples=5, temperature=0.0)


def test_problem_category_heuristic():
    assert problem_category("Reverse the words of a sentence") == "string"
    assert problem_category("Return the sum of the list elements") == "list"
    assert problem_category("Is the number prime?") == "math"
    assert problem_category("Do the thing") == "other"


def as_completion(doc: dict, body: str) -> str:
    """``body`` follows the problem's stored prompt; as a completion of the (stripped) prompt
    the model saw, it starts with the whitespace the strip removed."""
    raw = doc["problem"]["prompt"]
    return raw[raw.index(doc["prompt"]) + len(doc["prompt"]) :] + body


@needs_sandbox
def test_canonical_solutions_pass_and_pass_bodies_fail():
    task = make_task("humaneval", limit=6, data_dir=str(SHARED))
    docs = task.docs()
    good = task.score_many(
        docs, [[as_completion(d, d["problem"]["canonical_solution"])] for d in docs]
    )
    assert [r["pass@1"] for r in good] == [1.0] * 6
    assert all(r["syntax_valid"] == 1.0 and r["outcomes"] == ["passed"] for r in good)
    bad = task.score_many(docs, [[as_completion(d, "    pass\n")] for d in docs])
    assert [r["pass@1"] for r in bad] == [0.0] * 6
    assert {o for r in bad for o in r["outcomes"]} <= {"assertion_error", "runtime_error"}


@needs_sandbox
def test_mbpp_reference_code_passes():
    task = make_task("mbpp", limit=4, data_dir=str(SHARED))
    docs = task.docs()
    recs = task.score_many(docs, [[d["problem"]["code"]] for d in docs])
    assert [r["pass@1"] for r in recs] == [1.0] * 4


@needs_sandbox
def test_hostile_and_collapsed_completions_fail_and_the_harness_goes_on():
    task = make_task("humaneval", limit=3, n_samples=3, timeout_s=2.0, data_dir=str(SHARED))
    docs = task.docs()
    forever = "\n    while True:\n        pass\n"
    collapsed = "\n    return return return\n"
    flood = "\n    print('x' * 10**7)\n"
    responses = [
        [as_completion(docs[0], docs[0]["problem"]["canonical_solution"]), forever, collapsed],
        [flood, as_completion(docs[1], docs[1]["problem"]["canonical_solution"]), collapsed],
        [collapsed, collapsed, collapsed],
    ]
    recs = task.score_many(docs, responses)
    assert [r["c"] for r in recs] == [1, 1, 0]
    assert recs[0]["outcomes"] == ["passed", "timeout", "syntax_error"]
    assert recs[0]["pass@1"] == pytest.approx(1 / 3)
    assert recs[2]["doubled_keyword"] == 1.0 and recs[2]["syntax_valid"] == 0.0
    agg = task.aggregate(recs)
    # k = 10, 100 exceed n = 3; k = n itself is reported
    assert list(agg["pass_at_k"]) == ["pass@1", "pass@3"]
    assert agg["pass_at_k"]["pass@1"]["estimate"] == pytest.approx(2 / 9)
    assert agg["pass_at_k"]["pass@3"]["estimate"] == pytest.approx(2 / 3)
    assert agg["outcomes"]["syntax_error"] == 5


@pytest.mark.slow
@needs_sandbox
@pytest.mark.parametrize(
    "name,key,n", [("humaneval", "canonical_solution", 164), ("mbpp", "code", 500),
                   ("mbpp_sanitized", "code", 257)]
)  # fmt: skip
def test_every_reference_solution_passes_through_the_task(name, key, n):
    task = make_task(name, data_dir=str(SHARED))
    docs = task.docs()
    bodies = [d["problem"][key] for d in docs]
    if name == "humaneval":
        bodies = [as_completion(d, b) for d, b in zip(docs, bodies, strict=True)]
    recs = task.score_many(docs, [[b] for b in bodies])
    assert len(recs) == n and [r["id"] for r in recs if r["c"] == 0] == []


def test_humaneval_version_keeps_old_samples_out() -> None:
    """Samples written before the prompt was stripped (version 1) are not resumed into it."""
    from smollab.eval.runner import samples_key

    new = make_task("humaneval", limit=1, data_dir=str(SHARED))
    old = make_task("humaneval_unstripped", limit=1, data_dir=str(SHARED))
    assert new.describe()["version"] == 2 and "version" not in old.describe()
    assert samples_key("m", new) != samples_key("m", old)
    before = make_task("humaneval", limit=1, data_dir=str(SHARED))
    before.version = 1  # the same task as it was keyed before the bump
    assert samples_key("m", before) != samples_key("m", new)
    # tasks never bumped keep their keys: version 1 is not written
    assert "version" not in make_task("mbpp", limit=1, data_dir=str(SHARED)).describe()


def test_extract_code_from_chat_replies():
    fenced = "Sure!\n```python\ndef f(x):\n    return x\n```\nIt returns x."
    assert extract_code(fenced) == "def f(x):\n    return x"
    # an unlabelled fence; a shell block is passed over for the Python one
    assert extract_code("```\nx = 1\n```") == "x = 1"
    assert extract_code("```bash\npip install x\n```\n```py\ny = 2\n```") == "y = 2"
    # several Python blocks: the one defining the entry point
    two = "```python\nimport math\n```\n```python\ndef g():\n    return 1\n```"
    assert extract_code(two, "g") == "def g():\n    return 1"
    assert extract_code(two) == "import math"
    # cut off by the token budget: up to the end; no fence at all: the whole reply
    assert extract_code("```python\ndef h():\n    return") == "def h():\n    return"
    assert extract_code("\ndef k():\n    pass\n") == "def k():\n    pass"


def test_chat_code_tasks_prompts_are_chat_messages():
    he = make_task("humaneval_chat", limit=1, data_dir=str(SHARED))
    doc = he.docs()[0]
    (req,) = he.requests(doc)
    assert req.chat and req.stop == () and req.max_tokens == 512
    assert doc["prompt"].startswith("Complete the following Python function.\n\n```python\n")
    assert (
        doc["problem"]["prompt"].rstrip() in doc["prompt"]
        and "```python code block" in doc["prompt"]
    )
    mb = make_task("mbpp_chat", limit=1, data_dir=str(SHARED))
    mdoc = mb.docs()[0]
    assert mb.requests(mdoc)[0].chat and mdoc["problem"]["test_list"][0] in mdoc["prompt"]
    # new task names: their samples never mix with the completion tasks'
    from smollab.eval.runner import samples_key

    assert samples_key("m", he) != samples_key("m", make_task("humaneval", limit=1))


@needs_sandbox
def test_humaneval_chat_replies_are_scored_on_their_code():
    task = make_task("humaneval_chat", limit=11, data_dir=str(SHARED))
    docs = {d["id"]: d for d in task.docs()}
    p0, p10 = docs["HumanEval/0"]["problem"], docs["HumanEval/10"]["problem"]
    # the whole function restated in a fence, with prose around it
    whole = f"Here is the function:\n```python\n{p0['prompt']}{p0['canonical_solution']}```\nDone."
    # HumanEval/10 calls is_palindrome, defined only in the prompt: a reply with just the
    # entry point still passes, since the program starts with the prompt
    src = p10["prompt"] + p10["canonical_solution"]
    only_entry = "```python\n" + src[src.index("def make_palindrome") :] + "```"
    # a bare body, not indented, no fence
    body = "\n".join(line[4:] for line in p0["canonical_solution"].splitlines() if line.strip())
    wrong = "```python\ndef has_close_elements(numbers, threshold):\n    return True\n```"
    prose = "I cannot help with that."
    recs = task.score_many(
        [docs["HumanEval/0"], docs["HumanEval/10"], docs["HumanEval/0"], docs["HumanEval/0"],
         docs["HumanEval/0"]],
        [[whole], [only_entry], [body], [wrong], [prose]],
    )  # fmt: skip
    assert [r["pass@1"] for r in recs] == [1.0, 1.0, 1.0, 0.0, 0.0]
    assert recs[0]["completions"] == [whole]  # the raw reply is kept
    assert recs[0]["syntax_valid"] == 1.0  # measured on the extracted code's program
    assert recs[3]["outcomes"] == ["assertion_error"]


@needs_sandbox
def test_mbpp_chat_reference_code_in_a_fence_passes():
    task = make_task("mbpp_chat", limit=3, data_dir=str(SHARED))
    docs = task.docs()
    replies = [[f"```python\n{d['problem']['code']}\n```\nThis works."] for d in docs]
    assert [r["pass@1"] for r in task.score_many(docs, replies)] == [1.0] * 3
    wrong = [["```python\ndef nothing():\n    pass\n```"] for _ in docs]
    assert [r["pass@1"] for r in task.score_many(docs, wrong)] == [0.0] * 3
