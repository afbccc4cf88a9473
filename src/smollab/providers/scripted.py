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


def load_script(path: Path) -> list[dict[str, Any]]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(
            f"Scripted agent file {path} cannot be read ({e.strerror}). Pass "
            "--agent scripted:FILE with a JSON list of replies or a session's transcript.jsonl."
        ) from None
    try:
        if Path(path).suffix == ".jsonl":
            rows = [json.loads(line) for line in text.splitlines() if line.strip()]
            return [r["reply"] for r in rows if "reply" in r]
        data = json.loads(text)
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise ConfigError(
            f"Scripted agent file {path} is not valid ({e}). It must be a JSON list of replies "
            '({"text": ..., "tool_calls": [{"name": ..., "arguments": {...}}]}) or a '
            "transcript.jsonl."
        ) from None
    if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
        raise ConfigError(f"Scripted agent file {path} must hold a JSON list of reply objects.")
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
