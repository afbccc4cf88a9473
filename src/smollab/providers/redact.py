"""Keep API keys out of every file and log a session writes.

:class:`Redactor` knows the secret values in the environment (variables whose names look like
keys, tokens or passwords) plus the usual key shapes (``sk-...``, ``sk-ant-...``), and replaces
them with ``[REDACTED]``. The agent writes every session file through it, installs it as a
logging filter, and sweeps the session's text files when the session ends on any path (a
backstop for files that library code writes directly).
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

MASK = "[REDACTED]"
_SECRET_NAME = re.compile(r"(API_?KEY|TOKEN|SECRET|PASSWORD|PASSWD|_KEY$|^KEY$)", re.I)
_KEY_SHAPES = re.compile(r"\b(sk-ant-[A-Za-z0-9_\-]{10,}|sk-[A-Za-z0-9_\-]{20,})")
_TEXT_SUFFIXES = {
    ".txt",
    ".json",
    ".jsonl",
    ".md",
    ".toml",
    ".tex",
    ".log",
    ".html",
    ".py",
    ".csv",
    ".yaml",
}
_MAX_SWEEP_BYTES = 20_000_000


class Redactor:
    def __init__(self, extra: list[str] | None = None) -> None:
        vals = {
            v
            for k, v in os.environ.items()
            if _SECRET_NAME.search(k) and len(v) >= 8 and not v.startswith("/")
        }
        vals.update(x for x in extra or [] if len(x) >= 8)
        # longest first, so a key that contains another is masked whole
        self.secrets = sorted(vals, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for s in self.secrets:
            if s in text:
                text = text.replace(s, MASK)
        return _KEY_SHAPES.sub(MASK, text)

    def sweep(self, root: Path) -> list[Path]:
        """Rewrite any text file under ``root`` that contains a secret; return those files."""
        from smollab.io import atomic_write_text

        fixed = []
        for p in Path(root).rglob("*"):
            if p.suffix not in _TEXT_SUFFIXES or not p.is_file():
                continue
            if p.stat().st_size > _MAX_SWEEP_BYTES:
                continue
            try:
                text = p.read_text(encoding="utf-8")
            except (UnicodeDecodeError, OSError):
                continue
            clean = self(text)
            if clean != text:
                atomic_write_text(p, clean)
                fixed.append(p)
        return fixed

    def logging_filter(self) -> logging.Filter:
        red = self

        class _Filter(logging.Filter):
            def filter(self, record: logging.LogRecord) -> bool:
                record.msg = red(record.getMessage())
                record.args = ()
                return True

        return _Filter()
