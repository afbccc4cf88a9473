"""A grokking study's conditions set against the first one: the shift of steps to 99%."""

from __future__ import annotations

from typing import Any

import pytest

from smollab.analysis.grokking import _comparisons, critique
from smollab.analysis.stats import (
    censored_ranks,
    censored_shift_interval,
    describe_seeds,
    describe_steps,
    holm_bonferroni,
    mann_whitney_min_p,
    mann_whitney_p,
    shift_interval,
)


def _task(steps: list[int | None], last: list[int] | None = None) -> dict[str, Any]:
    """A task block; ``last``: each seed's last step (default: none, the condition's steps)."""
    g = describe_steps(steps)
    return {
        "runs": [] if last is None else [{"seed": i, "steps": e} for i, e in enumerate(last)],
        "step_val_acc_99": g,
        "memorisation_step": describe_steps([100] * len(steps)),
        "grokking_gap": describe_steps([None if s is None else s - 100 for s in steps]),
        "final_val_acc": describe_seeds([1.0] * len(steps)),
        "grokked": f"{g['n_reached']}/{g['n']}",
    }


def _results(conds: dict[str, dict[str, list[int | None]]]) -> dict[str, Any]:
    return {
        "study": {"name": "s"},
        "session": "sess",
        "conditions": {
            c: {
                "seeds": list(range(len(next(iter(tasks.values()))))),
                "config": {"steps": 5000},
                "tasks": {t: _task(v) for t, v in tasks.items()},
            }
            for c, tasks in conds.items()
        },
    }


REF = [2380, 1980, 2350, 2410, 2630]
FAST = [900, 1100, 1000, 950, 1200]


def test_each_condition_against_the_first() -> None:
    out = _results(
        {
            "ref": {"add": REF, "sub": [4000, 4100, 3900, 4200, 4050]},
            "fast": {"add": FAST, "sub": [4010, 4090, 3950, 4150, 4000]},
            "slow": {"add": [s + 1000 for s in REF]},
        }
    )
    comps = _comparisons(out)
    assert [(c["condition"], c["task"]) for c in comps] == [
        ("fast", "add"),
        ("fast", "sub"),
        ("slow", "add"),
    ]
    fast_add = comps[0]
    iv = shift_interval(FAST, REF)
    assert fast_add["reference"] == "ref" and fast_add["n"] == 5 == fast_add["n_reference"]
    assert fast_add["shift"]["estimate"] == iv.estimate < 0
    assert fast_add["shift"]["high"] == iv.high < 0  # every fast seed beats every ref seed
    assert fast_add["median_ratio"] == 1000 / 2380
    assert fast_add["verdict"] == "improvement" and fast_add["reason"] is None
    assert comps[1]["verdict"] == "no detectable difference"  # overlapping seeds
    assert comps[1]["shift"]["low"] < 0 < comps[1]["shift"]["high"]
    slow = comps[2]
    assert slow["shift"]["estimate"] == 1000.0 and slow["verdict"] == "degradation"


def test_too_few_seeds_and_unreached_seeds_are_said_not_hidden() -> None:
    out = _results(
        {
            "ref": {"add": [2400, 2500, 2600], "mul": [3000, 3100, 3200]},
            "fast": {"add": [900, 1000, 1100], "mul": [900, None, 1000]},
        }
    )
    # fast seed 1 stopped at step 2000 without 99%: before ref's 3000, so it cannot be ranked
    out["conditions"]["fast"]["tasks"]["mul"] = _task([900, None, 1000], [1000, 2000, 1100])
    add, mul = _comparisons(out)
    # 3 vs 3 with complete separation: p = 0.10 at best, so 95% cannot be bounded
    assert add["shift"]["low"] is None and add["shift"]["high"] is None
    assert add["shift"]["estimate"] == -1500.0
    assert add["verdict"] == "no detectable difference"
    assert add["p_min"] == pytest.approx(0.1)
    assert "3 against 3 seeds cannot bound" in add["reason"]
    assert mul["shift"] is None and mul["verdict"] == "not computed" and "p_value" not in mul
    assert mul["reason"].startswith(
        "fast seed 1 stopped at step 2000 without reaching 99% validation accuracy, before step "
        "3200, at which ref seed 2 reached it"
    )
    assert mul["censored"] == [{"condition": "fast", "seed": 1, "after_step": 2000}]
    text = critique({**out, "comparisons": [add, mul], "notes": []})
    assert "fast vs ref on add: no detectable difference: 3 against 3 seeds" in text
    assert "fast vs ref on mul: not computed: fast seed 1 stopped at step 2000" in text


def test_a_named_reference_is_compared_with_every_other_condition() -> None:
    out = _results({"ref": {"add": REF}, "fast": {"add": FAST}, "slow": {"add": REF[::-1]}})
    comps = _comparisons(out, "fast")
    assert [(c["condition"], c["reference"]) for c in comps] == [
        ("ref", "fast"),
        ("slow", "fast"),
    ]
    assert comps[0]["shift"]["estimate"] == shift_interval(REF, FAST).estimate > 0
    assert comps[0]["verdict"] == "degradation"  # more steps than the reference


def test_one_condition_has_no_comparisons() -> None:
    assert _comparisons(_results({"ref": {"add": REF}})) == []


def test_report_tables_print_the_shift_from_the_results() -> None:
    from smollab.report.grokking import context
    from smollab.report.render import NumberLog, md_env, tex_env

    out = _results({"ref": {"add": REF}, "fast": {"add": FAST}, "few": {"add": REF[:1]}})
    out["comparisons"] = _comparisons(out)
    ctx = context(out)
    ctx["figures"] = []
    md = md_env().get_template("grok_report.md.j2").render(**ctx)
    iv = shift_interval(FAST, REF)
    assert "## Each condition against `ref`" in md
    row = next(line for line in md.splitlines() if line.startswith("| fast | add | 5 vs 5"))
    assert f"{iv.estimate:+.0f} [{iv.low:+.0f}, {iv.high:+.0f}]" in row
    assert "0.42x" in row and "improvement" in row
    few = next(line for line in md.splitlines() if line.startswith("| few | add | 1 vs 5"))
    assert "[unbounded, unbounded]" in few and "no detectable difference" in few
    log = NumberLog()
    tex = tex_env(log).get_template("grok_paper.tex.j2").render(**ctx)
    assert "tab:shift" in tex
    assert log.numbers["comparisons.0.shift.estimate"]["value"] == iv.estimate
    assert log.numbers["comparisons.0.median_ratio"]["text"] == "0.42x"
    # a negative shift is printed with a minus sign, not a hyphen
    assert f"\\ensuremath{{-}}{abs(iv.estimate):.0f}" in tex
    assert f"-{abs(iv.estimate):.0f}" not in tex


# --------------------------------------------------------------------------- censored seeds


def test_smallest_p_comes_from_the_seed_counts() -> None:
    """2 seeds against 2 can give p = 1/3 at best, 3 against 3 0.1, 4 against 4 2/70: the
    two splits that separate the samples completely, of C(m + n, m)."""
    assert mann_whitney_min_p(2, 2) == pytest.approx(1 / 3)
    assert mann_whitney_min_p(3, 3) == pytest.approx(0.1)
    assert mann_whitney_min_p(4, 4) == pytest.approx(2 / 70)
    assert mann_whitney_min_p(2, 5) == pytest.approx(2 / 21)
    assert mann_whitney_min_p(3, 4) == mann_whitney_p([1, 2, 3], [7, 8, 9, 10])
    with pytest.raises(ValueError, match=">= 1"):
        mann_whitney_min_p(0, 3)


def test_censored_ranks_put_unreached_seeds_after_every_reached_one() -> None:
    a, b = [900, None, 1000], [2380, None, 2350]
    ranked = censored_ranks(a, b, [1000, 5000, 1000], [2400, 3000, 2400])
    assert ranked is not None
    x, y = ranked
    assert x[0] == 900 and y[2] == 2350 and x[1] == y[1] > 2380  # the censored seeds tie
    # the p-value does not depend on how much later the censored seeds are
    assert mann_whitney_p(x, y) == mann_whitney_p([900, 1e9, 1000], [2380, 1e9, 2350])
    # censored at 2000, before a seed that reached 99% at 2380: no ranks
    assert censored_ranks(a, b, [1000, 2000, 1000], [2400, 3000, 2400]) is None
    # stopping exactly at the latest reached step still ranks after it
    assert censored_ranks(a, b, [0, 2380, 0], [0, 2380, 0]) is not None
    assert mann_whitney_p(*censored_ranks([None, None], [None], [10, 20], [5])) == 1.0


def test_censored_shift_interval_holds_whatever_the_censored_steps_are() -> None:
    ref = [2380, 1980, 2350, 2410, 2630]
    fast = [900, None, 1000, 950, 1100, 1000, 1010]
    last = [5000] * 7
    iv = censored_shift_interval(fast, ref, last, [5000] * 5)
    assert iv.method == "hodges-lehmann-exact-censored"
    # the interval covers the uncensored interval of every completion of the censored seed
    for late in (5000, 5001, 8000, 1e9):
        done = shift_interval([late if v is None else v for v in fast], ref)
        assert iv.low <= done.low and done.high <= iv.high
        assert done.estimate == iv.estimate  # one censored seed of 7: the median is determined
    assert iv.high == shift_interval([5000 if v is None else v for v in fast], ref).high
    # with no censored seed it is shift_interval
    assert censored_shift_interval(ref, FAST, [0] * 5, [0] * 5).to_dict() == {
        **shift_interval(ref, FAST).to_dict(),
        "method": "hodges-lehmann-exact-censored",
    }
    # a censored reference seed bounds the shift from above only, and the other way round
    both = censored_shift_interval([1, 2, 3, 4], [None, 10, 11, 12], [0] * 4, [20, 0, 0, 0])
    assert both.high < 0 and both.low == -float("inf")
    # the estimate depends on the censored steps: not given
    half = censored_shift_interval([100, None], [200, 300], [0, 500], [0, 0])
    assert half.estimate != half.estimate  # nan


def test_censored_seeds_are_compared_when_they_rank_after_every_reached_seed() -> None:
    """The QA case: 2 seeds per condition, one reference seed never reached 99% in 1500 steps,
    both of the other condition did; and the 7-against-5 case where the test rejects."""
    out = _results({"ref": {"add": REF}, "fast": {"add": [900, None, 1000, 950, 1100, 1000, 1010]}})
    out["conditions"]["fast"]["tasks"]["add"] = _task(
        [900, None, 1000, 950, 1100, 1000, 1010], [1000, 3000, 1100, 1000, 1200, 1100, 1100]
    )
    (comp,) = _comparisons(out)
    fast = [900, 1e9, 1000, 950, 1100, 1000, 1010]
    assert comp["p_value"] == pytest.approx(mann_whitney_p(fast, REF)) and comp["p_value"] < 0.05
    assert comp["p_holm"] == comp["p_value"]  # one comparison
    iv = censored_shift_interval(
        [None if v == 1e9 else v for v in fast], REF, [3000] * 7, [5000] * 5
    )
    assert comp["shift"]["estimate"] == iv.estimate and comp["shift"]["high"] == iv.high < 0
    assert comp["verdict"] == "improvement"
    assert comp["censored"] == [{"condition": "fast", "seed": 1, "after_step": 3000}]
    assert comp["reason"].startswith(
        "never reached 99% (censored): fast seed 1 (after step 3000); it ranks after every seed "
        "that reached it; the shift estimate does not depend on its unknown steps"
    )
    out = _results({"ref": {"add": [None, None]}, "wd1": {"add": [None, 1440]}})
    out["conditions"]["ref"]["tasks"]["add"] = _task([None, None], [1500, 1500])
    out["conditions"]["wd1"]["tasks"]["add"] = _task([None, 1440], [1500, 1500])
    (qa,) = _comparisons(out)
    assert qa["verdict"] == "no detectable difference" and "p_holm" in qa
    assert qa["p_value"] == mann_whitney_p([2000, 1440], [2000, 2000])
    assert qa["shift"]["estimate"] is None and qa["shift"]["low"] is None
    assert qa["p_min"] == pytest.approx(1 / 3)
    assert "2 against 2 seeds cannot bound" in qa["reason"]
    assert "wd1 seed 0 (after step 1500), ref seeds 0, 1 (after step 1500)" in qa["reason"]
    assert "they rank after every seed that reached it and tie with each other" in qa["reason"]
    assert "the shift estimate depends on their unknown steps and is not given" in qa["reason"]


def test_holm_runs_over_censored_comparisons_too() -> None:
    out = _results(
        {
            "ref": {"add": REF},
            "a": {"add": [900, 950, 1000, 1050, 1100]},
            "b": {"add": FAST},
        }
    )
    out["conditions"]["b"]["tasks"]["add"] = _task(
        [900, None, 1000, 950, 1100], [1000] + [3000] * 4
    )
    comps = _comparisons(out)
    ps = [c["p_value"] for c in comps]
    assert [c["p_holm"] for c in comps] == holm_bonferroni(ps)
    assert comps[1]["censored"] and comps[1]["p_holm"] >= comps[1]["p_value"]


def _render(out: dict[str, Any]) -> tuple[str, str, str, dict[str, Any]]:
    """report.md, report.html (its text: entities unescaped) and paper.tex of the comparisons in
    ``out``, and the numbers the paper printed."""
    import html

    from smollab.report.grokking import context
    from smollab.report.render import NumberLog, html_env, md_env, tex_env

    out["comparisons"] = _comparisons(out)
    ctx = {**context(out), "figures": []}
    log = NumberLog()
    return (
        md_env().get_template("grok_report.md.j2").render(**ctx),
        html.unescape(html_env().get_template("grok_report.html.j2").render(**ctx)),
        tex_env(log).get_template("grok_paper.tex.j2").render(**ctx),
        log.numbers,
    )


def test_report_words_the_test_rule_for_the_seed_counts_it_has() -> None:
    """The QA study: 2 seeds per condition, one comparison, censored seeds. No '0 comparisons',
    no '3 seeds against 3': the smallest p its own seed counts allow, from the results."""
    out = _results({"ref": {"add": [None, None]}, "wd1": {"add": [None, 1440]}})
    out["conditions"]["ref"]["tasks"]["add"] = _task([None, None], [1500, 1500])
    out["conditions"]["wd1"]["tasks"]["add"] = _task([None, 1440], [1500, 1500])
    md, html, tex, numbers = _render(out)
    rule = (
        "A shift is called a difference only if its interval excludes 0 and the Mann-Whitney "
        "test rejects at 0.05 (one comparison: no Holm adjustment). With 2 seeds against 2 the "
        "smallest possible p-value is 0.333, above 0.05, so a comparison with these seed counts "
        "cannot reject."
    )
    for text in (md, html, tex):
        flat = " ".join(text.split())
        assert rule in flat
        assert "0 comparisons" not in flat and "3 seeds against 3" not in flat
        assert "A seed that never reached 99" in flat and "is censored" in flat
    assert numbers["comparisons.0.p_min"]["value"] == pytest.approx(1 / 3)
    row = next(line for line in md.splitlines() if line.startswith("| wd1 | add | 2 vs 2"))
    assert "not given [unbounded, unbounded]" in row and "p = 1.000" in row
    assert "no detectable difference" in row and "never reached 99% (censored)" in row


def test_report_says_when_no_comparison_has_a_test_and_why() -> None:
    out = _results({"ref": {"add": REF}, "fast": {"add": [900, None, 1000, 950, 1100]}})
    out["conditions"]["fast"]["tasks"]["add"] = _task([900, None, 1000, 950, 1100], [1000] * 5)
    md, html, tex, _ = _render(out)
    said = (
        "Mann-Whitney test, Holm-adjusted over the comparisons that have a test, rejects at 0.05; "
        "here no comparison has one (see why)."
    )
    for text in (md, html, tex):
        assert said in " ".join(text.split())
    row = next(line for line in md.splitlines() if line.startswith("| fast | add | 5 vs 5"))
    assert "not computed" in row and "fast seed 1 stopped at step 1000" in row
    # the paper has no 'why' column: it says why under the table
    assert "is not computed: \\freetext{fast seed 1 stopped at step 1000" in " ".join(tex.split())


def test_report_says_when_holm_leaves_no_comparison_able_to_reject() -> None:
    """4 seeds against 4 can reach p = 0.029, but Holm over 3 comparisons multiplies the
    smallest by 3; and a shift with an open end but a determined estimate prints both."""
    four = [2380, 1980, 2350, 2410]
    out = _results(
        {
            "ref": {"add": four},
            "a": {"add": [900, 950, 1000, 1050]},
            "b": {"add": [900, 950, 1000, 1050]},
            "c": {"add": [900, None, 1000, 1050]},
        }
    )
    out["conditions"]["c"]["tasks"]["add"] = _task(
        [900, None, 1000, 1050], [1100, 3000, 1100, 1100]
    )
    md, html, tex, numbers = _render(out)
    said = (
        "Holm-adjusted over the 3 comparisons, rejects at 0.05. With these seed counts the "
        "smallest possible p-value is 0.029, and Holm's adjustment multiplies the smallest of the "
        "3 by 3, so no comparison can reject."
    )
    for text in (md, html, tex):
        assert said in " ".join(text.split())
    assert all(c["verdict"] == "no detectable difference" for c in out["comparisons"])
    shift = out["comparisons"][2]["shift"]
    assert shift["estimate"] is not None and shift["high"] is None
    row = next(line for line in md.splitlines() if line.startswith("| c | add | 4 vs 4"))
    assert f"{shift['estimate']:+.0f} [{shift['low']:+.0f}, unbounded]" in row
