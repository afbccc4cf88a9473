"""Generative evaluation of a task: prompts -> batched greedy completions -> per-item scores."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

from smollab.eval.generate import greedy_generate
from smollab.tasks import Example, PromptFormat, Task

FEWSHOT_SEED = 4242


def fewshot_examples(task: Task, fmt: PromptFormat) -> list[Example]:
    """Fixed solved examples for few-shot prompts, drawn from the training pool (never test)."""
    return task.train_examples(fmt.n_shots, seed=FEWSHOT_SEED) if fmt.n_shots else []


def evaluate_items(
    model: Any,
    tokenizer: Any,
    task: Task,
    fmt: PromptFormat,
    items: Sequence[Example],
    *,
    batch_size: int = 64,
    max_new_tokens: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> list[dict[str, Any]]:
    """One record per item: prompt, target, completion, prediction, correct, metrics, error."""
    shots = fewshot_examples(task, fmt)
    prompts = [fmt.prompt(ex, tokenizer, shots) for ex in items]
    if max_new_tokens is None:
        longest = max(len(tokenizer(fmt.target(ex, tokenizer)).input_ids) for ex in items)
        max_new_tokens = longest + 2
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
