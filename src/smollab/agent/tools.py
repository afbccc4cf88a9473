"""The tools the model calls, with argument checking that never raises into the loop.

Every tool returns a :class:`ToolResult`; a bad argument, a path outside the session, an invalid
spec or a failed run becomes a clear error text for the model. Paths are relative to the session
folder and may not leave it, nor touch the agent's own state files (its limits live in Python,
not in any file it can write).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from smollab.agent.state import PROTECTED
from smollab.errors import SmollabError
from smollab.providers.base import ToolSpec

if TYPE_CHECKING:
    from smollab.agent.loop import Agent

MAX_READ_CHARS = 20_000
MAX_WRITE_CHARS = 200_000


@dataclass
class ToolResult:
    content: str
    ok: bool = True
    image_b64: str | None = None
    ran_study: bool = False
    finished: bool = False
    continue_research: bool = False


def _err(msg: str) -> ToolResult:
    return ToolResult(f"ERROR: {msg}", ok=False)


def _obj(props: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": props,
        "required": required,
        "additionalProperties": False,
    }


_S = {"type": "string"}
SPECS: dict[str, ToolSpec] = {
    "read_file": ToolSpec(
        "read_file",
        "Read a text file of the session folder (path relative to it).",
        _obj({"path": _S}, ["path"]),
    ),
    "write_file": ToolSpec(
        "write_file",
        "Write a text file inside the session folder, e.g. study.toml or code/plugin.py.",
        _obj({"path": _S, "content": _S}, ["path", "content"]),
    ),
    "list_results": ToolSpec(
        "list_results",
        "Summarise the latest results (exact match with intervals, comparisons, notes) and "
        "list the result files of earlier iterations.",
        _obj({}, []),
    ),
    "run_study": ToolSpec(
        "run_study",
        "Validate and run a study spec of the session (default study.toml) through the study "
        "engine; finished runs are reused. Returns the results summary or the error.",
        _obj({"path": _S}, []),
    ),
    "run_code": ToolSpec(
        "run_code",
        "Run a Python file of the session's code/ folder in the sandbox (no network, no keys, "
        "fixed limits). Returns exit status and output tails.",
        _obj({"path": _S}, ["path"]),
    ),
    "view_figure": ToolSpec(
        "view_figure",
        "Look at a figure of the session (figures/*.png).",
        _obj({"path": _S}, ["path"]),
    ),
    "finish": ToolSpec(
        "finish",
        "Stop iterating and write the paper.",
        _obj({"reason": _S}, []),
    ),
    "continue_research": ToolSpec(
        "continue_research",
        "Run another iteration.",
        _obj({"reason": _S}, []),
    ),
}

STAGE_TOOLS = {
    "plan": ["read_file", "list_results", "view_figure"],
    "act": ["read_file", "write_file", "list_results", "run_study", "run_code", "view_figure"],
    "critique": ["read_file", "list_results", "view_figure"],
    "decide": ["finish", "continue_research"],
    "write": [],
}


def check_args(name: str, args: dict[str, Any] | None, allowed: list[str]) -> str | None:
    """An error message when the call is not allowed or its arguments do not fit the schema."""
    if name not in SPECS:
        return f"unknown tool {name!r}; the tools are {', '.join(allowed)}."
    if name not in allowed:
        return f"tool {name!r} is not available in this stage; use one of {', '.join(allowed)}."
    if args is None:
        return f"the arguments of {name} must be a JSON object."
    schema = SPECS[name].parameters
    extra = set(args) - set(schema["properties"])
    if extra:
        return (
            f"{name} got unknown argument(s) {sorted(extra)}; its arguments are "
            f"{sorted(schema['properties']) or 'none'}."
        )
    for k in schema["required"]:
        if k not in args:
            return f"{name} needs the argument {k!r}."
    for k, v in args.items():
        if schema["properties"][k].get("type") == "string" and not isinstance(v, str):
            return f"{name}: argument {k!r} must be a string, got {type(v).__name__}."
    return None


def session_path(root: Path, rel: str, *, write: bool) -> Path:
    """``rel`` resolved inside ``root``; raises ValueError with the reason otherwise."""
    if not rel or rel.startswith(("/", "~")):
        raise ValueError(f"path {rel!r} must be relative to the session folder.")
    p = (root / rel).resolve()
    if not p.is_relative_to(root.resolve()):
        raise ValueError(f"path {rel!r} leaves the session folder; only files inside it.")
    if write:
        top = p.relative_to(root.resolve()).parts
        if top[0] in PROTECTED or top[0] in {"runs", "results", "paper", "data"}:
            raise ValueError(
                f"{rel!r} is written by smollab itself (state, ledger, runs, results, paper); "
                "write study.toml, notes or code/ files instead."
            )
    return p


def dispatch(agent: Agent, name: str, args: dict[str, Any]) -> ToolResult:
    """Run one already-checked tool call; every failure comes back as an error result."""
    fn: Callable[[Agent, dict[str, Any]], ToolResult] = _TOOLS[name]
    try:
        return fn(agent, args)
    except ValueError as e:
        return _err(str(e))
    except SmollabError as e:
        return _err(e.render())
    except Exception as e:  # a tool must never end the session; the log keeps the type
        return _err(f"the tool {name} failed ({type(e).__name__}: {e}).")


def _read_file(agent: Agent, a: dict[str, Any]) -> ToolResult:
    p = session_path(agent.dir, a["path"], write=False)
    if not p.is_file():
        return _err(f"{a['path']} does not exist in the session folder.")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return _err(f"{a['path']} is not a text file.")
    text = agent.state.redact(text)
    if len(text) > MAX_READ_CHARS:
        text = text[:MAX_READ_CHARS] + f"\n[... {len(text) - MAX_READ_CHARS} more characters]"
    return ToolResult(text)


def _write_file(agent: Agent, a: dict[str, Any]) -> ToolResult:
    p = session_path(agent.dir, a["path"], write=True)
    if len(a["content"]) > MAX_WRITE_CHARS:
        return _err(f"content is {len(a['content'])} characters; the limit is {MAX_WRITE_CHARS}.")
    rel = p.relative_to(agent.dir.resolve()).as_posix()
    agent.state.write_text(rel, a["content"])
    msg = f"wrote {rel} ({len(a['content'])} characters)."
    if rel.endswith(".toml"):
        from smollab.study.spec import loads_spec

        try:
            loads_spec(a["content"], rel)
            msg += " The spec is valid."
        except SmollabError as e:
            msg += f" WARNING, the spec is invalid: {e.render()}"
    return ToolResult(msg)


def _list_results(agent: Agent, a: dict[str, Any]) -> ToolResult:
    return ToolResult(agent.results_summary())


def _run_study(agent: Agent, a: dict[str, Any]) -> ToolResult:
    rel = a.get("path") or "study.toml"
    p = session_path(agent.dir, rel, write=False)
    if not p.is_file():
        return _err(f"{rel} does not exist; write it with write_file first.")
    summary = agent.run_study_file(p)
    return ToolResult(summary, ran_study=True)


def _run_code(agent: Agent, a: dict[str, Any]) -> ToolResult:
    p = session_path(agent.dir, a["path"], write=False)
    code_dir = (agent.dir / "code").resolve()
    if not p.is_relative_to(code_dir) or p.suffix != ".py" or not p.is_file():
        return _err("run_code runs an existing .py file of the session's code/ folder.")
    try:
        from smollab.sandbox import Sandbox
    except ImportError:
        return _err("the sandbox is not available in this installation; use library primitives.")
    files = {
        f.relative_to(code_dir).as_posix(): f.read_text(encoding="utf-8")
        for f in code_dir.rglob("*.py")
        if f != p
    }
    try:
        # the limits are the Agent's (set by the user), never an argument the model can pass
        box = Sandbox(agent.sandbox_limits) if agent.sandbox_limits is not None else Sandbox()
        verdict = box.run(p.read_text(encoding="utf-8"), files=files)
    except SmollabError as e:
        return _err(f"the sandbox refused to run: {e.render()}")
    return ToolResult(agent.state.redact(json.dumps(verdict.to_json())), ok=verdict.passed)


def _view_figure(agent: Agent, a: dict[str, Any]) -> ToolResult:
    p = session_path(agent.dir, a["path"], write=False)
    if p.suffix != ".png" or not p.is_file():
        figs = sorted(x.relative_to(agent.dir).as_posix() for x in agent.dir.glob("figures/*.png"))
        return _err(f"{a['path']} is not a PNG figure of the session; figures: {figs}")
    if not agent.provider.supports_images:
        return ToolResult(
            f"{a['path']}: this model cannot view images; the data behind every figure is in "
            "the results (list_results)."
        )
    return ToolResult(f"figure {a['path']}", image_b64=base64.b64encode(p.read_bytes()).decode())


def _finish(agent: Agent, a: dict[str, Any]) -> ToolResult:
    return ToolResult("finishing: the paper will be written next.", finished=True)


def _continue(agent: Agent, a: dict[str, Any]) -> ToolResult:
    return ToolResult("continuing with the next iteration.", continue_research=True)


_TOOLS: dict[str, Callable[[Agent, dict[str, Any]], ToolResult]] = {
    "read_file": _read_file,
    "write_file": _write_file,
    "list_results": _list_results,
    "run_study": _run_study,
    "run_code": _run_code,
    "view_figure": _view_figure,
    "finish": _finish,
    "continue_research": _continue,
}
