"""Prices, costs with unknowns, worst cases and the budget check."""

from __future__ import annotations

import pytest

from smollab.errors import ConfigError
from smollab.providers.base import Usage
from smollab.providers.ledger import (
    BudgetExceeded,
    Ledger,
    Price,
    cost_of,
    load_prices,
    price_for,
    worst_case_usd,
)


def test_price_table_is_dated_and_complete() -> None:
    as_of, table = load_prices()
    assert "2026" in as_of and "anthropic" in table and "openai" in table
    p = price_for("anthropic", "claude-sonnet-4-5")
    assert p and p.cache_read < p.input < p.cache_write
    # a dated snapshot id resolves to its family by prefix
    assert price_for("anthropic", "claude-sonnet-4-5-20250929") == p
    assert price_for("openai", "some-local-model") is None


def test_cost_with_cache_tokens() -> None:
    p = Price(input=3.0, output=15.0, cache_write=3.75, cache_read=0.30)
    u = Usage(input_tokens=1000, output_tokens=100, cache_write_tokens=2000, cache_read_tokens=0)
    assert cost_of(u, p) == pytest.approx((3000 + 1500 + 7500) / 1e6)


def test_unknown_is_none_not_zero() -> None:
    p = Price(input=1.0, output=1.0)
    assert cost_of(Usage(input_tokens=None, output_tokens=5), p) is None
    assert cost_of(Usage(input_tokens=5, output_tokens=5), None) is None
    led = Ledger("openai", "my-local-model")
    led.record(stage="plan", iteration=1, usage=Usage(10, 5), latency_s=0.1, worst=None)
    s = led.summary()
    assert s["cost_usd"] is None and s["price"] is None and s["input_tokens"] == 10
    led.record(stage="plan", iteration=1, usage=Usage(None, None), latency_s=0.1, worst=None)
    assert led.summary()["input_tokens"] is None


def test_worst_case_bounds_real_cost() -> None:
    p = price_for("anthropic", "claude-sonnet-4-5")
    text = "hello world, " * 1000
    worst = worst_case_usd(len(text), 500, p)
    # a real tokenizer gives ~len/4 tokens; even all of them as cache writes cost less
    real = cost_of(Usage(0, 500, cache_write_tokens=len(text) // 4, cache_read_tokens=0), p)
    assert worst is not None and real is not None and worst > real


def test_budget_refuses_before_the_call() -> None:
    led = Ledger("anthropic", "claude-sonnet-4-5", budget_usd=0.005)
    # the budget is shown as given, not rounded to $0.01 (or a budget under a cent to $0.00)
    with pytest.raises(BudgetExceeded, match=r"Budget reached: \$0\.0000 of \$0\.0050 spent"):
        led.before_call(40_000, 2000)
    assert led.calls == []
    assert led.before_call(100, 10) is not None


def test_unknown_cost_charged_at_worst_case() -> None:
    led = Ledger("anthropic", "claude-sonnet-4-5", budget_usd=1.0)
    led.record(stage="act", iteration=1, usage=Usage(None, None), latency_s=0, worst=0.4)
    assert led.budget_spent == pytest.approx(0.4) and led.summary()["cost_usd"] is None


def test_budget_needs_a_price() -> None:
    with pytest.raises(ConfigError, match="cannot be enforced"):
        Ledger("openai", "unpriced-model", budget_usd=1.0).check_budget_configured()


def test_restore_from_metrics() -> None:
    led = Ledger("anthropic", "claude-sonnet-4-5")
    led.record(stage="plan", iteration=1, usage=Usage(100, 10, 0, 0), latency_s=1, worst=0.1)
    again = Ledger("anthropic", "claude-sonnet-4-5")
    again.restore({"llm": led.summary()})
    assert again.summary()["cost_usd"] == led.summary()["cost_usd"]
