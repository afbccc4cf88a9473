"""Evaluation: the LM interface (loglikelihood, generate), batched generation, scoring.

The names below are loaded on first use, so that importing a light submodule (the harness's
task registry, to refuse a bad ``--task`` at once) does not import torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from smollab.lazy import lazy_exports

if TYPE_CHECKING:
    from smollab.eval.evaluator import accuracy_by_stratum, api_requests, evaluate_items
    from smollab.eval.generate import greedy_generate, sequential_generate
    from smollab.eval.lm import (
        HFLM,
        GenerateRequest,
        Loglikelihood,
        LoglikelihoodRequest,
        RequestCache,
    )

_WHERE = {
    "HFLM": "lm",
    "GenerateRequest": "lm",
    "Loglikelihood": "lm",
    "LoglikelihoodRequest": "lm",
    "RequestCache": "lm",
    "accuracy_by_stratum": "evaluator",
    "api_requests": "evaluator",
    "evaluate_items": "evaluator",
    "greedy_generate": "generate",
    "sequential_generate": "generate",
}

__all__ = [
    "HFLM",
    "GenerateRequest",
    "Loglikelihood",
    "LoglikelihoodRequest",
    "RequestCache",
    "accuracy_by_stratum",
    "api_requests",
    "evaluate_items",
    "greedy_generate",
    "sequential_generate",
]


__getattr__ = lazy_exports(__name__, _WHERE)
