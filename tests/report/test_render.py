"""Formatting, escaping and rendering without figures (fast)."""

from __future__ import annotations

import copy
import math

from smollab.report.context import build_context
from smollab.report.figures import PALETTE, color
from smollab.report.fmt import count, params, pct, pct_bare, pp, pvalue, sig2
from smollab.report.paper import render_paper
from smollab.report.render import latex_escape
from smollab.report.text import render_markdown

from ._numbers import printed_numbers, stray_numbers
from .conftest import load_sample


def test_formatters():
    assert pct(0.635) == "63.5%" and pct_bare(0.5621) == "56.2" and pp(0.55) == "+55.0 pp"
    assert pp(-0.0033) == "-0.3 pp"
    assert pvalue(0.0031) == "p = 0.003" and pvalue(1e-20) == "p < 0.001"
    assert pct(math.nan) == "n/a" and pvalue(None) == "p = n/a" and count(float("inf")) == "n/a"
    assert params(134515008) == "134.5M"


def test_latex_escape():
    assert latex_escape("a_b & 50% $x$ #1 {y} ~ ^ \\") == (
        r"a\_b \& 50\% \$x\$ \#1 \{y\} \textasciitilde{} \textasciicircum{} \textbackslash{}"
    )
    assert latex_escape("p < 0.001") == r"p \textless{} 0.001"


def _many_conditions(n: int) -> dict:
    results = load_sample()
    ft = results["conditions"]["finetune_full"]
    base_comps = [c for c in results["comparisons"]]
    for i in range(n):
        name = f"lora_r{i}"
        results["conditions"][name] = copy.deepcopy(ft)
        for c in base_comps:
            results["comparisons"].append({**copy.deepcopy(c), "condition": name})
    return results


def test_many_conditions_render():
    results = _many_conditions(6)
    ctx = build_context(results)
    tex, numbers = render_paper(ctx)
    assert r"\resizebox{\linewidth}" in tex
    assert "lora\\_r5" in tex
    assert printed_numbers(tex) and not stray_numbers(tex, numbers["numbers"])
    md = render_markdown(ctx)
    assert md.count("| `lora_r5` |") >= 5
    assert len({color(i) for i in range(len(PALETTE))}) == len(PALETTE)


def test_no_improvement_anywhere_is_stated():
    results = load_sample()
    for c in results["comparisons"]:
        c["verdict"] = "no detectable difference"
    tex, _ = render_paper(build_context(results))
    abstract = tex.split(r"\begin{abstract}")[1].split(r"\end{abstract}")[0]
    assert "no trained condition showed a detectable improvement" in abstract
    assert r"\texttt{finetune\_full}, improvement on" not in tex
    assert r"\texttt{finetune\_full}, no detectable difference on \texttt{1x1}" in tex


def test_the_paper_says_how_a_from_scratch_baseline_and_its_seeds_relate():
    """QA: the paper said trained conditions are 'fine-tuned from the same model' when the
    model was a random initialisation, one per seed."""

    def conditions_paragraph(results) -> str:
        tex, _ = render_paper(build_context(results))
        return " ".join(tex.split(r"\paragraph{Conditions.}")[1].split(r"\begin{table}")[0].split())

    results = load_sample()
    pretrained = conditions_paragraph(results)
    assert "fine-tuned from the same model" in pretrained and "scratch" not in pretrained
    results["models"]["smollm2-135m"]["source"] = "scratch:llama"
    scratch = conditions_paragraph(results)
    assert "fine-tuned" not in scratch
    assert "each seed is its own random initialisation" in scratch
    assert "evaluated untrained, once per seed" in scratch
    assert "starts from the same seed's initialisation" in scratch
    results["models"]["other"] = {"source": "smollm2-135m", "model_type": "llama"}
    mixed = conditions_paragraph(results)
    assert "a from-scratch model's random initialisation, once per seed" in mixed


def test_a_trained_condition_compared_with_nothing_gets_no_empty_findings():
    """QA: a train session without --baseline printed an empty 'Findings by condition:'
    heading, and its paper an itemize with no item (which LaTeX refuses)."""
    from pathlib import Path

    from smollab.report.text import render_html

    results = load_sample()
    results["conditions"].pop("baseline")
    results["comparisons"] = []
    ctx = build_context(results)
    assert [t["findings"] for t in ctx["tasks"]] == [[]]
    md = render_markdown(ctx)
    assert "Findings by condition" not in md
    assert (
        "No trained condition was compared with a baseline on `mul`, so there are no "
        "findings by condition." in md
    )
    html = render_html(ctx, Path("."))
    assert "Findings by condition" not in html and "no findings by condition" in html
    tex, numbers = render_paper(ctx)
    assert "\\begin{itemize}\n\\end{itemize}" not in tex
    assert "no trained condition was compared with a baseline, so no finding is stated" in tex
    assert not stray_numbers(tex, numbers["numbers"])
    # with a baseline, the findings are listed as before
    md = render_markdown(build_context(load_sample()))
    assert "Findings by condition:" in md and "no findings by condition" not in md


def test_a_spread_has_two_significant_digits() -> None:
    got = [sig2(x) for x in (0.004004, 0.01043, 0.08521, 1.5, 9.96, 12.34, 0.0, None)]
    assert got == ["0.0040", "0.010", "0.085", "1.5", "10", "12", "0.0", "n/a"]
