"""Evaluation: batched greedy generation and per-item scoring."""

from __future__ import annotations

from smollab.eval.evaluator import accuracy_by_stratum, evaluate_items
from smollab.eval.generate import greedy_generate, sequential_generate

__all__ = ["accuracy_by_stratum", "evaluate_items", "greedy_generate", "sequential_generate"]
