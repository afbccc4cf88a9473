"""The scripted provider: replies read from a file, for tests and transcript replay.

The file is JSON: a list of replies, or a session's ``transcript.jsonl`` (one recorded call a
line, with its ``reply``). A reply is ``{"text": "...", "tool_calls": [{"name": "run_study",
"arguments": {...}}]}``. Replies are served in order; when they run out the provider answers
with a ``finish`` call, so a script can never hang a session.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from smollab.errors import ConfigError
from smollab.providers.base import Reply, ToolSpec, Usage


def _reply_problem(r: Any) -> str | None:
    """What makes ``r`` not a reply object as :meth:`Reply.from_dict` reads it, or None."""
    if not isinstance(r, dict):
        return f"is a JSON {type(r).__name__}, not an object"
    if not isinstance(r.get("text") or "", str):
        return f"field 'text' is {json.dumps(r['text'])[:40]}, not a string"
    calls = r.get("tool_calls") or []
    if not isinstance(calls, list):
        return f"field 'tool_calls' is {json.dumps(calls)[:40]}, not a list of calls"
    for j, c in enumerate(calls):
        if not isinstance(c, dict) or not isinstance(c.get("name"), str) or not c["name"]:
            return f"tool_calls[{j}] has no 'name' (a tool name, a string)"
        if c.get("arguments") is not None and not isinstance(c["arguments"], dict):
            return f"tool_calls[{j}].arguments is not an object"
    usage = r.get("usage") or {}
    if not isinstance(usage, dict) or set(usage) - set(Usage.__dataclass_fields__):
        return f"field 'usage' must be an object with keys among {list(Usage.__dataclass_fields__)}"
    return None


def load_script(path: Path) -> list[dict[str, Any]]:
    """The replies of a scripted agent: a JSON list of reply objects, or a session's
    ``transcript.jsonl`` (its ``reply`` rows). Each reply is checked here, so a malformed one is
    a ConfigError naming the file and the reply, before the session starts."""
    form = (
        'It must be a JSON list of replies ({"text": ..., "tool_calls": [{"name": ..., '
        '"arguments": {...}}]}) or a transcript.jsonl.'
    )
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(
            f"Scripted agent file {path} cannot be read ({e.strerror}). Pass "
            "--agent scripted:FILE with a JSON list of replies or a session's transcript.jsonl."
        ) from None
    if Path(path).suffix == ".jsonl":
        data = []
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise ConfigError(
                    f"Scripted agent file {path}, line {n}: not valid JSON ({e.msg}). {form}"
                ) from None
            if isinstance(row, dict) and "reply" in row:
                data.append(row["reply"])
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise ConfigError(
                f"Scripted agent file {path} is not valid JSON ({e}). {form}"
            ) from None
        if not isinstance(data, list):
            raise ConfigError(f"Scripted agent file {path} must hold a JSON list of reply objects.")
    for i, r in enumerate(data):
        problem = _reply_problem(r)
        if problem:
            raise ConfigError(f"Scripted agent file {path}, reply {i}: {problem}. {form}")
    return data


class ScriptedProvider:
    name = "scripted"
    supports_images = False

    def __init__(self, model: str, **_: Any) -> None:
        self.model = model
        self.path = Path(model)
        self.replies = load_script(self.path)
        self.position = 0

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
        if self.position < len(self.replies):
            d = self.replies[self.position]
        else:
            d = {"text": "(script exhausted)", "tool_calls": [{"name": "finish", "arguments": {}}]}
        self.position += 1
        reply = Reply.from_dict(d)
        chars = (
            len(system) + len(cached_context) + sum(len(str(m.get("content"))) for m in messages)
        )
        reply.usage = Usage(input_tokens=chars // 4, output_tokens=len(reply.text) // 4 + 1)
        reply.model = self.model
        return reply

    def skip(self, n: int) -> None:
        """Advance past ``n`` replies already consumed (resume replays them from the log)."""
        self.position = n

    def ping(self) -> None:
        return None
