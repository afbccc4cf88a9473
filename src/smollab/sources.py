"""Model source strings that need no heavy import to classify (spec checks run before any
model library loads): ``anthropic:MODEL`` and ``openai:MODEL`` name API models."""

from __future__ import annotations

#: the schemes of API model sources (``openai:gpt-5-mini``, ``anthropic:claude-...``)
API_SCHEMES = ("anthropic", "openai")


def is_api_source(source: str) -> bool:
    """Whether a ``--model`` source names an API model (``anthropic:...``, ``openai:...``)."""
    scheme, sep, model = source.partition(":")
    return bool(sep and model) and scheme in API_SCHEMES
