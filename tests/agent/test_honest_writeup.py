"""Honest write-ups: numbers are checked against what their sentence is about, a reference
protocol run in place of the agent's study is disclosed, and a missing write-up is never
printed as the paper's text."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from smollab.agent import Limits
from smollab.agent.claims import check_claims
from smollab.agent.writeup import disclose_html, disclose_md, disclose_tex, missing_write_up
from smollab.io import read_json, read_jsonl
from smollab.study.executor import InlineExecutor
from tests.agent.scripts import call, scripted_agent, tiny_script
from tests.conftest import TINY_SPEC

QA_SENTENCE = "The fine-tune reached 100% exact match."


def _interval(est: float, low: float, high: float) -> dict[str, Any]:
    return {"estimate": est, "low": low, "high": high, "level": 0.95, "method": "wilson"}


# shaped like a results.json of the tiny study: ft's exact match is 12.5%, its digit accuracy
# 100%; every McNemar p-value is 1.0 and the baseline answers nothing (no_answer = 1.0)
RESULTS: dict[str, Any] = {
    "tasks": {
        "add": {
            "task": "arith.add",
            "strata": ["1x1"],
            "n_items": {"1x1": 24},
            "metrics": ["exact_match", "digit_accuracy"],
            "score": "exact_match",
        }
    },
    "conditions": {
        "baseline": {
            "kind": "baseline",
            "seeds": [0],
            "tasks": {
                "add": {
                    "overall": {
                        "n_items": 24,
                        "n_seeds": 1,
                        "exact_match": _interval(0.0, 0.0, 0.138),
                        "digit_accuracy": _interval(0.0, 0.0, 0.0),
                        "errors": {"correct": 0.0, "no_answer": 1.0},
                    }
                }
            },
        },
        "ft": {
            "kind": "finetune",
            "seeds": [0, 1],
            "train": {"steps": 4, "lr": 0.001, "grad_clip": 1.0},
            "train_summary": {"final_loss": {"mean": 4.457, "std": 0.032}},
            "tasks": {
                "add": {
                    "overall": {
                        "n_items": 24,
                        "n_seeds": 2,
                        "exact_match": _interval(0.125, 0.043, 0.31),
                        "exact_match_per_seed": [0.125, 0.125],
                        "digit_accuracy": _interval(1.0, 1.0, 1.0),
                        "errors": {"correct": 0.125, "no_answer": 0.875},
                    }
                }
            },
        },
    },
    "comparisons": [
        {
            "task": "add",
            "stratum": "overall",
            "baseline": "baseline",
            "condition": "ft",
            "diff": _interval(0.125, -0.05, 0.3),
            "mcnemar": [{"b01": 0, "b10": 3, "statistic": 0.0, "p_value": 1.0}],
            "p_max": 1.0,
            "p_holm": 1.0,
            "verdict": "no detectable difference",
        }
    ],
    "alpha": 0.05,
}
# what the tiny problem states: 1 layer, 4 steps, seeds 0 and 1
CONSTANTS = {0.0, 1.0, 2.0, 4.0, 32.0, 64.0}


def _check(text: str) -> Any:
    return check_claims(text, RESULTS, CONSTANTS)


# ------------------------------------------------------------------ the claim checker


@pytest.mark.parametrize(
    "text",
    [
        QA_SENTENCE,  # 100% is a p-value, a no-answer fraction, a digit accuracy: no exact match
        "ft reached 100% exact match on add.",
        "ft reached an exact match of 1.000.",  # a p-value, a seed, a hyperparameter
        "The baseline reached 12.5% exact match.",  # ft's value, not the baseline's
        "ft reached 95% exact match.",  # the confidence level
        "The exact match of ft was 87.5%.",  # ft's no-answer fraction
    ],
)
def test_numbers_of_something_else_are_rejected(text: str) -> None:
    r = _check(text)
    assert not r.ok and r.numbers_checked == 1
    assert text.split()[-1].rstrip(".") in r.problems[0] or "%" in r.problems[0]


@pytest.mark.parametrize(
    "text",
    [
        "The fine-tune ft reached 12.5% exact match on add.",
        "ft's exact match was 0.125 [0.043, 0.31] over 2 seeds.",
        "ft reached 100% digit accuracy.",
        "McNemar's test of ft against the baseline gave p = 1.000.",
        "The exact-match difference was not significant (p = 1.00, Holm-adjusted).",
        "Intervals are 95% confidence intervals; differences are tested at the 0.05 level.",
        "ft ended at a final loss of 4.46 after 4 steps.",
        "The exact match gain of ft over the baseline was 12.5 points [-5.0, 30.0].",
    ],
)
def test_true_sentences_pass(text: str) -> None:
    r = _check(text)
    assert r.ok, r.problems


def test_qa_sentence_problem_says_why() -> None:
    r = _check(QA_SENTENCE)
    assert "'100%'" in r.problems[0] and "exact_match" in r.problems[0]


# ------------------------------------------------------------------ text helpers


def test_missing_write_up() -> None:
    assert missing_write_up("(script exhausted)")
    assert missing_write_up("   ")
    assert missing_write_up("done")
    assert missing_write_up("The fine-tune did not help on add.") is None


def test_disclosure_placement() -> None:
    md = disclose_md("# t\n\nsession x\n\n## Summary\n\ntext\n", "It ran.")
    assert md.index("It ran.") < md.index("## Summary")
    page = disclose_html("<body><h1>t</h1><h2>Summary</h2></body>", "a < b")
    assert "a &lt; b" in page and page.index("a &lt; b") < page.index("<h2")
    tex = disclose_tex("\\maketitle\n\\section{Method}\nModels.\n", "field 'x_y' (got -4)")
    assert tex.index("\\section{Method}") < tex.index("x\\_y") < tex.index("Models.")


# ------------------------------------------------------------------ scripted sessions


def _session(tmp: Path, replies: list[dict[str, Any]], name: str) -> tuple[Any, Path]:
    agent = scripted_agent(
        tmp,
        replies,
        name=name,
        limits=Limits(max_iterations=1, pdf=False),
        executor=InlineExecutor(),
    )
    res = agent.run()
    return res, res.session_dir


def _texts(d: Path) -> dict[str, str]:
    return {
        n: (d / n).read_text(encoding="utf-8")
        for n in ("report.md", "report.html", "paper/paper.tex", "paper/prose.tex")
    }


def test_invalid_spec_fallback_and_false_claim(tmp_path: Path, report_ready: bool) -> None:
    """The QA session: an invalid spec (steps = -4), the reference protocol runs instead, the
    writer claims 100% exact match and then the script runs out."""
    if not report_ready:
        pytest.skip("needs the real report package")
    bad = TINY_SPEC.replace("steps = 4", "steps = -4")
    assert bad != TINY_SPEC
    replies = [
        {"text": "Plan."},
        {
            "text": "",
            "tool_calls": [
                call("write_file", path="study.toml", content=bad),
                call("run_study", path="study.toml"),
            ],
        },
        {"text": "done"},
        {"text": "crit"},
        {"text": "", "tool_calls": [call("finish", reason="x")]},
        {"text": QA_SENTENCE},
        {"text": QA_SENTENCE},
    ]  # the third write attempt gets "(script exhausted)"
    res, d = _session(tmp_path, replies, "invalid")
    assert not res.claims_ok
    claims = read_json(d / "paper" / "claims.json")
    assert claims["ok"] is False and claims["write_up"] is False
    assert "reference protocol" in claims["reference_protocol_ran"]
    log = read_jsonl(d / "session_log.jsonl")
    attempts = [e for e in log if e["event"] == "claims"]
    assert [a["ok"] for a in attempts] == [False, False, False]
    assert "'100%'" in attempts[0]["problems"][0]
    fb = next(e for e in log if e["event"] == "fallback_run")
    assert fb["reference_protocol"] is True and "steps" in fb["reason"]
    for name, text in _texts(d).items():
        assert "100% exact match" not in text and "100\\% exact match" not in text, name
        assert "script exhausted" not in text, name
    t = _texts(d)
    for name in ("report.md", "report.html", "paper/paper.tex"):
        assert "reference protocol in its place" in t[name], name
        assert "invalid" in t[name] and "steps" in t[name], name
    md = t["report.md"]
    assert md.index("reference protocol in its place") < md.index("## Results")
    tex = t["paper/paper.tex"]
    assert tex.index("\\section{Method}") < tex.index("reference protocol in its place")
    assert tex.index("reference protocol in its place") < tex.index("\\section{Results}")
    assert "produced no write-up" in md and "produced no write-up" in tex
    # the offline write-up is all there
    assert "## Summary" in md and "\\section{Results}" in tex


def test_exhausted_script_leaves_the_offline_write_up(tmp_path: Path, report_ready: bool) -> None:
    """The agent's own study runs, then the script runs out before the write-up."""
    if not report_ready:
        pytest.skip("needs the real report package")
    replies = tiny_script()[:-2]  # no write replies: every write call is "(script exhausted)"
    res, d = _session(tmp_path, replies, "exhausted")
    assert res.finished and not res.claims_ok
    claims = read_json(d / "paper" / "claims.json")
    assert claims["write_up"] is False and claims["reference_protocol_ran"] is None
    t = _texts(d)
    for name, text in t.items():
        assert "script exhausted" not in text, name
        assert "reference protocol in its place" not in text, name
    assert (
        "produced no write-up" in t["report.md"] and "produced no write-up" in t["paper/paper.tex"]
    )
    assert "## Summary" in t["report.md"]
    assert "% Written by the research agent" not in t["paper/paper.tex"]
    # the transcript holds what the model said, the paper does not
    replies_seen = [
        r["reply"]["text"]
        for r in read_jsonl(d / "transcript.jsonl")
        if r["kind"] == "reply" and r["stage"] == "write"
    ]
    assert replies_seen and all(r == "(script exhausted)" for r in replies_seen)
    assert json.dumps(replies_seen)
