"""A minimal ``smollab.report`` (build_report + tex_available) for tests, installed on import
only when the real one lacks them. It writes report.md and report.html so the session layout holds.
"""

from __future__ import annotations

import importlib
import os
import sys
import types
from pathlib import Path
from types import SimpleNamespace
from typing import Any


def build_report(session_dir: Any, pdf: bool = True) -> SimpleNamespace:
    d = Path(session_dir)
    md, html = d / "report.md", d / "report.html"
    md.write_text("# stub report (smollab.report not available in this checkout)\n")
    html.write_text("<html><body>stub report</body></html>\n")
    return SimpleNamespace(report_md=md, report_html=html, paper_tex=None, paper_pdf=None)


def tex_available() -> str | None:
    return None


def real_report_available() -> bool:
    try:
        mod = importlib.import_module("smollab.report")
    except Exception:
        return False
    return hasattr(mod, "build_report") and hasattr(mod, "tex_available")


def forced() -> bool:
    """``SMOLLAB_TESTS_STUB_REPORT=1`` uses the stub even where the real report imports."""
    return os.environ.get("SMOLLAB_TESTS_STUB_REPORT") == "1"


def install() -> None:
    """Give ``smollab.report`` the two functions the session and CLI import, if it lacks them."""
    try:
        mod = importlib.import_module("smollab.report")
    except Exception:
        mod = types.ModuleType("smollab.report")
        mod.__path__ = []  # type: ignore[attr-defined]
        sys.modules["smollab.report"] = mod
    if forced() or not hasattr(mod, "build_report"):
        mod.build_report = build_report  # type: ignore[attr-defined]
    if forced() or not hasattr(mod, "tex_available"):
        mod.tex_available = tex_available  # type: ignore[attr-defined]


if __name__ != "__main__" and "pytest" not in sys.modules:
    install()
