"""The agent's session state: files written through the redactor, the log, the transcript.

``transcript.jsonl`` is what makes resume exact. Every model reply is appended (with its call
number, iteration and stage) *after* it arrives, and every tool result after the tool finishes.
Resuming replays the loop from the start: recorded replies and tool results are reused, so
nothing is paid for or run twice, and the first call or tool without a record runs live. A crash
in the middle of a model call therefore repeats that one call; a crash in the middle of a
training run re-runs the ``run_study`` tool, which resumes training from its last checkpoint.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from smollab.io import (
    append_jsonl,
    atomic_write_json,
    atomic_write_text,
    dumps,
    read_json,
    read_jsonl,
)
from smollab.providers.redact import Redactor

#: files the agent's own tools may never write (its state, its ledger, its limits)
PROTECTED = {"session.json", "metrics.json", "transcript.jsonl", "session_log.jsonl", "limits.json"}


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def session_json_hint(session_dir: Path) -> str:
    """How on from an agent session's ``session.json`` that cannot be used. Not "delete it":
    the file alone holds the launch settings ``smollab resume`` needs, and without its
    ``iteration`` a restart would forget what the session already spent."""
    import shlex

    d = Path(session_dir)
    return (
        "It holds the agent session's launch settings (agent, budget, iterations) and the "
        "iteration it reached, which `smollab resume` needs; nothing was changed or deleted. "
        "Restore it from a backup and run the command again, or start afresh in a new session "
        f"folder: `smollab run {shlex.quote(str(d / 'problem.md'))} --agent AGENT "
        "--session-name NEW` (or another --out); this session's transcript, runs and results "
        "stay as they are."
    )


def read_session_json(session_dir: Path) -> dict[str, Any]:
    """``session.json`` of an agent session ({} when there is none); one that is not a JSON
    object raises :class:`~smollab.errors.CorruptFile` with :func:`session_json_hint`."""
    from smollab.errors import CorruptFile

    path = Path(session_dir) / "session.json"
    if not path.exists():
        return {}
    try:
        return read_json(path)
    except CorruptFile as e:
        raise CorruptFile(e.message, hint=session_json_hint(session_dir)) from None


class AgentState:
    def __init__(self, session_dir: Path, redactor: Redactor) -> None:
        self.dir = Path(session_dir)
        self.redact = redactor
        self.transcript_path = self.dir / "transcript.jsonl"
        self.log_path = self.dir / "session_log.jsonl"
        self._replies: dict[int, dict[str, Any]] = {}
        self._tools: dict[tuple[int, str], dict[str, Any]] = {}

    # -------------------------------------------------------------- files, all redacted

    def write_text(self, rel: str, text: str) -> Path:
        return atomic_write_text(self.dir / rel, self.redact(text))

    def write_json(self, rel: str, obj: Any) -> Path:
        return atomic_write_text(self.dir / rel, self.redact(dumps(obj)) + "\n")

    def append_text(self, rel: str, text: str) -> None:
        p = self.dir / rel
        old = p.read_text(encoding="utf-8") if p.exists() else ""
        atomic_write_text(p, old + self.redact(text))

    def log(self, event: str, **data: Any) -> None:
        import json

        row = json.loads(self.redact(dumps({"time": now(), "event": event, **data}, indent=None)))
        append_jsonl(self.log_path, row)

    def set_stage(self, iteration: int, stage: str, **extra: Any) -> None:
        """Record where the loop is in ``session.json`` (merged with what is there)."""
        prev = read_session_json(self.dir) or {"created": now()}
        atomic_write_json(
            self.dir / "session.json",
            {
                **prev,
                "iteration": iteration,
                "stage": stage,
                "agent_stage": stage,
                "updated": now(),
                **extra,
            },
        )

    def session_info(self) -> dict[str, Any]:
        return read_session_json(self.dir)

    # -------------------------------------------------------------- transcript

    def load_transcript(self, before_iteration: int | None = None) -> None:
        """Load recorded replies and tool results; with ``before_iteration`` drop (and rewrite
        the file without) every record of that iteration and later."""
        if not self.transcript_path.exists():
            return
        rows = read_jsonl(self.transcript_path)
        if before_iteration is not None:
            rows = [r for r in rows if r["iteration"] < before_iteration]
            atomic_write_text(
                self.transcript_path, "".join(dumps(r, indent=None) + "\n" for r in rows)
            )
        for r in rows:
            if r["kind"] == "reply":
                self._replies[r["call"]] = r
            else:
                self._tools[(r["call"], r["tool_call_id"])] = r

    def recorded_reply(self, call: int) -> dict[str, Any] | None:
        return self._replies.get(call)

    def recorded_tool(self, call: int, tool_call_id: str) -> dict[str, Any] | None:
        return self._tools.get((call, tool_call_id))

    def record(self, row: dict[str, Any]) -> None:
        import json

        append_jsonl(self.transcript_path, json.loads(self.redact(dumps(row, indent=None))))

    def n_recorded(self) -> int:
        return len(self._replies)

    def iter_replies(self) -> Iterator[dict[str, Any]]:
        for k in sorted(self._replies):
            yield self._replies[k]
