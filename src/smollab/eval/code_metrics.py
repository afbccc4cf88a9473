"""Metrics of generated code beyond pass/fail: syntax validity and mode collapse.

A small model that "learns" to code often collapses into repetition: ``return return``,
``def def``, the same line ten times. These metrics make that visible per item:

``syntax_valid``         the program parses (``ast.parse``)
``repeat_ngram_ratio``   share of the completion's token n-grams (n=4) that repeat an earlier one
                         (0 = no repetition; near 1 = one phrase over and over)
``distinct_n``           distinct n-grams / all n-grams (per item, and over a whole set)
``doubled_keyword``      a Python keyword written twice in a row (``return return``, ``def def``)

Tokens are Python-ish: identifiers, numbers, and single punctuation characters.
"""

from __future__ import annotations

import ast
import keyword
import re
import warnings
from collections.abc import Iterable, Sequence

_TOKEN = re.compile(r"[A-Za-z_]\w*|\d+(?:\.\d+)?|[^\w\s]")
_DOUBLED = re.compile(
    r"\b(" + "|".join(sorted([*keyword.kwlist, "print"], key=len, reverse=True)) + r")\s+\1\b"
)


def tokens(text: str) -> list[str]:
    """Identifiers, numbers and punctuation characters of ``text``, in order."""
    return _TOKEN.findall(text)


def syntax_valid(source: str) -> bool:
    """Whether ``source`` parses as Python."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # invalid escape sequences etc. are not errors
            ast.parse(source)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return False
    return True


def _ngrams(toks: Sequence[str], n: int) -> list[tuple[str, ...]]:
    return [tuple(toks[i : i + n]) for i in range(len(toks) - n + 1)]


def repeat_ngram_ratio(text: str, n: int = 4) -> float:
    """Share of the n-grams of ``text`` that already occurred earlier in it (0 when it has none)."""
    grams = _ngrams(tokens(text), n)
    if not grams:
        return 0.0
    return 1.0 - len(set(grams)) / len(grams)


def distinct_n(texts: Iterable[str], n: int) -> float:
    """Distinct n-grams over all n-grams of ``texts`` (pooled); 0.0 when there are none."""
    grams = [g for t in texts for g in _ngrams(tokens(t), n)]
    return len(set(grams)) / len(grams) if grams else 0.0


def doubled_keywords(text: str) -> list[str]:
    """Every keyword written twice in a row (``"return return"``), in order of appearance."""
    return [m.group(0) for m in _DOUBLED.finditer(text)]


def code_metrics(program: str, completion: str) -> dict[str, float]:
    """Per-sample metrics: syntax of the whole program, collapse scores of the completion."""
    return {
        "syntax_valid": float(syntax_valid(program)),
        "repeat_ngram_ratio": repeat_ngram_ratio(completion),
        "distinct_2": distinct_n([completion], 2),
        "doubled_keyword": float(bool(doubled_keywords(completion))),
    }
