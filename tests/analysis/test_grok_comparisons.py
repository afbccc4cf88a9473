"""A grokking study's conditions set against the first one: the shift of steps to 99%."""

from __future__ import annotations

from typing import Any

from smollab.analysis.grokking import _comparisons, critique
from smollab.analysis.stats import describe_seeds, describe_steps, shift_interval


def _task(steps: list[int | None]) -> dict[str, Any]:
    g = describe_steps(steps)
    return {
        "runs": [],
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
    add, mul = _comparisons(out)
    # 3 vs 3 with complete separation: p = 0.10 at best, so 95% cannot be bounded
    assert add["shift"]["low"] is None and add["shift"]["high"] is None
    assert add["shift"]["estimate"] == -1500.0
    assert add["verdict"] == "no detectable difference"
    assert "3 against 3 seeds cannot bound" in add["reason"]
    assert mul["shift"] is None and mul["verdict"] == "not computed"
    assert "censored" in mul["reason"]
    text = critique({**out, "comparisons": [add, mul], "notes": []})
    assert "fast vs ref on add: no detectable difference: 3 against 3 seeds" in text
    assert "fast vs ref on mul: not computed" in text


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
