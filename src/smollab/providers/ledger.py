"""Every model call's tokens and cost, and the budget checked *before* each call.

Prices come from ``prices.toml`` next to this module (dated, kept in the repo as data). A model
missing from the table, or a call whose server did not report its tokens, has an unknown cost:
``cost_usd`` is ``None`` in ``metrics.json``, never 0. For the budget an unknown-token call is
charged its worst case (the bound checked before it started), so the budget stays a hard bound.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from smollab.errors import ConfigError, SmollabError
from smollab.providers.base import Usage

PRICES_PATH = Path(__file__).with_name("prices.toml")
#: chars per token assumed for the worst case: real tokenizers average ~4 on English and code
WORST_CHARS_PER_TOKEN = 3


class BudgetExceeded(SmollabError):
    """The next call's worst case would pass ``--budget-usd``; the session state is saved."""

    exit_code = 4


@dataclass(frozen=True)
class Price:
    """USD per million tokens; cache prices default to the input price when not listed."""

    input: float
    output: float
    cache_write: float | None = None
    cache_read: float | None = None


def load_prices(path: Path = PRICES_PATH) -> tuple[str, dict[str, dict[str, Price]]]:
    """``(as_of, {provider: {model: Price}})`` from the price table."""
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    as_of = str(data.pop("as_of", "unknown"))
    table = {
        prov: {m: Price(**p) for m, p in models.items()}
        for prov, models in data.items()
        if isinstance(models, dict)
    }
    return as_of, table


def price_for(provider: str, model: str, path: Path = PRICES_PATH) -> Price | None:
    """The price of ``provider:model`` (exact id, then the longest listed prefix, then ``*``)."""
    _, table = load_prices(path)
    models = table.get(provider, {})
    if model in models:
        return models[model]
    prefixes = [m for m in models if m != "*" and model.startswith(m)]
    if prefixes:
        return models[max(prefixes, key=len)]
    return models.get("*")


def cost_of(usage: Usage, price: Price | None) -> float | None:
    """USD of one call, or None when the price or the input/output tokens are unknown.

    Cache tokens the server did not report count as 0 (a server that caches reports them)."""
    if price is None or usage.input_tokens is None or usage.output_tokens is None:
        return None
    cw = price.cache_write if price.cache_write is not None else price.input
    cr = price.cache_read if price.cache_read is not None else price.input
    return (
        usage.input_tokens * price.input
        + usage.output_tokens * price.output
        + (usage.cache_write_tokens or 0) * cw
        + (usage.cache_read_tokens or 0) * cr
    ) / 1e6


def estimate_tokens(text: str) -> int:
    """A deliberately high token count for ``text`` (for worst cases only)."""
    return math.ceil(len(text) / WORST_CHARS_PER_TOKEN) + 8


def worst_case_usd(input_chars: int, max_tokens: int, price: Price | None) -> float | None:
    """The most one call can cost: every input token at the dearest input rate (a cache write
    costs more than a plain read), plus ``max_tokens`` of output."""
    if price is None:
        return None
    rate_in = max(price.input, price.cache_write or 0.0)
    tokens_in = math.ceil(input_chars / WORST_CHARS_PER_TOKEN) + 8
    return (tokens_in * rate_in + max_tokens * price.output) / 1e6


@dataclass
class CallRecord:
    stage: str
    iteration: int
    provider: str
    model: str
    input_tokens: int | None
    output_tokens: int | None
    cache_write_tokens: int | None
    cache_read_tokens: int | None
    latency_s: float
    cost_usd: float | None
    worst_case_usd: float | None


@dataclass
class StudyRecord:
    """The API-model calls of one study an agent ran: ``cost_usd`` from the runs' own records
    when every one of them knows it, else None, in which case the budget is charged
    ``worst_case_usd``, the bound checked before the study started."""

    iteration: int
    study: str
    models: list[str]
    calls: int
    cost_usd: float | None
    worst_case_usd: float | None


class Ledger:
    """Running totals of a session's calls, restorable from ``metrics.json``.

    ``budget_spent`` is what the budget is checked against: known costs, plus the worst case
    of each call whose cost is unknown. The API-model calls of the studies an agent runs
    (``studies``) count against the same budget: :meth:`before_study` checks their bound
    before any of them is made, :meth:`record_study` charges them after.
    """

    def __init__(self, provider: str, model: str, budget_usd: float | None = None) -> None:
        self.provider = provider
        self.model = model
        self.budget_usd = budget_usd
        self.price = price_for(provider, model)
        self.calls: list[CallRecord] = []
        self.studies: list[StudyRecord] = []

    def check_budget_configured(self) -> None:
        if self.budget_usd is not None and self.price is None:
            as_of, _ = load_prices()
            raise ConfigError(
                f"--budget-usd {self.budget_usd} cannot be enforced: no price is known for "
                f"{self.provider}:{self.model} in {PRICES_PATH} (as of {as_of}). Add its price "
                "there, pick a listed model, or drop --budget-usd (local servers cost nothing)."
            )

    @property
    def budget_spent(self) -> float:
        charged = [(c.cost_usd, c.worst_case_usd) for c in self.calls]
        charged += [(s.cost_usd, s.worst_case_usd) for s in self.studies]
        return sum(cost if cost is not None else (worst or 0.0) for cost, worst in charged)

    def before_study(self, bounds: Sequence[Any], study: str) -> float:
        """Check that the worst case of a study's API calls still to make (``bounds``, one
        :class:`~smollab.eval.provider_lm.ApiBound` per API model) fits in what is left of the
        budget; return that worst case (0 when the price of a model is unknown and there is no
        budget to check). Raises :class:`BudgetExceeded` when it does not fit and ConfigError
        when a model's price is unknown under a budget; no call is made either way."""
        from smollab.eval.provider_lm import usd

        todo = [b for b in bounds if b.uncached]
        if self.budget_usd is not None:
            unknown = [b.source for b in todo if b.worst_usd is None]
            if unknown:
                raise ConfigError(
                    f"Study {study} names {', '.join(unknown)}, whose price is unknown (a model "
                    f"on a base_url server is never priced; others are listed in {PRICES_PATH}), "
                    f"so its calls cannot be kept within this session's --budget-usd "
                    f"{self.budget_usd:g}. Use local or priced models in the study."
                )
        worst = sum(b.worst_usd or 0.0 for b in todo)
        left = None if self.budget_usd is None else self.budget_usd - self.budget_spent
        if left is not None and worst > left:
            raise BudgetExceeded(
                f"Study {study} could cost up to {usd(worst)} in API calls "
                f"({'; '.join(b.describe() for b in todo)}), more than the {usd(max(left, 0.0))} "
                f"left of this session's --budget-usd {self.budget_usd:g}. No call was made.",
                hint="Evaluate fewer items or seeds with the API model, or resume the session "
                "with a larger --budget-usd.",
            )
        return worst

    def record_study(
        self,
        *,
        iteration: int,
        study: str,
        models: list[str],
        calls: int,
        cost_usd: float | None,
        worst_case_usd: float | None,
    ) -> StudyRecord:
        rec = StudyRecord(iteration, study, models, calls, cost_usd, worst_case_usd)
        self.studies.append(rec)
        return rec

    def before_call(self, input_chars: int, max_tokens: int) -> float | None:
        """Raise :class:`BudgetExceeded` if this call's worst case would pass the budget;
        return the worst case (None when the price is unknown)."""
        worst = worst_case_usd(input_chars, max_tokens, self.price)
        if self.budget_usd is not None and worst is not None:
            if self.budget_spent + worst > self.budget_usd:
                raise BudgetExceeded(
                    f"Budget reached: ${self.budget_spent:.4f} of ${self.budget_usd:.4f} spent, "
                    f"and the next call could cost up to ${worst:.4f}. The session is saved.",
                    hint="Continue with `smollab resume SESSION --budget-usd MORE`.",
                )
        return worst

    def record(
        self,
        *,
        stage: str,
        iteration: int,
        usage: Usage,
        latency_s: float,
        worst: float | None,
    ) -> CallRecord:
        rec = CallRecord(
            stage=stage,
            iteration=iteration,
            provider=self.provider,
            model=self.model,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cache_write_tokens=usage.cache_write_tokens,
            cache_read_tokens=usage.cache_read_tokens,
            latency_s=round(latency_s, 4),
            cost_usd=cost_of(usage, self.price),
            worst_case_usd=worst,
        )
        self.calls.append(rec)
        return rec

    def summary(self) -> dict[str, Any]:
        """The ``llm`` block of ``metrics.json``: totals with unknowns kept as None."""

        def total(attr: str) -> int | None:
            vals = [getattr(c, attr) for c in self.calls]
            return None if any(v is None for v in vals) else sum(vals)

        as_of, _ = load_prices()
        costs = [c.cost_usd for c in self.calls]
        known = [c for c in costs if c is not None]
        return {
            "provider": self.provider,
            "model": self.model,
            "calls": len(self.calls),
            "input_tokens": total("input_tokens"),
            "output_tokens": total("output_tokens"),
            "cache_write_tokens": total("cache_write_tokens"),
            "cache_read_tokens": total("cache_read_tokens"),
            "cost_usd": None if len(known) < len(costs) else round(sum(known), 6),
            "cost_usd_known_part": round(sum(known), 6),
            "study_api_cost_usd": self._study_cost(),
            "budget_usd": self.budget_usd,
            "budget_spent_usd": round(self.budget_spent, 6),
            "price": asdict(self.price) if self.price else None,
            "prices_as_of": as_of,
            "by_stage": self._by_stage(),
            "call_log": [asdict(c) for c in self.calls],
            "study_api_calls": [asdict(s) for s in self.studies],
        }

    def _study_cost(self) -> float | None:
        """What the studies' API calls cost (None if any cost is unknown)."""
        costs = [s.cost_usd for s in self.studies]
        return None if any(c is None for c in costs) else round(sum(c or 0.0 for c in costs), 6)

    def _by_stage(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for c in self.calls:
            s = out.setdefault(c.stage, {"calls": 0, "cost_usd": 0.0})
            s["calls"] += 1
            if s["cost_usd"] is not None:
                s["cost_usd"] = None if c.cost_usd is None else s["cost_usd"] + c.cost_usd
        return out

    def restore(self, metrics: dict[str, Any]) -> None:
        """Reload the calls of an earlier process (resume) from ``metrics.json``."""
        llm = metrics.get("llm") or {}
        for c in llm.get("call_log", []):
            self.calls.append(CallRecord(**c))
        for s in llm.get("study_api_calls", []):
            self.studies.append(StudyRecord(**s))
