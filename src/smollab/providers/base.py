"""The provider contract: one chat call with tools, one usage record.

A :class:`Provider` turns ``(system, messages, tools)`` into a :class:`Reply`. Messages use one
neutral shape, whatever the wire format::

    {"role": "user", "content": "text"}
    {"role": "assistant", "content": "text", "tool_calls": [ToolCall...]}
    {"role": "tool", "tool_call_id": "id", "name": "tool", "content": "result text"}

Token counts a server does not report are ``None`` (unknown), never 0.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from smollab.errors import SmollabError


class ProviderError(SmollabError):
    """A model call failed for a reason the user must fix (key, quota, outage)."""

    exit_code = 3


class AuthError(ProviderError):
    """401/403: the key was rejected."""


class RateLimited(ProviderError):
    """429 after retries: quota or rate limit."""


class Outage(ProviderError):
    """5xx or connection failure after retries."""


#: how a hint says to retry; once an agent's session folder exists, the CLI puts `smollab
#: resume` with the session's folder in its place (:func:`smollab.cli.agent._name_session`).
#: It names no session itself: an eval, a study, or an agent stopped before its folder was
#: made has none to resume
RUN_AGAIN = "run the same command again"


def map_sdk_error(
    sdk: Any, e: Exception, where: str, *, key_hint: str, reach_hint: str
) -> Exception:
    """An exception of the ``anthropic`` or ``openai`` SDK (both define the same exception
    classes) -> one clear :class:`ProviderError`; anything else is returned unchanged."""
    status = getattr(e, "status_code", None)
    if isinstance(e, sdk.AuthenticationError | sdk.PermissionDeniedError):
        return AuthError(f"{where}: the API key was rejected (HTTP {status}).", hint=key_hint)
    if isinstance(e, sdk.RateLimitError):
        return RateLimited(
            f"{where}: rate limit or quota exceeded (HTTP 429) after retries.",
            hint=f"Wait, or raise the quota, then {RUN_AGAIN}; finished work is kept.",
        )
    if isinstance(e, sdk.NotFoundError):
        return ProviderError(
            f"{where}: not found (HTTP 404): the model name is probably wrong.",
            hint="Check the model in --agent PROVIDER:MODEL (an OpenAI-compatible server lists "
            f"its models at <base-url>/models), then {RUN_AGAIN}; finished work is kept.",
        )
    if isinstance(e, sdk.APIConnectionError):
        return Outage(f"{where}: cannot reach the server ({type(e).__name__}).", hint=reach_hint)
    if isinstance(e, sdk.APIStatusError):
        if status and status >= 500:
            return Outage(
                f"{where}: the server failed (HTTP {status}) after retries.",
                hint=f"Try again later: {RUN_AGAIN}; finished work is kept.",
            )
        return ProviderError(f"{where}: request rejected (HTTP {status}): {_error_message(e)}")
    if isinstance(e, json.JSONDecodeError):  # the SDK parses a 200 reply that is not JSON
        return malformed_reply(where, f"not JSON: {e.doc[:120]!r}")
    return e


def malformed_reply(where: str, what: str) -> ProviderError:
    """A 200 reply that is not a chat reply (garbage JSON, an HTML page, no choices): one clear
    :class:`ProviderError` instead of the parser's traceback."""
    return ProviderError(
        f"{where}: the server's reply is not a chat completion ({what}).",
        hint="Check that --base-url is the API root of an OpenAI-compatible server (it usually "
        f"ends in /v1) and that the server is healthy, then {RUN_AGAIN}; finished work is kept.",
    )


def _error_message(e: Exception) -> str:
    body = getattr(e, "body", None)
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict) and "message" in err:
            return str(err["message"])[:300]
    return str(e)[:300]


@dataclass
class ToolSpec:
    """A tool the model may call: name, one-line description, JSON schema of its arguments."""

    name: str
    description: str
    parameters: dict[str, Any]


@dataclass
class ToolCall:
    id: str
    name: str
    arguments: dict[str, Any] | None
    """Parsed arguments; None when the model sent something that is not a JSON object."""
    raw_arguments: str = ""


@dataclass
class Usage:
    """Tokens of one call; None means the server did not report it."""

    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_write_tokens: int | None = None
    cache_read_tokens: int | None = None


@dataclass
class Reply:
    text: str
    tool_calls: list[ToolCall] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    model: str = ""
    stop_reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Reply:
        calls = [
            ToolCall(
                id=str(c.get("id") or f"call_{i}"),
                name=str(c["name"]),
                arguments=c.get("arguments"),
                raw_arguments=c.get("raw_arguments", "") or json.dumps(c.get("arguments")),
            )
            for i, c in enumerate(d.get("tool_calls") or [])
        ]
        return cls(
            text=d.get("text") or "",
            tool_calls=calls,
            usage=Usage(**(d.get("usage") or {})),
            model=d.get("model", ""),
            stop_reason=d.get("stop_reason"),
        )


class Provider(Protocol):
    """One LLM backend. ``name`` is the registry key, ``model`` the model id."""

    name: str
    model: str
    supports_images: bool

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
        """One call. ``cached_context`` (API reference, code summary) is sent after ``system``
        and, where the provider supports it, marked for prompt caching. ``temperature`` is sent
        only when given and the API takes one (``supports_temperature``; the server's default
        otherwise); an empty ``system`` is not sent.

        Raises:
            AuthError, RateLimited, Outage: after the provider's own retries.
        """
        ...

    def ping(self) -> None:
        """One minimal call (a few tokens) proving the key and model work."""
        ...


_JSON_CALL = re.compile(r"\{.*\}", re.S)


def parse_json_tool_call(text: str, tool_names: set[str]) -> ToolCall | None:
    """The JSON fallback for servers without tool calling: the first ``{"tool": ...,
    "arguments": {...}}`` object in ``text`` (also inside a ```json fence)."""
    for m in re.finditer(r"\{", text):
        depth = 0
        for j in range(m.start(), len(text)):
            ch = text[j]
            if ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
                if depth == 0:
                    try:
                        obj = json.loads(text[m.start() : j + 1])
                    except json.JSONDecodeError:
                        break
                    name = obj.get("tool") or obj.get("name") if isinstance(obj, dict) else None
                    if isinstance(name, str) and name in tool_names:
                        args = obj.get("arguments", obj.get("args", {}))
                        return ToolCall(
                            id="json_0",
                            name=name,
                            arguments=args if isinstance(args, dict) else None,
                            raw_arguments=json.dumps(args),
                        )
                    break
    return None


def json_tool_instructions(tools: list[ToolSpec]) -> str:
    """How a model without native tool calling asks for a tool (JSON fallback)."""
    lines = [
        "To call a tool, reply with one JSON object and nothing else:",
        '{"tool": "<name>", "arguments": {...}}',
        "Tools:",
    ]
    for t in tools:
        lines.append(f"- {t.name}: {t.description} Arguments schema: {json.dumps(t.parameters)}")
    return "\n".join(lines)
