"""The two request types every benchmark task reduces to, and the loglikelihood result.

They are plain data (no torch), so tasks can build them without loading a model; the contract of
each is stated in :mod:`smollab.eval.lm`, which serves them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LoglikelihoodRequest:
    """Score ``continuation`` after ``context`` (the contract: :mod:`smollab.eval.lm`)."""

    context: str
    continuation: str


@dataclass(frozen=True)
class Loglikelihood:
    """``logprob``: summed log-probability of the continuation tokens; ``is_greedy``: every one
    of them is the argmax; ``n_tokens``: how many there are; ``truncated``: the context was cut."""

    logprob: float
    is_greedy: bool
    n_tokens: int
    truncated: bool = False


@dataclass(frozen=True)
class GenerateRequest:
    """Continue ``prompt`` (the contract: :mod:`smollab.eval.lm`)."""

    prompt: str
    stop: tuple[str, ...] = ()
    max_tokens: int = 256
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int = 0
    #: the prompt is a user message: the LM wraps it in its chat template (generation prompt on)
    chat: bool = False
