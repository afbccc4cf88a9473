"""LLM providers behind one registry, plus the ledger, prices and key redaction.

    from smollab.providers import make_provider
    p = make_provider("anthropic:claude-sonnet-4-5")

``PROVIDERS`` maps a name to a factory ``(model, **options) -> Provider``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from smollab.errors import ConfigError
from smollab.providers.base import (
    AuthError,
    Outage,
    Provider,
    ProviderError,
    RateLimited,
    Reply,
    ToolCall,
    ToolSpec,
    Usage,
)
from smollab.registry import Registry

PROVIDERS = Registry[Callable[..., Provider]]("provider")


@PROVIDERS.register("anthropic")
def _anthropic(model: str, **opts: Any) -> Provider:
    from smollab.providers.anthropic_messages import AnthropicProvider

    return AnthropicProvider(model, **opts)


@PROVIDERS.register("openai")
def _openai(model: str, **opts: Any) -> Provider:
    from smollab.providers.openai_chat import OpenAIProvider

    return OpenAIProvider(model, **opts)


@PROVIDERS.register("scripted")
def _scripted(model: str, **opts: Any) -> Provider:
    from smollab.providers.scripted import ScriptedProvider

    return ScriptedProvider(model, **opts)


def parse_agent(spec: str) -> tuple[str, str]:
    """``"anthropic:claude-sonnet-4-5"`` -> ``("anthropic", "claude-sonnet-4-5")``."""
    name, sep, model = spec.partition(":")
    if not sep or not model:
        raise ConfigError(
            f"--agent {spec!r} is not PROVIDER:MODEL. Use anthropic:<model>, openai:<model> or "
            f"scripted:<file>; providers: {', '.join(PROVIDERS.names())}."
        )
    PROVIDERS.get(name, where="--agent")
    return name, model


def make_provider(spec: str, **opts: Any) -> Provider:
    name, model = parse_agent(spec)
    return PROVIDERS.get(name)(model, **opts)


__all__ = [
    "PROVIDERS",
    "AuthError",
    "Outage",
    "Provider",
    "ProviderError",
    "RateLimited",
    "Reply",
    "ToolCall",
    "ToolSpec",
    "Usage",
    "make_provider",
    "parse_agent",
]
