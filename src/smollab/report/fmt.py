"""How numbers are printed: the one place that turns a float into text.

Every formatter returns ``"n/a"`` for ``None``/``nan``/``inf`` so a missing value never prints
as ``nan%``. Percent values are fractions in [0, 1] (``0.635`` -> ``"63.5%"``).
"""

from __future__ import annotations

import math
from typing import Any

NA = "n/a"


def is_missing(x: Any) -> bool:
    """True for ``None``, non-numbers, ``nan`` and ``inf``."""
    if x is None or isinstance(x, bool):
        return True
    try:
        return not math.isfinite(float(x))
    except (TypeError, ValueError):
        return True


def pct(x: Any, digits: int = 1) -> str:
    """A fraction as a percent with a sign: ``0.635`` -> ``"63.5%"``."""
    return NA if is_missing(x) else f"{100 * float(x):.{digits}f}%"


def pct_bare(x: Any, digits: int = 1) -> str:
    """A fraction as a percent without the sign (interval bounds): ``0.562`` -> ``"56.2"``."""
    return NA if is_missing(x) else f"{100 * float(x):.{digits}f}"


def pp(x: Any, digits: int = 1) -> str:
    """A difference of fractions in percentage points, signed: ``0.55`` -> ``"+55.0 pp"``."""
    return NA if is_missing(x) else f"{100 * float(x):+.{digits}f} pp"


def pvalue(p: Any) -> str:
    """``"p = 0.003"``, ``"p < 0.001"``; ``"p = n/a"`` when missing."""
    if is_missing(p):
        return f"p = {NA}"
    return "p < 0.001" if float(p) < 0.001 else f"p = {float(p):.3f}"


def count(n: Any) -> str:
    """An integer count, no grouping separators (they confuse number checkers)."""
    return NA if is_missing(n) else str(int(round(float(n))))


def params(n: Any) -> str:
    """A parameter count: ``134515008`` -> ``"134.5M"``, ``1.2e9`` -> ``"1.2B"``."""
    if is_missing(n):
        return NA
    n = float(n)
    for scale, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if n >= scale:
            return f"{n / scale:.1f}{suffix}"
    return str(int(n))


def num(x: Any, digits: int = 3) -> str:
    """A plain float with ``digits`` decimals (losses): ``0.41234`` -> ``"0.412"``."""
    return NA if is_missing(x) else f"{float(x):.{digits}f}"


def short(x: Any) -> str:
    """A hyperparameter as written in a config: ``0.0003`` -> ``"0.0003"``, ``300`` -> ``"300"``."""
    if is_missing(x):
        return NA
    x = float(x)
    return str(int(x)) if x.is_integer() else f"{x:g}"


def seconds(x: Any) -> str:
    """A duration: ``412.3`` -> ``"412 s"``."""
    return NA if is_missing(x) else f"{float(x):.0f} s"


def rate(x: Any) -> str:
    """A throughput: ``1987.4`` -> ``"1987"``."""
    return NA if is_missing(x) else f"{float(x):.0f}"


def signed(x: Any) -> str:
    """A signed whole number (a difference of steps): ``-175.0`` -> ``"-175"``."""
    return NA if is_missing(x) else f"{float(x):+.0f}"


def ratio(x: Any) -> str:
    """A ratio with two decimals and a times sign: ``0.5432`` -> ``"0.54x"``."""
    return NA if is_missing(x) else f"{float(x):.2f}x"


def sig(x: Any) -> str:
    """A metric on its own scale with 4 significant digits (perplexity, bits per byte):
    ``11.7071`` -> ``"11.71"``, ``3.54786`` -> ``"3.548"``; from 10^4 on, whole numbers
    (``350044.6`` -> ``"350045"``), never an exponent."""
    if is_missing(x):
        return NA
    x = float(x)
    return f"{x:.0f}" if abs(x) >= 1e4 else f"{x:.4g}"


def sig2(x: Any) -> str:
    """A spread (a standard deviation over seeds) with 2 significant digits, trailing zeros
    kept: ``0.004004`` -> ``"0.0040"``, ``0.01043`` -> ``"0.010"``; from 10 on, whole
    numbers (``12.34`` -> ``"12"``)."""
    if is_missing(x):
        return NA
    x = float(x)
    return f"{x:.0f}" if abs(x) >= 10 else f"{x:#.2g}".rstrip(".")  # 9.96 -> "10."


def signed4(x: Any) -> str:
    """A small signed difference with 4 decimals (bits per byte): ``-0.12345`` -> ``"-0.1235"``."""
    return NA if is_missing(x) else f"{float(x):+.4f}"


#: Formatter by name, as used by :class:`smollab.report.context.Num`.
FORMATTERS = {
    "pct": pct,
    "pct_bare": pct_bare,
    "pp": pp,
    "pct0": lambda x: pct(x, 0),
    "p": pvalue,
    "count": count,
    "params": params,
    "num": num,
    "short": short,
    "seconds": seconds,
    "rate": rate,
    "signed": signed,
    "ratio": ratio,
    "sig": sig,
    "sig2": sig2,
    "signed4": signed4,
}


def score_label(task_spec: dict[str, Any]) -> str:
    """What a task's ``exact_match`` entries hold, in words: "exact match" for generated answers,
    a benchmark's own primary metric otherwise (hellaswag's "acc", humaneval's "pass@1")."""
    score = task_spec.get("score") or "exact_match"
    return "exact match" if score == "exact_match" else score.replace("_", "-")


def score_title(task_spec: dict[str, Any]) -> str:
    """:func:`score_label` at the start of a sentence or a heading: "Exact match", but a
    benchmark's metric keeps its own spelling ("acc", "pass@1")."""
    score = score_label(task_spec)
    return "Exact match" if score == "exact match" else score
