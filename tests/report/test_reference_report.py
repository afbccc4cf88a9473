"""The report and paper of a study with a reference condition, and the labels a reader misread:
seed counts, the final loss, the tests that were run, the caveat of two seeds."""

from __future__ import annotations

import copy
from typing import Any

from smollab.report import build_report
from smollab.report.context import build_context

from .conftest import load_sample, make_session
from .test_build import check_paper_numbers


def _flat(text: str) -> str:
    return " ".join(text.split())


def _with_reference(reference: bool = True) -> dict[str, Any]:
    """The sample plus a 2-seed condition ``lora``, compared with the baseline and (with
    ``reference``) with ``finetune_full`` as the reference."""
    r = copy.deepcopy(load_sample())
    lora = copy.deepcopy(r["conditions"]["finetune_full"])
    lora.update(seeds=[0, 1], runs=lora["runs"][:2])
    r["conditions"]["lora"] = lora
    base = []
    for c in r["comparisons"]:
        c.update(seed_t="one-sample", pairing="all")
        base.append({**copy.deepcopy(c), "condition": "lora"})
    r["comparisons"] += base
    r["mcnemar_exact_below"] = 25
    r["reference"] = None
    r["vs_reference"] = []
    if reference:
        r["reference"] = "finetune_full"
        for c in base:
            ref = {k: copy.deepcopy(v) for k, v in c.items() if k != "baseline"}
            ref.update(
                reference="finetune_full",
                seed_t="welch",
                pairing="all",
                diff={**ref["diff"], "estimate": -0.031, "low": -0.094, "high": 0.032},
                verdict="no detectable difference",
            )
            r["vs_reference"].append(ref)
    return r


def test_comparisons_with_the_reference_are_reported_and_traceable(tmp_path) -> None:
    """QA: "Does lr 3e-3 beat lr 1e-3?" had no answer: every comparison was with the baseline."""
    session = make_session(tmp_path, _with_reference())
    paths = build_report(session, pdf=False)
    md = paths.report_md.read_text()
    flat = _flat(md)
    assert (
        "On `mul`, `lora` against the reference `finetune_full` (overall exact match): a "
        "difference of -3.1 pp [-9.4, 3.2], no detectable difference." in flat
    )
    assert "Comparisons with the reference `finetune_full` (exact match, percentage points;" in md
    assert "| `lora` | `3x3` | -3.1 pp [-9.4, 3.2] |" in md
    assert "Against the reference `finetune_full`:" in md
    assert "- `lora`, no detectable difference on `1x1`, `1x2`, `2x2` and `3x3`." in md
    assert "Trained conditions are compared only with the baseline" not in flat
    # the tests, as results.json recorded them
    assert "a one-sample t interval over the per-seed differences" in flat
    assert "Each difference from the reference is the hull of a paired bootstrap" in flat
    assert "Welch's t interval over the two conditions' seed accuracies" in flat
    assert "exact (two-sided binomial) when fewer than 25 items differ" in flat
    assert "chi-square with continuity correction otherwise; both forms ran here" in flat
    html = _flat(paths.report_html.read_text())
    assert "Comparisons with the reference <code>finetune_full</code>" in html
    tex = _flat(paths.paper_tex.read_text())
    assert r"against the reference \texttt{finetune\_full} on \texttt{mul}" in tex
    assert r"also with the reference \texttt{finetune\_full}" in tex
    numbers = check_paper_numbers(session)
    assert numbers["vs_reference.3.diff.estimate"]["text"] == "-3.1 pp"
    assert numbers["mcnemar_exact_below"]["text"] == "25"


def test_without_a_reference_the_report_says_how_to_set_one(tmp_path) -> None:
    session = make_session(tmp_path, _with_reference(reference=False))
    paths = build_report(session, pdf=False)
    hint = "Trained conditions are compared only with the baseline, not with each other"
    md = _flat(paths.report_md.read_text())
    assert hint in md and 'set `reference = "finetune_full"` under [study]' in md
    assert hint in _flat(paths.paper_tex.read_text())
    assert "Comparisons with the reference" not in md
    check_paper_numbers(session)
    # one trained condition: nothing to compare with each other, no hint
    one = _flat(build_report(make_session(tmp_path / "one"), pdf=False).report_md.read_text())
    assert hint not in one


def test_seed_counts_final_loss_and_two_seeds_are_labelled(tmp_path) -> None:
    """QA: a baseline's "Seeds" cell read "0" (zero seeds?); "Final loss" was a mean of the last
    ten steps without saying so; two seeds' t interval can collapse without a caveat."""
    session = make_session(tmp_path, _with_reference())
    paths = build_report(session, pdf=False)
    md = paths.report_md.read_text()
    assert "| `baseline` | `baseline` | `smollm2-135m` | `fewshot` | `-` | 1 (0) |" in md
    assert "| 3 (0, 1, 2) |" in md and "| 2 (0, 1) |" in md
    assert "| Final loss (mean of last ten steps) |" in md
    flat = _flat(md)
    assert "`lora` ran 2 seeds: a t interval over two seeds is very wide" in flat
    tex = _flat(paths.paper_tex.read_text())
    assert "final loss is the mean training loss of its last ten logged steps" in tex
    assert r"\texttt{lora} ran 2 seeds" in tex
    check_paper_numbers(session)
    # three seeds each: no caveat
    assert "ran 2 seeds" not in _flat(
        build_report(make_session(tmp_path / "three"), pdf=False).report_md.read_text()
    )


def test_a_task_with_one_stratum_has_one_row() -> None:
    """A single stratum and overall hold the same items: the table prints one row, and the
    findings read the overall comparison (the only one the analysis makes)."""
    r = copy.deepcopy(load_sample())
    r["tasks"]["mul"].update(strata=["all"], n_items={"all": 200})
    for cond in r["conditions"].values():
        t = cond["tasks"]["mul"]
        t["strata"] = {"all": t["overall"]}
    r["comparisons"] = [c for c in r["comparisons"] if c["stratum"] == "overall"]
    (task,) = build_context(r)["tasks"]
    assert [row["stratum"] for row in task["rows"]] == ["overall"]
    (finding,) = task["findings"]
    assert finding["improvement"] == ["overall"]
