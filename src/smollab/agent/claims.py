"""Model-written prose whose numbers are verified against the results.

The writer references results as ``{{dotted.key}}`` (printed as is, rounded to 3 significant
digits) or ``{{dotted.key|pct}}`` (a fraction printed as a percentage with one decimal). After the
references are rendered, :func:`check_claims` finds every other number in the text; each must be
a result value (within the rounding of its printed digits, as a fraction or as a percentage) or a
stated constant (a number that appears in the problem file or the study spec). Anything else is
returned as a list of problems for the writer to fix.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

REF = re.compile(r"\{\{\s*([A-Za-z0-9_.\-/]+)\s*(?:\|\s*(pct|num|int)\s*)?\}\}")
# a number not glued to a word: "1x1" and "gpt2" are names, not claims
NUMBER = re.compile(r"(?<![\w.])[-+]?\d+(?:,\d{3})*(?:\.\d+)?(?![\w])(\s*(?:\\?%|percent))?")


def flatten(obj: Any, prefix: str = "") -> dict[str, float]:
    """Numeric leaves of ``obj`` by dotted key (list items by index, ``.length`` for lengths)."""
    out: dict[str, float] = {}
    if isinstance(obj, bool):
        return out
    if isinstance(obj, int | float):
        if not (isinstance(obj, float) and math.isnan(obj)):
            out[prefix] = float(obj)
    elif isinstance(obj, dict):
        for k, v in obj.items():
            out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
    elif isinstance(obj, list):
        out[f"{prefix}.length"] = float(len(obj))
        for i, v in enumerate(obj):
            out.update(flatten(v, f"{prefix}.{i}"))
    return out


def fmt_value(v: float, style: str | None) -> str:
    if style == "pct":
        return f"{v * 100:.1f}\\%"
    if style == "int" or (v.is_integer() and abs(v) < 1e9):
        return str(int(round(v)))
    return f"{v:.3g}"


@dataclass
class ClaimReport:
    rendered: str
    problems: list[str] = field(default_factory=list)
    references: list[str] = field(default_factory=list)
    numbers_checked: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems


def stated_constants(*texts: str) -> set[float]:
    vals: set[float] = set()
    for t in texts:
        for m in re.finditer(r"(?<![\w.])\d+(?:\.\d+)?(?:[eE][-+]?\d+)?", t):
            try:
                vals.add(float(m.group(0)))
            except ValueError:
                pass
    return vals


def _matches(x: float, decimals: int, is_pct: bool, values: list[float]) -> bool:
    tol = 0.5 * 10**-decimals + 1e-9
    for v in values:
        if is_pct:
            if abs(x - v * 100) <= tol:
                return True
        elif abs(x - v) <= tol or abs(x - v * 100) <= tol:
            return True
    return False


def check_claims(prose: str, results: dict[str, Any], constants: set[float]) -> ClaimReport:
    """Render ``{{key}}`` references and verify every other number (see module docstring)."""
    flat = flatten(results)
    problems: list[str] = []
    refs: list[str] = []

    def render(m: re.Match[str]) -> str:
        key, style = m.group(1), m.group(2)
        if key not in flat:
            close = [k for k in flat if k.endswith(key.split(".")[-1])][:3]
            problems.append(
                f"reference {{{{{key}}}}} is not a key of results.json"
                + (f" (did you mean {', '.join(close)}?)" if close else "")
            )
            return "??"
        refs.append(key)
        # rendered values are marked so the number scan below skips them
        return "\x00" + fmt_value(flat[key], style) + "\x01"

    rendered = REF.sub(render, prose)
    scan = re.sub(r"\x00[^\x01]*\x01", " ", rendered)
    values = list(flat.values())
    n = 0
    for m in NUMBER.finditer(scan):
        n += 1
        raw = m.group(0)
        num_text = re.sub(r"[^\d.\-+]", "", raw.split("%")[0].replace("percent", ""))
        num_text = num_text.replace(",", "")
        try:
            x = float(num_text)
        except ValueError:
            continue
        decimals = len(num_text.split(".")[1]) if "." in num_text else 0
        is_pct = bool(m.group(1))
        if not is_pct and x in constants:
            continue
        if _matches(x, decimals, is_pct, values):
            continue
        problems.append(
            f"the number {raw.strip()!r} is neither a result value nor a stated constant"
        )
    final = rendered.replace("\x00", "").replace("\x01", "")
    return ClaimReport(final, problems, refs, n)
