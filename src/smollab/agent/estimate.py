"""``smollab estimate``: what a session will cost, before anything is spent.

The estimate counts the real prompt sizes (system prompt, API reference, problem, code summary)
and the calls a session makes per iteration, and prices them from the dated price table, with
and without prompt caching. The cached prefix is written once (at the cache-write price) and
read by every later call (at the cache-read price, a tenth of the input price on Anthropic).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from smollab.agent.context import CHARS_PER_TOKEN, context_block, summarize_code
from smollab.agent.loop import MAX_TOKENS, prompt
from smollab.providers.ledger import Price, load_prices, price_for
from smollab.study.problem import Problem

#: calls per iteration: plan 1, act 3 (write spec, run, confirm), critique 1, decide 1
CALLS_PER_ITERATION = {"plan": 1, "act": 3, "critique": 1, "decide": 1}
#: write-up: prose + one claim fix
WRITE_CALLS = 2
#: the per-call part that is not cached: stage prompt, state brief, tool results
DYNAMIC_TOKENS = 2500
#: output actually produced, as a share of max_tokens
OUTPUT_SHARE = 0.5


@dataclass
class Estimate:
    provider: str
    model: str
    price: Price | None
    prices_as_of: str
    prefix_tokens: int
    calls: int
    cost_cached: float | None
    cost_uncached: float | None
    iterations: int


def estimate(
    problem: Problem, provider: str, model: str, iterations: int, code_dir: Path | None = None
) -> Estimate:
    code = summarize_code(code_dir) if code_dir else None
    prefix_chars = len(prompt("system")) + len(context_block(problem.text, code))
    prefix = prefix_chars // CHARS_PER_TOKEN + 1200  # + tool schemas
    per_stage = [(s, n) for s, n in CALLS_PER_ITERATION.items() for _ in range(iterations)]
    per_stage += [("write", WRITE_CALLS)]
    calls = sum(n for _, n in per_stage)
    out_tokens = sum(n * MAX_TOKENS[s] * OUTPUT_SHARE for s, n in per_stage)
    price = price_for(provider, model)
    as_of, _ = load_prices()
    if price is None:
        return Estimate(provider, model, None, as_of, prefix, calls, None, None, iterations)
    dyn = calls * DYNAMIC_TOKENS
    uncached = ((prefix * calls + dyn) * price.input + out_tokens * price.output) / 1e6
    cw = price.cache_write if price.cache_write is not None else price.input
    cr = price.cache_read if price.cache_read is not None else price.input
    cached = (
        prefix * cw + prefix * (calls - 1) * cr + dyn * price.input + out_tokens * price.output
    ) / 1e6
    return Estimate(provider, model, price, as_of, prefix, calls, cached, uncached, iterations)
