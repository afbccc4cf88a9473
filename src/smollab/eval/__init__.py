"""Evaluation: the LM interface (loglikelihood, generate), batched generation, scoring."""

from __future__ import annotations

from smollab.eval.evaluator import accuracy_by_stratum, api_requests, evaluate_items
from smollab.eval.generate import greedy_generate, sequential_generate
from smollab.eval.lm import (
    HFLM,
    GenerateRequest,
    Loglikelihood,
    LoglikelihoodRequest,
    RequestCache,
)

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
