"""The two request types every benchmark task reduces to, and the loglikelihood result.

They are plain data (no torch), so tasks can build them without loading a model; the contract of
each is stated in :mod:`smollab.eval.lm`, which serves them.
"""

from __future__ import annotations

from dataclasses import dataclass

from smollab.errors import ConfigError


@dataclass(frozen=True)
class LoglikelihoodRequest:
    """Score ``continuation`` after ``context`` (the contract: :mod:`smollab.eval.lm`)."""

    context: str
    continuation: str


@dataclass(frozen=True)
class RollingLoglikelihoodRequest:
    """Score the whole of ``text``, token by token, in windows of the context window (the
    contract: :mod:`smollab.eval.lm`, lm-evaluation-harness's ``loglikelihood_rolling``)."""

    text: str


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
    """Continue ``prompt`` (the contract: :mod:`smollab.eval.lm`).

    ``stop`` may be one string or several. Identical requests give identical text (the cache
    keys on the request): draw n samples of one prompt with n seeds, as the code tasks do."""

    prompt: str
    stop: tuple[str, ...] = ()
    max_tokens: int = 256
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int = 0
    #: the prompt is a user message: the LM wraps it in its chat template (generation prompt on)
    chat: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.stop, str):  # one stop string, not its characters
            object.__setattr__(self, "stop", (self.stop,))
        else:
            object.__setattr__(self, "stop", tuple(self.stop))
        check_sampling(self.temperature, self.top_p, where="GenerateRequest")
        if self.max_tokens < 1:
            raise ConfigError(f"GenerateRequest max_tokens={self.max_tokens}: use 1 or more.")


def check_sampling(temperature: float, top_p: float, *, where: str) -> None:
    """``temperature >= 0`` (0 is greedy) and ``0 < top_p <= 1``; raises ConfigError naming
    ``where``."""
    if temperature < 0:
        raise ConfigError(
            f"{where}: temperature={temperature} is negative; use 0 (greedy) or more."
        )
    if not 0 < top_p <= 1:
        raise ConfigError(
            f"{where}: top_p={top_p} is outside (0, 1]; top_p keeps the smallest set of tokens "
            "whose probability reaches it (1 keeps all)."
        )
