"""What is always in the model's context: the library's API reference and a code summary.

:func:`api_reference` is generated from the docstrings and pydantic field descriptions of the
study spec, the task and prompt-format registries and the model sources, so it cannot drift from
the code. :func:`summarize_code` condenses a directory (``--code DIR``) to module docstrings and
top-level signatures within a token budget.
"""

from __future__ import annotations

import ast
import inspect
from pathlib import Path
from typing import Any

from pydantic import BaseModel

CHARS_PER_TOKEN = 4


def _model_doc(cls: type[BaseModel], header: str) -> list[str]:
    lines = [f"### {header}", (inspect.getdoc(cls) or "").split("\n\n")[0]]
    for name, f in cls.model_fields.items():
        ann = getattr(f.annotation, "__name__", None) or str(f.annotation).replace("typing.", "")
        default = (
            "required"
            if f.is_required()
            else f"default {f.get_default(call_default_factory=True)!r}"
        )
        desc = f" - {f.description}" if f.description else ""
        lines.append(f"- `{name}`: {ann}, {default}{desc}")
    return lines


def api_reference() -> str:
    """The study-spec reference (every table and field), tasks and prompt formats."""
    from smollab.study import spec as S
    from smollab.tasks import PROMPT_FORMATS, TASKS

    lines = ["# smollab API reference (generated from docstrings)", ""]
    lines += (inspect.getdoc(S) or "").splitlines()
    lines.append("")
    spec_tables: list[tuple[type[BaseModel], str]] = [
        (S.StudyMeta, "[study]"),
        (S.ModelSpec, "[[models]]"),
        (S.ConditionSpec, "[[conditions]]"),
        (S.TrainSpec, "[conditions.train]"),
        (S.EvalSpec, "[eval]"),
        (S.ExecutionSpec, "[execution]"),
    ]
    for cls, header in spec_tables:
        lines += _model_doc(cls, header)
        lines.append("")
    lines.append("### [[tasks]] (`id`, `task`, then the task's own fields)")
    # in the registry's order: a set's order changes from process to process, and the
    # reference is the start of every prompt (a provider's prompt cache keys on its bytes)
    seen: list[type] = []
    for name in TASKS.names():
        entry = TASKS.get(name)
        cfg = entry[0] if isinstance(entry, tuple) else None
        lines.append(f"- task `{name}`" + (f" (fields: {cfg.__name__})" if cfg else ""))
        if isinstance(cfg, type) and issubclass(cfg, BaseModel) and cfg not in seen:
            seen.append(cfg)
    for cfg in seen:
        lines += _model_doc(cfg, f"{cfg.__name__} fields")
    lines.append("")
    lines.append("### prompt formats (`format` of a condition)")
    for name in PROMPT_FORMATS.names():
        fmt = PROMPT_FORMATS.get(name)
        doc = (getattr(fmt, "description", None) or inspect.getdoc(fmt) or "").split("\n")[0]
        lines.append(f"- `{name}`: {doc}")
    return "\n".join(lines) + "\n"


def _signature(node: ast.AST) -> str:
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
        return f"def {node.name}({ast.unparse(node.args)})"
    if isinstance(node, ast.ClassDef):
        return f"class {node.name}"
    return ""


def summarize_code(root: Path, token_budget: int = 4000) -> str:
    """Module docstrings and top-level signatures of ``root``'s Python files, shortest paths
    first, cut at ``token_budget`` tokens (~4 characters each) with a note of what was left out.
    """
    root = Path(root)
    # room is kept for the closing note, so the whole summary stays within the budget
    budget = token_budget * CHARS_PER_TOKEN - 160
    files = sorted(
        (p for p in root.rglob("*.py") if not any(part.startswith(".") for part in p.parts)),
        key=lambda p: (len(p.relative_to(root).parts), str(p)),
    )
    out = [f"# Code in {root.name}/ (summary: docstrings and signatures)"]
    used = len(out[0])
    left: list[str] = []
    for p in files:
        rel = p.relative_to(root).as_posix()
        try:
            tree = ast.parse(p.read_text(encoding="utf-8", errors="replace"))
        except SyntaxError:
            block = [f"## {rel} (does not parse)"]
        else:
            doc = (ast.get_docstring(tree) or "").split("\n\n")[0]
            block = [f"## {rel}" + (f": {doc}" if doc else "")]
            for node in tree.body:
                sig = _signature(node)
                if sig:
                    d = ast.get_docstring(node)  # type: ignore[arg-type]
                    block.append(f"- {sig}" + (f": {d.splitlines()[0]}" if d else ""))
        text = "\n".join(block)
        if used + len(text) > budget:
            left.append(rel)
            continue
        out.append(text)
        used += len(text)
    if left:
        out.append(f"({len(left)} more files left out by the token budget, e.g. {left[0]})")
    return "\n".join(out) + "\n"


def context_block(problem_text: str, code_summary: str | None) -> str:
    """The cached part of every prompt: problem, API reference, optional code summary."""
    parts: list[Any] = ["# The research problem", problem_text, api_reference()]
    if code_summary:
        parts.append(code_summary)
    return "\n\n".join(parts)
