"""Problem files: a research question in Markdown plus its reference protocol.

The reference protocol is the first fenced ```toml block in the file: a study spec. With no LLM
configured, ``smollab run`` executes it as is.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from smollab.errors import ConfigError
from smollab.study.spec import StudySpec, loads_spec

_FENCE = re.compile(r"^```toml[ \t]*\n(.*?)^```", re.S | re.M)


@dataclass
class Problem:
    path: Path
    text: str
    title: str
    protocol_text: str
    spec: StudySpec


def _is_study_spec(path: Path, text: str) -> bool:
    """Whether ``text`` is a study spec given where a problem file belongs: a .toml file, or
    TOML with a [study] table under another name (the mix-up `smollab run SPEC.toml`)."""
    if path.suffix.lower() == ".toml":
        return True
    try:
        return isinstance(tomllib.loads(text).get("study"), dict)
    except tomllib.TOMLDecodeError:
        return False


def load_problem(path: str | Path) -> Problem:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"Problem file {path} does not exist. Pass a Markdown problem file such as "
            "problems/multiplication.md."
        ) from None
    except (IsADirectoryError, PermissionError, UnicodeDecodeError) as e:
        raise ConfigError(f"Problem file {path} cannot be read ({e}).") from None
    m = _FENCE.search(text)
    opening = re.search(r"^[ \t]*```[ \t]*toml\b", text, re.M | re.I)
    if not m and opening:
        line = text.count("\n", 0, opening.start()) + 1
        raise ConfigError(
            f"Problem file {path}, line {line}: the reference protocol's fence "
            f"{opening.group(0).strip()!r} is not a closed ```toml block. Start it with ```toml "
            "at the beginning of a line (lower case, not indented) and close it with ``` on a "
            "line of its own."
        )
    if not m and _is_study_spec(path, text):
        raise ConfigError(
            f"{path} is a study spec (TOML), not a problem file (Markdown). Run it with "
            f"`smollab study {path}`; `smollab run` takes a Markdown problem file such as "
            "problems/multiplication.md, whose ```toml block is its reference protocol."
        )
    if not m:
        raise ConfigError(
            f"Problem file {path} has no reference protocol: add a fenced ```toml block with a "
            "study spec (see problems/multiplication.md). Every problem needs one: without an "
            "agent it runs as is, and an agent starts from it (and falls back to it)."
        )
    title_m = re.search(r"^#\s+(.+)$", text, re.M)
    # blank lines for the Markdown above the block: a TOML error's line number is the file's
    lead = "\n" * text.count("\n", 0, m.start(1))
    spec = loads_spec(lead + m.group(1), f"{path} (reference protocol)")
    return Problem(path, text, title_m.group(1).strip() if title_m else path.stem, m.group(1), spec)
