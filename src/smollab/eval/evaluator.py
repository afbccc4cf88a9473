"""Generative evaluation of a task: prompts -> batched greedy completions -> per-item scores."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

from smollab.errors import ConfigError
from smollab.eval.generate import greedy_generate
from smollab.tasks import PROMPT_FORMATS, Example, PromptFormat, Task
from smollab.tasks.requests import GenerateRequest

FEWSHOT_SEED = 4242
#: the token budget of an API model's reply on an exact-match task (its tokens are not ours to
#: count: a short sentence fits; the reply is cut at its first newline and the format's parser
#: reads what is left, e.g. the last integer for 'chat_answer')
API_MAX_NEW_TOKENS = 64


class _ApiChat:
    """Stands in for a tokenizer when the prompt goes to an API model: a chat-template format
    gets the user message itself, and the provider applies the model's own template."""

    chat_template = "the API model's own"
    eos_token = ""

    def apply_chat_template(self, messages: list[dict[str, str]], **_: Any) -> str:
        return messages[-1]["content"]


def fewshot_examples(task: Task, fmt: PromptFormat) -> list[Example]:
    """Fixed solved examples for few-shot prompts, drawn from the training pool (never test)."""
    return task.train_examples(fmt.n_shots, seed=FEWSHOT_SEED) if fmt.n_shots else []


def api_requests(
    task: Task, fmt: PromptFormat, items: Sequence[Example], max_new_tokens: int | None = None
) -> list[GenerateRequest]:
    """The calls :func:`evaluate_items` makes for an API model: one per item, its prompt as the
    user message, cut at the first newline, ``max_new_tokens`` or :data:`API_MAX_NEW_TOKENS`."""
    tokenizer = _ApiChat()
    shots = fewshot_examples(task, fmt)
    budget = API_MAX_NEW_TOKENS if max_new_tokens is None else max_new_tokens
    return [
        GenerateRequest(fmt.prompt(ex, tokenizer, shots), stop=("\n",), max_tokens=budget)
        for ex in items
    ]


def generation_budget(tokenizer: Any, fmt: PromptFormat, items: Sequence[Example]) -> int:
    """A local model's default token budget for ``items`` (what :func:`evaluate_items` uses
    when given none): the longest target's tokens + 2, at least :data:`API_MAX_NEW_TOKENS` for
    chat-template formats (a chat reply may restate the question first)."""
    longest = max(len(tokenizer(fmt.target(ex, tokenizer)).input_ids) for ex in items)
    budget = longest + 2
    return max(budget, API_MAX_NEW_TOKENS) if fmt.uses_chat_template else budget


def evaluate_items(
    model: Any,
    tokenizer: Any,
    task: Task,
    fmt: PromptFormat | str,
    items: Sequence[Example],
    *,
    batch_size: int = 64,
    max_new_tokens: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> list[dict[str, Any]]:
    """One record per item: prompt, target, completion, prediction, correct, metrics, error.

    ``model`` is a local model (greedy batched decoding) or an API model
    (:class:`~smollab.eval.provider_lm.ProviderLM`, ``tokenizer`` None): each prompt is then one
    call, as the user message, greedy where the API takes a temperature; a chat-template format
    sends the question itself (the provider applies its own template), and the token budget is
    ``max_new_tokens`` or :data:`API_MAX_NEW_TOKENS`. A local model's default budget is the
    longest target's tokens + 2 (a trained format ends there), at least
    :data:`API_MAX_NEW_TOKENS` for chat-template formats; generation stops at a newline."""
    from smollab.eval.provider_lm import ProviderLM
    from smollab.models import LoadedModel
    from smollab.tasks import BenchTask

    if isinstance(model, LoadedModel):
        raise ConfigError(
            "evaluate_items takes the model and its tokenizer: pass loaded.model, "
            "loaded.tokenizer (not what load_model returned)."
        )
    if isinstance(task, BenchTask):
        raise ConfigError(
            f"{task.name} is a benchmark task: evaluate it with "
            "smollab.eval.harness.run_eval(loaded, [task], out_dir), or `smollab eval`."
        )
    if isinstance(fmt, str):  # a format's registered name ("compact", "plain", ...)
        fmt = PROMPT_FORMATS.get(fmt, where="evaluate_items: fmt")
    if not items:
        return []
    if isinstance(model, ProviderLM):
        requests = api_requests(task, fmt, items, max_new_tokens)
        prompts = [r.prompt for r in requests]
        completions = model.generate(requests, progress)
    else:
        shots = fewshot_examples(task, fmt)
        prompts = [fmt.prompt(ex, tokenizer, shots) for ex in items]
        if max_new_tokens is None:
            max_new_tokens = generation_budget(tokenizer, fmt, items)
        completions = greedy_generate(
            model,
            tokenizer,
            prompts,
            max_new_tokens=max_new_tokens,
            stop=("\n",),
            batch_size=batch_size,
            progress=progress,
        )
    records = []
    for ex, prompt, completion in zip(items, prompts, completions, strict=True):
        pred = fmt.parse(completion)
        s = task.score(ex, pred)
        records.append(
            {
                "id": ex.id,
                "stratum": ex.stratum,
                "prompt": prompt,
                "target": ex.answer,
                "completion": completion,
                "prediction": s.prediction,
                "correct": bool(s.correct),
                "error_type": s.error_type,
                **s.metrics,
            }
        )
    return records


def accuracy_by_stratum(records: Sequence[dict[str, Any]]) -> dict[str, float]:
    """Plain exact-match accuracy per stratum (for monitoring; intervals live in analysis)."""
    hits: dict[str, list[bool]] = defaultdict(list)
    for r in records:
        hits[r["stratum"]].append(r["correct"])
    return {s: sum(v) / len(v) for s, v in hits.items()}
