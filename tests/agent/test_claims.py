"""The claim checker: references render, stray numbers are rejected, rounding is allowed."""

from __future__ import annotations

from smollab.agent.claims import check_claims, flatten, stated_constants

RESULTS = {
    "conditions": {"ft": {"em": 0.9234, "seeds": [0, 1, 2]}},
    "comparisons": [{"diff": {"estimate": 0.412}}],
}


def test_flatten_keys() -> None:
    flat = flatten(RESULTS)
    assert flat["conditions.ft.em"] == 0.9234 and flat["conditions.ft.seeds.length"] == 3


def test_references_render_and_pass() -> None:
    r = check_claims(
        "EM was {{conditions.ft.em|pct}} ({{comparisons.0.diff.estimate}}).", RESULTS, set()
    )
    assert r.ok and "92.3\\%" in r.rendered and "0.412" in r.rendered


def test_rounded_values_and_constants_pass() -> None:
    r = check_claims("About 92% (0.92), 41.2 points, after 70 steps on 2x2.", RESULTS, {70.0})
    assert r.ok, r.problems


def test_invented_numbers_and_bad_keys_are_listed() -> None:
    r = check_claims("It reached 97.5% in 12 steps; see {{conditions.ft.nope}}.", RESULTS, {70.0})
    assert not r.ok
    joined = " ".join(r.problems)
    assert "'97.5%'" in joined and "'12'" in joined and "conditions.ft.nope" in joined


def test_malformed_references_are_listed_not_printed() -> None:
    """A reference with an unknown filter is not template text left in the paper."""
    for ref in ("{{conditions.ft.em|percent}}", "{{conditions.ft.em|PCT}}", "{{conditions ft}}"):
        r = check_claims(f"EM was {ref}.", RESULTS, set())
        assert not r.ok and f"{ref} is not a reference" in " ".join(r.problems)


def test_names_with_digits_are_not_claims() -> None:
    r = check_claims("gpt2 and SmolLM2 on 3x3 and mul/1x2.", RESULTS, set())
    assert r.ok, r.problems


def test_stated_constants() -> None:
    assert stated_constants("steps = 70\nlr = 3e-4") >= {70.0, 3e-4}
