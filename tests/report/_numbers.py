"""Helpers that check a paper's numbers against numbers.json and results.json."""

from __future__ import annotations

import math
import re
from typing import Any

NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")
PERCENT_FORMATS = {"pct", "pct_bare", "pct0", "pp"}

# commands whose arguments are names, references, paths or layout, not claims
_STRIP_ARG = ("freetext", "texttt", "label", "ref", "includegraphics", "multicolumn", "cmidrule",
              "begin", "end", "resizebox", "setlength", "graphicspath")  # fmt: skip
_LENGTH = re.compile(r"\d+(?:\.\d+)?\s*(?:pt|mm|cm|in|em|ex)\b|\d*\.?\d+\\(?:line|text)width")


def _skip_group(text: str, i: int) -> int:
    """Index after the balanced {...} or [...] or (...) group starting at ``text[i]``."""
    close = {"{": "}", "[": "]", "(": ")"}[text[i]]
    depth, j = 0, i
    while j < len(text):
        c = text[j]
        if c == "\\":
            j += 2
            continue
        if c == text[i]:
            depth += 1
        elif c == close:
            depth -= 1
            if depth == 0:
                return j + 1
        j += 1
    raise ValueError(f"unbalanced group at {i}")


def strip_non_claims(tex: str) -> str:
    """The document body minus names (texttt), verbatim free text, refs and lengths."""
    body = tex.split(r"\begin{document}", 1)[1].split(r"\end{document}", 1)[0]
    out, i = [], 0
    cmd = re.compile(r"\\(" + "|".join(_STRIP_ARG) + r")\*?(?![a-zA-Z])")
    while True:
        m = cmd.search(body, i)
        if not m:
            out.append(body[i:])
            break
        out.append(body[i : m.start()])
        j = m.end()
        while j < len(body) and body[j] in "{[(":  # all argument groups of the command
            j = _skip_group(body, j)
        i = j
    # a printed sign is \ensuremath{-} (smollab.report.render); read it back as "-"
    return _LENGTH.sub(" ", "".join(out)).replace(r"\ensuremath{-}", "-")


def printed_numbers(tex: str) -> list[str]:
    return NUMBER.findall(strip_non_claims(tex))


def consistent(entry: dict[str, Any]) -> bool:
    """Does the printed text match the raw value within the rounding of the text?"""
    text, value, fmt = entry["text"], entry["value"], entry["format"]
    if value is None:
        return "n/a" in text
    tokens = NUMBER.findall(text)
    if len(tokens) != 1:
        return False
    shown = float(tokens[0])
    if text.startswith("p <"):
        return value < shown
    scale = 100.0 if fmt in PERCENT_FORMATS else 1.0
    if fmt == "params":
        scale = {"K": 1e-3, "M": 1e-6, "B": 1e-9}[text[-1]]
    decimals = len(tokens[0].split(".")[1]) if "." in tokens[0] else 0
    return abs(shown - value * scale) <= 0.5 * 10**-decimals + 1e-9


def resolve(results: dict[str, Any], key: str) -> Any:
    """Follow a dotted numbers.json key into results.json (``.length`` = list length)."""
    node: Any = results
    for part in key.split("."):
        if part == "length" and isinstance(node, list):
            return len(node)
        node = node[int(part)] if isinstance(node, list) else node[part]
    return node


def same_value(a: Any, b: Any) -> bool:
    if a is None or (isinstance(a, float) and math.isnan(a)):
        return b is None or (isinstance(b, float) and math.isnan(b))
    return b is not None and math.isclose(float(a), float(b), rel_tol=1e-12, abs_tol=0)


def stray_numbers(tex: str, numbers: dict[str, Any]) -> list[str]:
    """Numbers printed in the paper body that are not printed values in numbers.json."""
    allowed = {tok for e in numbers.values() for tok in NUMBER.findall(e["text"])}
    return sorted({n for n in printed_numbers(tex) if n not in allowed})
