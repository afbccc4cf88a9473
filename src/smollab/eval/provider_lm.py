"""The LM interface through an API model (``smollab eval --model openai:MODEL --task ...``).

Model sources ``anthropic:MODEL`` and ``openai:MODEL`` (with ``--base-url``, any
OpenAI-compatible server: vLLM, Ollama, llama.cpp) evaluate through the providers of
:mod:`smollab.providers`. Only ``generate`` exists here: chat APIs do not return the
log-probability of a continuation they did not write, so tasks built on ``loglikelihood``
(hellaswag, hellaswag_nanogpt, arith_probe) are refused before any call
(:func:`check_tasks`).

The contract of ``generate`` for an API model: each request is one call with the prompt as the
only user message and no system prompt, ``max_tokens`` and ``temperature`` as the request asks
(0 for the greedy tasks), and the reply cut before the first stop string (cut here, since APIs
cap how many stop strings they take). A prompt written for completion (the few-shot
``Question: ... Answer:`` of ``gsm8k``, a code prompt) is therefore answered as a chat message,
not continued: ``gsm8k_chat``, ``humaneval_chat`` and ``mbpp_chat`` are the variants written for
chat models (the code tasks score the reply's fenced code); the completion variants score the
reply as a continuation of the prompt, as they define. The Anthropic Messages API (SDK 2.x)
takes no temperature, so its replies are sampled as the server decides and a repeated run may
differ; the results file says which (``model_info.temperature``). Calls run ``concurrency`` at
a time; results go through the same request cache as local models (keyed by provider, model and
server), and token usage and, where ``providers/prices.toml`` knows the model, cost are
totalled.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from smollab.errors import ConfigError
from smollab.eval.generate import _cut
from smollab.eval.lm import RequestCache, cached_requests
from smollab.sources import API_SCHEMES, is_api_source  # noqa: F401  (re-exported here)
from smollab.tasks.requests import GenerateRequest, Loglikelihood, LoglikelihoodRequest

#: calls in flight when ``smollab eval`` is not given ``--batch-size`` (low enough for the
#: rate limits of a new API key)
API_CONCURRENCY = 8


def check_tasks(source: str, tasks: Sequence[Any]) -> None:
    """Refuse loglikelihood tasks for an API model, naming them and the tasks that work."""
    bad = [t.name for t in tasks if t.request_type != "generate"]
    if bad:
        from smollab.eval.exact_match import FILE_TASKS, is_exact_match
        from smollab.eval.harness import bench_task_names, eval_task_names, make_task

        ok = [n for n in bench_task_names() if make_task(n).request_type == "generate"]
        # the exact-match families generate too (arith.add, arith.mul; the text task's file)
        ok += [n for n in eval_task_names() if is_exact_match(n)]
        ok += [f"{n}:PATH" for n in FILE_TASKS if n != "corpus"]  # corpus: perplexity
        raise ConfigError(
            f"Task(s) {', '.join(bad)} score the log-probability of given continuations, which "
            f"the API behind {source!r} does not return. Evaluate them with a local model "
            f"(e.g. --model smollm2-135m); with an API model use generation tasks: "
            f"{', '.join(ok)}."
        )


class ProviderLM:
    """``generate`` through a :class:`~smollab.providers.Provider` (see the module docstring)."""

    def __init__(
        self,
        provider: Any,
        *,
        concurrency: int = API_CONCURRENCY,
        cache: RequestCache | None = None,
        base_url: str | None = None,
    ) -> None:
        self.provider = provider
        self.source = f"{provider.name}:{provider.model}"
        self.base_url = base_url
        self.batch_size = concurrency  # the runner writes results every 2 batches
        self.cache = cache
        target = ApiTarget.of(self.source, base_url, cache)
        self.model_key = target.model_key
        self.max_length = None
        self.price = target.price
        self._lock = threading.Lock()
        self.calls = 0
        self.usage: dict[str, int | None] = {"input_tokens": 0, "output_tokens": 0}

    @property
    def info(self) -> dict[str, Any]:
        """What the results file records about the model and what its calls cost."""
        from smollab.providers.base import Usage
        from smollab.providers.ledger import cost_of

        cost = cost_of(Usage(**self.usage), self.price) if self.calls else 0.0
        return {
            "api": self.provider.name,
            "model": self.provider.model,
            "base_url": self.base_url,
            "prompting": "each prompt is the single user message; no system prompt; reply cut "
            "at the stop strings",
            "temperature": "as the task asks (0: greedy)"
            if getattr(self.provider, "supports_temperature", False)
            else "the server's default (this API takes none)",
            "calls": self.calls,
            **self.usage,
            "cost_usd": None if cost is None else round(cost, 6),
        }

    def loglikelihood(
        self,
        requests: Sequence[LoglikelihoodRequest],
        progress: Callable[[int], None] | None = None,
    ) -> list[Loglikelihood]:
        raise ConfigError(
            f"{self.source} cannot score log-likelihoods (the API does not return them); "
            "evaluate loglikelihood tasks with a local model."
        )

    def generate(
        self,
        requests: Sequence[GenerateRequest],
        progress: Callable[[int], None] | None = None,
    ) -> list[str]:
        """One reply per request, in request order."""
        return cached_requests(
            self.cache,
            self.model_key,
            requests,
            self._generate,
            None,
            progress,
            compute_stores=True,  # each reply is stored as it arrives (_one_cached)
        )

    def truncated(self, request: GenerateRequest) -> bool:
        return False  # nothing is cut here; a prompt too long for the API is its error

    def render(self, request: GenerateRequest) -> str:
        return request.prompt

    def _generate(self, requests: list[GenerateRequest], progress: Any) -> list[str]:
        with ThreadPoolExecutor(max(1, self.batch_size)) as ex:
            return list(ex.map(self._one_cached, requests))

    def _one_cached(self, r: GenerateRequest) -> str:
        """One call, its reply stored at once: a call that fails (rate limit, outage) costs
        only itself, and the same command resumes without paying for the others again."""
        text = self._one(r)
        if self.cache is not None:
            self.cache.put_many({RequestCache.key(self.model_key, r): text})
        return text

    def _one(self, r: GenerateRequest) -> str:
        reply = self.provider.complete(
            "",
            [{"role": "user", "content": r.prompt}],
            [],
            max_tokens=r.max_tokens,
            temperature=r.temperature,
        )
        with self._lock:
            self.calls += 1
            for k in ("input_tokens", "output_tokens"):
                got, have = getattr(reply.usage, k), self.usage[k]
                self.usage[k] = None if got is None or have is None else have + got
        return _cut(reply.text, r.stop)[0]


def make_provider_lm(
    source: str,
    *,
    base_url: str | None = None,
    concurrency: int = API_CONCURRENCY,
    cache: RequestCache | None = None,
) -> ProviderLM:
    """A :class:`ProviderLM` for ``anthropic:MODEL`` / ``openai:MODEL`` (keys from the
    environment, as for the agent)."""
    from smollab.providers import make_provider

    opts: dict[str, Any] = {"base_url": base_url} if base_url else {}
    return ProviderLM(
        make_provider(source, **opts), concurrency=concurrency, cache=cache, base_url=base_url
    )


def usd(x: float) -> str:
    """Dollars with the digits a bound of a few calls needs ($0.000771, $1.2345)."""
    return f"${x:.4f}" if x >= 0.01 else f"${x:.6f}"


@dataclass(frozen=True)
class ApiTarget:
    """What bounding an API model's calls needs, without its SDK or key: its request-cache key
    (``model_key``, as :class:`ProviderLM` keys its replies), its price (None where unknown:
    every ``base_url`` server) and the cache. ``smollab estimate SPEC.toml`` prices a study
    through it before any key is set."""

    source: str
    model_key: str
    price: Any
    cache: RequestCache | None
    base_url: str | None = None

    @classmethod
    def of(cls, source: str, base_url: str | None, cache: RequestCache | None) -> ApiTarget:
        from smollab.providers import parse_agent
        from smollab.providers.ledger import price_for

        name, model = parse_agent(source)
        source = f"{name}:{model}"
        key = source + (f"@{base_url}" if base_url else "")
        price = None if base_url else price_for(name, model)
        return cls(source, key, price, cache, base_url)


@dataclass(frozen=True)
class ApiBound:
    """What the calls of one API model can cost before any is made: ``calls`` requests, of
    which ``uncached`` are not in the request cache (only those are sent), and ``worst_usd``,
    the most those can cost (None: the model's price is unknown). ``base_url``: the server
    the model is on, which is why it has no price (a price can never apply there)."""

    source: str
    calls: int
    uncached: int
    worst_usd: float | None
    base_url: str | None = None

    def __add__(self, other: ApiBound) -> ApiBound:
        """Two sets of calls of the same model together."""
        worst = (
            None
            if self.worst_usd is None or other.worst_usd is None
            else self.worst_usd + other.worst_usd
        )
        return ApiBound(
            self.source,
            self.calls + other.calls,
            self.uncached + other.uncached,
            worst,
            self.base_url or other.base_url,
        )

    def describe(self) -> str:
        if not self.uncached:
            return f"{self.source}: no call to make ({self.calls} answered from the cache)"
        if self.worst_usd is not None:
            cost = f"at most {usd(self.worst_usd)}"
        elif self.base_url:
            cost = f"cost unknown (a model on a base_url server, {self.base_url}, has no price)"
        else:
            cost = "cost unknown (no price for this model in providers/prices.toml)"
        return f"{self.source}: {self.uncached} of {self.calls} calls not cached, {cost}"


def api_bound(lm: ProviderLM | ApiTarget, requests: Sequence[GenerateRequest]) -> ApiBound:
    """The worst case of sending ``requests`` through ``lm``: every request not in its cache,
    priced as :func:`~smollab.providers.ledger.worst_case_usd` prices an agent call (the
    prompt's characters at 3 per token, more tokens than English or code take, at the dearest
    input rate, plus ``max_tokens`` of output, where the server stops every reply); nothing
    but these requests is sent."""
    from smollab.providers.ledger import worst_case_usd

    todo = list(requests)
    if lm.cache is not None and todo:
        keys = [RequestCache.key(lm.model_key, r) for r in todo]
        have = lm.cache.get_many(keys)
        todo = [r for r, k in zip(todo, keys, strict=True) if k not in have]
    worst: float | None = 0.0
    if todo and lm.price is None:
        worst = None
    elif todo:
        worst = sum(worst_case_usd(len(r.prompt), r.max_tokens, lm.price) or 0.0 for r in todo)
    return ApiBound(lm.source, len(requests), len(todo), worst, lm.base_url)


def check_budget_target(source: str, budget_usd: float | None) -> None:
    """A budget is for API calls: refuse one given with a local model (which makes none)."""
    if budget_usd is not None and not is_api_source(source):
        raise ConfigError(
            f"--budget-usd limits what API calls cost; {source!r} is a local model, which "
            "makes none. Drop --budget-usd."
        )


def check_api_budget(bounds: Sequence[ApiBound], budget_usd: float | None, what: str) -> None:
    """Refuse, before any call, API calls whose worst case could pass ``budget_usd``
    (:class:`~smollab.providers.ledger.BudgetExceeded`, exit 4), or a budget that cannot be
    checked because a model's price is unknown (ConfigError). ``what`` names the command."""
    from smollab.providers.ledger import PRICES_PATH, BudgetExceeded

    if budget_usd is None:
        return
    unknown = [b for b in bounds if b.uncached and b.worst_usd is None]
    served = [f"{b.source} (on {b.base_url})" for b in unknown if b.base_url]
    unlisted = [b.source for b in unknown if not b.base_url]
    if unknown:
        # a base_url server is never priced, so "add its price" cannot help there
        why = []
        if served:
            why.append(
                f"{', '.join(served)} {'is' if len(served) == 1 else 'are'} served from a "
                "base_url server, which smollab never prices (what such a server charges is "
                "its own), so no price can be added for it"
            )
        if unlisted:
            why.append(f"no price is known for {', '.join(unlisted)} in {PRICES_PATH}")
        fix = (
            "Add its price there, or drop --budget-usd."
            if not served
            else "Drop --budget-usd"
            + (f" (or add the price of {', '.join(unlisted)} there)." if unlisted else ".")
        )
        raise ConfigError(
            f"--budget-usd {budget_usd} cannot be enforced for {what}: {'; and '.join(why)}. " + fix
        )
    total = sum(b.worst_usd or 0.0 for b in bounds)
    if total > budget_usd:
        raise BudgetExceeded(
            f"{what.capitalize()} could cost up to {usd(total)} in API calls, more than "
            f"--budget-usd {budget_usd:g} ({'; '.join(b.describe() for b in bounds)}). No call "
            "was made.",
            hint="Raise --budget-usd, or evaluate fewer items (--limit, fewer tasks or seeds).",
        )
