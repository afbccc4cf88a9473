"""Anthropic's native Messages API with prompt caching.

The system prompt and the cached context (API reference, code summary) are sent as two system
blocks, each marked ``cache_control: ephemeral``: every later call in a session reads that
prefix from the cache at a tenth of the input price. Cache writes and reads are recorded from
``usage.cache_creation_input_tokens`` / ``usage.cache_read_input_tokens``.
"""

from __future__ import annotations

import json
import os
from typing import Any

from smollab.errors import ConfigError
from smollab.providers.base import (
    RUN_AGAIN,
    Reply,
    ToolCall,
    ToolSpec,
    Usage,
    malformed_reply,
    map_sdk_error,
)


def map_error(e: Exception, where: str) -> Exception:
    import anthropic

    return map_sdk_error(
        anthropic,
        e,
        where,
        key_hint="Check ANTHROPIC_API_KEY and try again.",
        reach_hint=f"Check the network, then {RUN_AGAIN}.",
    )


def to_anthropic_messages(messages: list[dict[str, Any]], images: bool) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for m in messages:
        if m["role"] == "assistant":
            blocks: list[dict[str, Any]] = []
            if m.get("content"):
                blocks.append({"type": "text", "text": m["content"]})
            for c in m.get("tool_calls") or []:
                blocks.append(
                    {"type": "tool_use", "id": c.id, "name": c.name, "input": c.arguments or {}}
                )
            out.append({"role": "assistant", "content": blocks or [{"type": "text", "text": "."}]})
        elif m["role"] == "tool":
            content: list[dict[str, Any]] = [{"type": "text", "text": m["content"] or "(empty)"}]
            if m.get("image_b64") and images:
                content.append(
                    {
                        "type": "image",
                        "source": {
                            "type": "base64",
                            "media_type": "image/png",
                            "data": m["image_b64"],
                        },
                    }
                )
            block = {"type": "tool_result", "tool_use_id": m["tool_call_id"], "content": content}
            # consecutive tool results belong in one user turn
            if (
                out
                and out[-1]["role"] == "user"
                and isinstance(out[-1]["content"], list)
                and all(b.get("type") == "tool_result" for b in out[-1]["content"])
            ):
                out[-1]["content"].append(block)
            else:
                out.append({"role": "user", "content": [block]})
        else:
            out.append({"role": "user", "content": m["content"]})
    return out


class AnthropicProvider:
    #: the Messages API (anthropic SDK 2.x) has no sampling temperature: the server decides
    supports_temperature = False
    name = "anthropic"
    supports_images = True

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        stream: bool = False,
        max_retries: int = 2,
        timeout: float = 600.0,
        **_: Any,
    ) -> None:
        try:
            import anthropic
        except ImportError:
            raise ConfigError(
                "The anthropic provider needs the anthropic SDK: pip install 'smollab[agent]'."
            ) from None
        key = os.environ.get("ANTHROPIC_API_KEY")
        if not key:
            raise ConfigError(
                "ANTHROPIC_API_KEY is not set. Export it: keys are read from the environment only."
            )
        self.model = model
        self.stream = stream
        self.client = anthropic.Anthropic(
            api_key=key, base_url=base_url, max_retries=max_retries, timeout=timeout
        )

    @property
    def where(self) -> str:
        return f"anthropic:{self.model}"

    def system_blocks(self, system: str, cached_context: str) -> list[dict[str, Any]]:
        blocks: list[dict[str, Any]] = (
            [{"type": "text", "text": system, "cache_control": {"type": "ephemeral"}}]
            if system
            else []
        )
        if cached_context:
            blocks.append(
                {"type": "text", "text": cached_context, "cache_control": {"type": "ephemeral"}}
            )
        return blocks

    def complete(
        self,
        system: str,
        messages: list[dict[str, Any]],
        tools: list[ToolSpec],
        *,
        max_tokens: int,
        cached_context: str = "",
        temperature: float | None = None,
    ) -> Reply:
        kwargs: dict[str, Any] = {
            "model": self.model,
            "messages": to_anthropic_messages(messages, self.supports_images),
            "max_tokens": max_tokens,
        }
        if system or cached_context:
            kwargs["system"] = self.system_blocks(system, cached_context)
        # ``temperature`` is not sent: the Messages API of anthropic SDK 2.x takes none
        if tools:
            kwargs["tools"] = [
                {"name": t.name, "description": t.description, "input_schema": t.parameters}
                for t in tools
            ]
        try:
            if self.stream:
                with self.client.messages.stream(**kwargs) as s:
                    msg = s.get_final_message()
            else:
                msg = self.client.messages.create(**kwargs)
        except Exception as e:
            raise map_error(e, self.where) from None
        if not isinstance(getattr(msg, "content", None), list):
            raise malformed_reply(self.where, f"no content in {str(msg)[:120]!r}")
        text = "".join(b.text for b in msg.content if b.type == "text")
        calls = [
            ToolCall(
                id=b.id,
                name=b.name,
                arguments=b.input if isinstance(b.input, dict) else None,
                raw_arguments=json.dumps(b.input),
            )
            for b in msg.content
            if b.type == "tool_use"
        ]
        u = msg.usage
        return Reply(
            text=text,
            tool_calls=calls,
            usage=Usage(
                input_tokens=getattr(u, "input_tokens", None),
                output_tokens=getattr(u, "output_tokens", None),
                cache_write_tokens=getattr(u, "cache_creation_input_tokens", None),
                cache_read_tokens=getattr(u, "cache_read_input_tokens", None),
            ),
            model=msg.model,
            stop_reason=msg.stop_reason,
        )

    def ping(self) -> None:
        try:
            self.client.messages.create(
                model=self.model, max_tokens=1, messages=[{"role": "user", "content": "OK?"}]
            )
        except Exception as e:
            raise map_error(e, self.where) from None
