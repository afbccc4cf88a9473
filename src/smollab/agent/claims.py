"""Model-written prose whose numbers are verified against the results.

The writer references results as ``{{dotted.key}}`` (printed as is, rounded to 3 significant
digits) or ``{{dotted.key|pct}}`` (a fraction printed as a percentage with one decimal). After the
references are rendered, :func:`check_claims` finds every other number in the text and checks it,
one sentence at a time, against the values that sentence can be about. The rules, all
deterministic:

1. A number equal to a *stated constant* (a number in the problem file or the study spec) passes,
   unless it is written as a percentage, or it is a decimal in [-1, 1] in a sentence that names a
   metric: that is a claimed score ("exact match of 1.0"), which only a fraction, p-value or
   setting below can be, never a seed, a layer count or a hyperparameter.
2. Otherwise it must equal a *candidate* value within the rounding of its printed digits
   (``100%`` covers [99.5, 100.5], ``0.41`` covers [0.405, 0.415]). Each numeric leaf of
   ``results.json`` has a form (:func:`values`):

   - *fraction*: a float in [-1, 1] that is a measurement (an estimate, an interval bound, a
     per-seed score, an error-type fraction, a difference). Written as a percentage or as
     points it is compared times 100 (``41.2 points`` for 0.412); written plainly, as is.
   - *p-value* (keys ``p``, ``p_value``, ``p_*``, ``*_p``, floats only): only a number preceded
     in its sentence by ``p`` (``p = 0.012``, ``p-value of``, ``$p < 0.05$``) may match it, and
     never as a percentage. ``p < X`` passes when an in-scope p-value is at most X.
   - *setting* (``level``, ``alpha``): only next to the words confidence, interval, CI, level,
     significance or alpha, or after ``p <`` (``95% intervals``, ``at the 0.05 level``).
   - *count*: an integer field or a list length (``.length``): only as a plain whole number
     (``2 seeds``; ``1.000`` is no count).
   - *number*: any other float (a loss, a step, a hyperparameter): only as a plain number.
     Floats under ``train`` or ``config`` (hyperparameters) or ``train_summary`` (losses,
     times) are never fractions.

3. Scope. A sentence *names* a condition, task or metric of the results when it contains that
   name as a word (case-insensitive, ``_`` also read as a space or hyphen, ``\\_`` as ``_``;
   names of one character are ignored). A value belongs to the conditions and tasks on its key
   path (``conditions.ft.tasks.add...``; a comparison entry belongs to its ``condition`` and
   ``task``, not to the baseline or reference it is set against) and to the metric whose key it
   sits under (``exact_match``, ``exact_match_per_seed``; a comparison's difference and
   p-values to its ``metric`` or its task's score). Then:

   - when the sentence names conditions, a value of another condition is no candidate
     (study-wide values, which belong to no condition, stay candidates); likewise tasks;
   - when the sentence names metrics, a fraction or p-value of no named metric is no candidate
     (counts, settings and other numbers stay).

   So "ft reached 100% exact match" passes only if an exact-match fraction of ``ft`` (or a
   comparison involving ``ft``) rounds to 100%, not because some p-value is 1.0.

Anything that fails is returned as a list of problems for the writer to fix; references
(``{{key}}``) are only checked to exist, their values being the results' own.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

#: what is left of a ``{{...}}`` after the references are rendered: a malformed one
LEFTOVER_REF = re.compile(r"\{\{[^{}\n]*\}\}")
REF = re.compile(r"\{\{\s*([A-Za-z0-9_.\-/]+)\s*(?:\|\s*(pct|num|int)\s*)?\}\}")
# a number not glued to a word: "1x1" and "gpt2" are names, not claims
NUMBER = re.compile(r"(?<![\w.])[-+]?\d+(?:,\d{3})*(?:\.\d+)?(?![\w])(\s*(?:\\?%|percent))?")
# a sentence ends at . ! or ? before white space, or at a blank line
SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n\s*\n")

LEVEL_KEYS = {"level", "alpha", "confidence"}
NOT_FRACTION_SEGMENTS = {"train", "config", "train_summary"}
P_KEY = re.compile(r"^(?:p|pvalue|p_.*|.*_p)$")
P_BEFORE = re.compile(r"(?<![A-Za-z])p(?![A-Za-z])", re.I)
P_BELOW = re.compile(r"(?<![A-Za-z])p\s*\$?\s*(?:<|\\le(?:q)?\b|≤)\s*\$?\s*$", re.I)
LEVEL_WORDS = re.compile(
    r"confidence|interval|\bCI\b|level|significan|alpha|α"
    r"|(?<![A-Za-z])p\s*\$?\s*(?:<|\\le|≤)",
    re.I,
)
WINDOW = 30


def flatten(obj: Any, prefix: str = "") -> dict[str, float]:
    """Numeric leaves of ``obj`` by dotted key (list items by index, ``.length`` for lengths)."""
    return {v.key: v.value for v in _walk(obj, prefix, _Tags(), {})}


def fmt_value(v: float, style: str | None) -> str:
    if style == "pct":
        return f"{v * 100:.1f}\\%"
    if style == "int" or (v.is_integer() and abs(v) < 1e9):
        return str(int(round(v)))
    return f"{v:.3g}"


@dataclass(frozen=True)
class Value:
    """One numeric leaf of the results with what it is about (see the module docstring)."""

    key: str
    value: float
    form: str  # fraction | p | setting | count | number
    conditions: frozenset[str] = frozenset()
    tasks: frozenset[str] = frozenset()
    metrics: frozenset[str] = frozenset()


@dataclass(frozen=True)
class _Tags:
    conditions: frozenset[str] = frozenset()
    tasks: frozenset[str] = frozenset()
    metrics: frozenset[str] = frozenset()
    not_fraction: bool = False

    def add(self, **kw: Any) -> _Tags:
        return _Tags(
            self.conditions | kw.get("conditions", frozenset()),
            self.tasks | kw.get("tasks", frozenset()),
            self.metrics | kw.get("metrics", frozenset()),
            self.not_fraction or kw.get("not_fraction", False),
        )


@dataclass(frozen=True)
class _Names:
    conditions: frozenset[str]
    tasks: frozenset[str]
    metrics: frozenset[str]
    score: dict[str, str]


def _names(results: dict[str, Any]) -> _Names:
    conds = results.get("conditions")
    tasks = results.get("tasks")
    cond_names = frozenset(conds) if isinstance(conds, dict) else frozenset()
    task_names = frozenset(tasks) if isinstance(tasks, dict) else frozenset()
    metrics: set[str] = set()
    score: dict[str, str] = {}
    for t, spec in (tasks or {}).items() if isinstance(tasks, dict) else []:
        if not isinstance(spec, dict):
            continue
        ms = [m for m in spec.get("metrics") or [] if isinstance(m, str)]
        metrics.update(ms)
        s = spec.get("score") if isinstance(spec.get("score"), str) else (ms[0] if ms else None)
        if s:
            metrics.add(s)
            score[t] = s
    for c in results.get("comparisons") or []:
        if isinstance(c, dict) and isinstance(c.get("metric"), str):
            metrics.add(c["metric"])
    return _Names(cond_names, task_names, frozenset(metrics), score)


def _form(key: str, value: Any, tags: _Tags) -> str:
    if isinstance(value, int):
        return "count"
    leaf = next((s for s in reversed(key.split(".")) if not s.isdigit()), "")
    if leaf in LEVEL_KEYS:
        return "setting"
    if P_KEY.match(leaf):
        return "p"
    if not tags.not_fraction and leaf != "statistic" and -1.0 <= value <= 1.0:
        return "fraction"
    return "number"


def _walk(obj: Any, prefix: str, tags: _Tags, names: Any) -> list[Value]:
    """Numeric leaves with their tags; ``names`` is a :class:`_Names` (or ``{}`` for keys only)."""
    out: list[Value] = []
    if isinstance(obj, bool) or obj is None:
        return out
    if isinstance(obj, int | float):
        if not (isinstance(obj, float) and (math.isnan(obj) or math.isinf(obj))):
            form = _form(prefix, obj, tags)
            out.append(Value(prefix, float(obj), form, tags.conditions, tags.tasks, tags.metrics))
        return out
    parent = prefix.rsplit(".", 1)[-1] if prefix else ""
    if isinstance(obj, dict):
        here = tags
        if isinstance(names, _Names):
            # a comparison belongs to its condition, not to the baseline it is set against
            cond = obj.get("condition")
            conds = (
                frozenset([cond])
                if isinstance(cond, str) and cond in names.conditions
                else frozenset()
            )
            task = obj.get("task")
            if isinstance(task, str) and task in names.tasks:
                metric = obj.get("metric")
                m = metric if isinstance(metric, str) else names.score.get(task)
                here = here.add(tasks=frozenset([task]), metrics=frozenset([m] if m else []))
            here = here.add(conditions=conds)
        for k, v in obj.items():
            k = str(k)
            sub = here
            if isinstance(names, _Names):
                if parent in ("conditions", "curves") and k in names.conditions:
                    sub = sub.add(conditions=frozenset([k]))
                if parent == "tasks" and k in names.tasks:
                    sub = sub.add(tasks=frozenset([k]))
                head = k.split("/", 1)[0]
                if "/" in k and head in names.tasks:  # curve columns: "add/1x1"
                    m = names.score.get(head)
                    sub = sub.add(tasks=frozenset([head]), metrics=frozenset([m] if m else []))
                for m in names.metrics:
                    if k == m or k.startswith(m + "_"):
                        sub = sub.add(metrics=frozenset([m]))
                if k in NOT_FRACTION_SEGMENTS:
                    sub = sub.add(not_fraction=True)
            out += _walk(v, f"{prefix}.{k}" if prefix else k, sub, names)
    elif isinstance(obj, list):
        out.append(Value(f"{prefix}.length", float(len(obj)), "count", *_tag_sets(tags)))
        for i, v in enumerate(obj):
            out += _walk(v, f"{prefix}.{i}", tags, names)
    return out


def _tag_sets(t: _Tags) -> tuple[frozenset[str], frozenset[str], frozenset[str]]:
    return t.conditions, t.tasks, t.metrics


def values(results: dict[str, Any]) -> list[Value]:
    """Every numeric leaf of ``results`` with its form and what it is about."""
    return _walk(results, "", _Tags(), _names(results))


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


def _variants(name: str) -> list[str]:
    base = name.lower()
    return sorted({base, base.replace("_", " "), base.replace("_", "-")})


def _named(sentence: str, names: frozenset[str]) -> frozenset[str]:
    text = sentence.replace("\\_", "_").lower()
    found = set()
    for n in names:
        if len(n) < 2:
            continue
        for v in _variants(n):
            if re.search(r"(?<![a-z0-9])" + re.escape(v) + r"(?![a-z0-9])", text):
                found.add(n)
                break
    return frozenset(found)


@dataclass(frozen=True)
class _Scope:
    conditions: frozenset[str]
    tasks: frozenset[str]
    metrics: frozenset[str]

    def admits(self, v: Value) -> bool:
        if self.conditions and v.conditions and not (v.conditions & self.conditions):
            return False
        if self.tasks and v.tasks and not (v.tasks & self.tasks):
            return False
        if self.metrics and v.form in ("fraction", "p") and not (v.metrics & self.metrics):
            return False
        return True

    def describe(self) -> str:
        parts = [
            f"{what} {', '.join(sorted(names))}"
            for what, names in (
                ("condition", self.conditions),
                ("task", self.tasks),
                ("metric", self.metrics),
            )
            if names
        ]
        return " and ".join(parts)


def _close(x: float, v: float, tol: float) -> bool:
    return abs(x - v) <= tol


def _fits(x: float, decimals: int, is_pct: bool, v: Value, before: str, around: str) -> bool:
    """Whether the printed number ``x`` can be the value ``v`` (form and context rules)."""
    tol = 0.5 * 10**-decimals + 1e-9
    if v.form == "p":
        if is_pct or not P_BEFORE.search(before):
            return False
        return _close(x, v.value, tol) or (bool(P_BELOW.search(before)) and v.value <= x + tol)
    if v.form == "setting":
        if not LEVEL_WORDS.search(around):
            return False
        return _close(x, v.value * 100 if is_pct else v.value, tol) or (
            not is_pct and _close(x, v.value * 100, tol)
        )
    if v.form == "count":
        return not is_pct and decimals == 0 and x == v.value
    if v.form == "fraction":
        return _close(x, v.value * 100, tol) or (not is_pct and _close(x, v.value, tol))
    return not is_pct and _close(x, v.value, tol)


def check_claims(prose: str, results: dict[str, Any], constants: set[float]) -> ClaimReport:
    """Render ``{{key}}`` references and verify every other number (see module docstring)."""
    all_values = values(results)
    flat = {v.key: v.value for v in all_values}
    names = _names(results)
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
    # a reference REF does not match (an unknown filter, a space in the key) would reach the
    # paper as template text; the writer is sent back to fix it
    for m in LEFTOVER_REF.finditer(rendered):
        problems.append(
            f"{m.group(0)} is not a reference: write {{{{key}}}} or {{{{key|pct}}}} (filters: "
            "pct, num, int) with a key of results.json"
        )
    scan = re.sub(r"\x00[^\x01]*\x01", " ", rendered)
    n = 0
    for sentence in SENTENCE_END.split(scan):
        scope = _Scope(
            _named(sentence, names.conditions),
            _named(sentence, names.tasks),
            _named(sentence, names.metrics),
        )
        for m in NUMBER.finditer(sentence):
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
            # a decimal fraction in a sentence about a metric is a claimed score, even when
            # the same number is stated somewhere (``1.0`` as a seed or a layer count)
            claimed_score = bool(scope.metrics) and decimals > 0 and abs(x) <= 1
            if not is_pct and not claimed_score and x in constants:
                continue
            before = sentence[max(0, m.start() - WINDOW) : m.start()]
            around = before + sentence[m.end() : m.end() + WINDOW]
            fitting = [
                v
                for v in all_values
                if _fits(x, decimals, is_pct, v, before, around)
                and not (claimed_score and v.form in ("count", "number"))
            ]
            if any(scope.admits(v) for v in fitting):
                continue
            problems.append(_problem(raw.strip(), sentence, scope, fitting, is_pct))
    final = rendered.replace("\x00", "").replace("\x01", "")
    return ClaimReport(final, problems, refs, n)


def _problem(raw: str, sentence: str, scope: _Scope, fitting: list[Value], is_pct: bool) -> str:
    quote = " ".join(sentence.split())
    quote = quote if len(quote) <= 160 else quote[:157] + "..."
    if fitting:
        return (
            f"the number {raw!r} is not a value of what its sentence names "
            f"({scope.describe()}): {quote!r}. Cite it as a {{{{key}}}} reference to a value "
            "of that condition, task or metric, or name what it is a value of"
        )
    kind = (
        " (a percentage must be an estimate, interval bound or fraction in results, "
        "not a p-value, a count or a setting)"
        if is_pct
        else ""
    )
    return f"the number {raw!r} is neither a result value nor a stated constant{kind}: {quote!r}"
