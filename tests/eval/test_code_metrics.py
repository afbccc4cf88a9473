"""Code metrics: syntax validity and the mode-collapse scores."""

from __future__ import annotations

import pytest

from smollab.eval.code_metrics import (
    code_metrics,
    distinct_n,
    doubled_keywords,
    repeat_ngram_ratio,
    syntax_valid,
    tokens,
)


def test_tokens_are_python_ish():
    assert tokens("return a+1.5 # x") == ["return", "a", "+", "1.5", "#", "x"]


@pytest.mark.parametrize(
    "src,ok",
    [("def f(x):\n    return x\n", True), ("def f(x)\n    return x\n", False),
     ("return return", False), ("x = '\\d'\n", True), ("", True)],
)  # fmt: skip
def test_syntax_valid(src, ok):
    assert syntax_valid(src) is ok


def test_repeat_ngram_ratio():
    assert repeat_ngram_ratio("a b c d e f g") == 0.0
    looped = "x = x + 1\n" * 20
    assert repeat_ngram_ratio(looped) > 0.9
    assert repeat_ngram_ratio("a b") == 0.0  # fewer tokens than n


def test_distinct_n_pools_texts():
    assert distinct_n(["a b", "a b"], 2) == 0.5
    assert distinct_n(["a b c"], 1) == 1.0
    assert distinct_n([""], 2) == 0.0


def test_doubled_keywords():
    text = "def def f():\n    return return x\n    if x in items: pass\n"
    assert doubled_keywords(text) == ["def def", "return return"]
    assert doubled_keywords("returned return_value return") == []


def test_code_metrics_per_sample():
    m = code_metrics("def f():\n    return return 1\n", "    return return 1\n")
    assert m["syntax_valid"] == 0.0 and m["doubled_keyword"] == 1.0
    m = code_metrics("def f():\n    return 1\n", "    return 1\n")
    assert m == {"syntax_valid": 1.0, "repeat_ngram_ratio": 0.0, "distinct_2": 1.0,
                 "doubled_keyword": 0.0}  # fmt: skip
