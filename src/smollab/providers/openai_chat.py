"""OpenAI Chat Completions, and every server that speaks it (vLLM, Ollama, llama.cpp).

``base_url`` points the official SDK at a compatible server. Tool calling is used where the
server offers it; otherwise (``tool_mode="json"``, or a server that rejects the ``tools``
field) the tools are described in the prompt and the first ``{"tool": ..., "arguments": ...}``
object in the reply is taken as the call. A reply with no native call is also searched for one,
since small local models often answer that way even when tools are offered.
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
    _error_message,
    json_tool_instructions,
    malformed_reply,
    map_sdk_error,
    parse_json_tool_call,
)


def _client(base_url: str | None, max_retries: int, timeout: float) -> Any:
    try:
        import openai
    except ImportError:
        raise ConfigError(
            "The openai provider needs the openai SDK: pip install 'smollab[agent]'."
        ) from None
    key = os.environ.get("OPENAI_API_KEY")
    if not key and base_url is None:
        raise ConfigError(
            "OPENAI_API_KEY is not set. Export it (keys are read from the environment only), "
            "or pass --base-url for a local OpenAI-compatible server."
        )
    return openai.OpenAI(
        api_key=key or "not-needed", base_url=base_url, max_retries=max_retries, timeout=timeout
    )


def map_error(e: Exception, where: str) -> Exception:
    """SDK exception -> one clear :class:`ProviderError` line."""
    import openai

    return map_sdk_error(
        openai,
        e,
        where,
        key_hint="Check the key in the environment variable and try again.",
        reach_hint=f"Check the network or --base-url, then {RUN_AGAIN}.",
    )


def to_openai_messages(
    system: str, messages: list[dict[str, Any]], images: bool
) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [{"role": "system", "content": system}] if system else []
    for m in messages:
        if m["role"] == "assistant":
            msg: dict[str, Any] = {"role": "assistant", "content": m.get("content") or ""}
            calls = m.get("tool_calls") or []
            if calls and not m.get("json_mode"):
                msg["tool_calls"] = [
                    {
                        "id": c.id,
                        "type": "function",
                        "function": {"name": c.name, "arguments": c.raw_arguments or "{}"},
                    }
                    for c in calls
                ]
            out.append(msg)
        elif m["role"] == "tool":
            if m.get("json_mode"):
                out.append({"role": "user", "content": f"Result of {m['name']}:\n{m['content']}"})
            else:
                out.append(
                    {"role": "tool", "tool_call_id": m["tool_call_id"], "content": m["content"]}
                )
            if m.get("image_b64") and images:
                out.append(
                    {
                        "role": "user",
                        "content": [
                            {"type": "text", "text": f"Figure returned by {m['name']}:"},
                            {
                                "type": "image_url",
                                "image_url": {"url": f"data:image/png;base64,{m['image_b64']}"},
                            },
                        ],
                    }
                )
        else:
            out.append({"role": "user", "content": m["content"]})
    return out


class OpenAIProvider:
    name = "openai"
    supports_temperature = True

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        tool_mode: str = "auto",
        stream: bool = False,
        max_retries: int = 2,
        timeout: float = 600.0,
        **_: Any,
    ) -> None:
        self.model = model
        self.base_url = base_url
        self.tool_mode = tool_mode
        self.stream = stream
        self.client = _client(base_url, max_retries, timeout)
        # hosted OpenAI models read images; for other servers we do not know
        self.supports_images = base_url is None and model.startswith(("gpt-4o", "gpt-4.1", "gpt-5"))

    @property
    def where(self) -> str:
        return f"openai:{self.model}" + (f" at {self.base_url}" if self.base_url else "")

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
        json_mode = self.tool_mode == "json"
        sys_text = system + ("\n\n" + cached_context if cached_context else "")
        if json_mode and tools:
            sys_text += "\n\n" + json_tool_instructions(tools)
        kwargs: dict[str, Any] = {
            "model": self.model,
            "messages": to_openai_messages(sys_text, messages, self.supports_images),
            "max_tokens": max_tokens,
        }
        if temperature is not None:
            kwargs["temperature"] = temperature
        if tools and not json_mode:
            kwargs["tools"] = [
                {
                    "type": "function",
                    "function": {
                        "name": t.name,
                        "description": t.description,
                        "parameters": t.parameters,
                    },
                }
                for t in tools
            ]
        try:
            reply = self._stream(kwargs) if self.stream else self._once(kwargs)
        except Exception as e:
            import openai

            # a server without tool support rejects the field: fall back to JSON for good
            if (
                isinstance(e, openai.BadRequestError)
                and "tools" in kwargs
                and self.tool_mode == "auto"
                and "tool" in _error_message(e).lower()
            ):
                self.tool_mode = "json"
                return self.complete(
                    system,
                    messages,
                    tools,
                    max_tokens=max_tokens,
                    cached_context=cached_context,
                    temperature=temperature,
                )
            raise map_error(e, self.where) from None
        if not reply.tool_calls and tools:
            call = parse_json_tool_call(reply.text, {t.name for t in tools})
            if call is not None:
                reply.tool_calls = [call]
                reply.stop_reason = "json_tool_call"
        return reply

    def _once(self, kwargs: dict[str, Any]) -> Reply:
        r = self.client.chat.completions.create(**kwargs)
        choice = self._first_choice(r)
        calls = [
            _tool_call(c.id, c.function.name, c.function.arguments)
            for c in (choice.message.tool_calls or [])
        ]
        return Reply(
            text=choice.message.content or "",
            tool_calls=calls,
            usage=_usage(r.usage),
            model=r.model or self.model,
            stop_reason=choice.finish_reason,
        )

    def _stream(self, kwargs: dict[str, Any]) -> Reply:
        text: list[str] = []
        calls: dict[int, dict[str, str]] = {}
        usage = None
        finish = None
        model = self.model
        for chunk in self.client.chat.completions.create(
            **kwargs, stream=True, stream_options={"include_usage": True}
        ):
            model = chunk.model or model
            if chunk.usage is not None:
                usage = chunk.usage
            for ch in chunk.choices:
                d = ch.delta
                if d.content:
                    text.append(d.content)
                for tc in d.tool_calls or []:
                    slot = calls.setdefault(tc.index, {"id": "", "name": "", "args": ""})
                    slot["id"] = tc.id or slot["id"]
                    if tc.function is not None:
                        slot["name"] += tc.function.name or ""
                        slot["args"] += tc.function.arguments or ""
                finish = ch.finish_reason or finish
        return Reply(
            text="".join(text),
            tool_calls=[
                _tool_call(c["id"], c["name"], c["args"]) for _, c in sorted(calls.items())
            ],
            usage=_usage(usage),
            model=model,
            stop_reason=finish,
        )

    def _first_choice(self, r: Any) -> Any:
        """The reply's first choice; a reply without one (an HTML page, ``{}``, ``[]``, no
        message) is a :func:`malformed_reply`, not an AttributeError."""
        choices = getattr(r, "choices", None)
        if not isinstance(choices, list) or not choices or choices[0].message is None:
            raise malformed_reply(self.where, f"no message in {str(r)[:120]!r}")
        return choices[0]

    def ping(self) -> None:
        try:
            r = self.client.chat.completions.create(
                model=self.model, messages=[{"role": "user", "content": "Say OK."}], max_tokens=1
            )
        except Exception as e:
            raise map_error(e, self.where) from None
        self._first_choice(r)


def _tool_call(id_: str | None, name: str, raw: str | None) -> ToolCall:
    try:
        args = json.loads(raw or "{}")
    except json.JSONDecodeError:
        args = None
    return ToolCall(
        id=id_ or f"call_{name}",
        name=name,
        arguments=args if isinstance(args, dict) else None,
        raw_arguments=raw or "",
    )


def _usage(u: Any) -> Usage:
    if u is None:
        return Usage()
    prompt = getattr(u, "prompt_tokens", None)
    details = getattr(u, "prompt_tokens_details", None)
    cached = getattr(details, "cached_tokens", None) if details is not None else None
    return Usage(
        input_tokens=None if prompt is None else prompt - (cached or 0),
        output_tokens=getattr(u, "completion_tokens", None),
        cache_write_tokens=None,
        cache_read_tokens=cached,
    )
