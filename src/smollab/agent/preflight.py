"""Preflight: everything that can fail is checked before the first paid call, in one table.

Rows: the key works (one minimal call), the model exists (the same call: a 404 names the model),
the sandbox works, TeX is present (else the PDF is skipped), disk space, and the problem's
models and data. A failing key, quota or outage raises the provider's one-line error; other
failures raise :class:`~smollab.errors.ConfigError`; warnings (no TeX, no sandbox) are shown.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from smollab.errors import ConfigError, SmollabError
from smollab.providers.base import Provider
from smollab.study.problem import Problem

MIN_FREE_GB = 1.0


@dataclass
class Check:
    name: str
    status: str  # "ok" | "warn" | "fail"
    detail: str


def _sandbox() -> Check:
    try:
        from smollab.sandbox import sandbox_status
    except ImportError:
        return Check("sandbox", "warn", "smollab.sandbox not installed: run_code is disabled")
    reason = sandbox_status()
    if reason is None:
        return Check("sandbox", "ok", "bubblewrap sandbox works")
    return Check("sandbox", "warn", f"unavailable ({reason}): run_code is disabled")


def preflight(provider: Provider, problem: Problem, out_root: Path) -> list[Check]:
    """Run every check; raise on the first fatal failure *after* collecting the table rows
    that precede it (the caller prints them either way via ``checks``)."""
    from smollab.report import tex_available

    checks: list[Check] = []
    if provider.name == "scripted":
        checks.append(Check("key", "ok", "scripted provider: no key needed"))
    else:
        try:
            provider.ping()
        except SmollabError as e:
            checks.append(Check("key / model", "fail", e.message))
            raise
        checks.append(Check("key / model", "ok", f"{provider.name}:{provider.model} answered"))
    checks.append(_sandbox())
    engine = tex_available()
    checks.append(
        Check("TeX", "ok", engine)
        if engine
        else Check("TeX", "warn", "no latexmk/pdflatex: paper.tex is written, paper.pdf skipped")
    )
    out_root.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(out_root).free / 1e9
    checks.append(Check("disk", "ok" if free >= MIN_FREE_GB else "fail", f"{free:.1f} GB free"))
    try:
        from smollab.models.loader import check_source

        for m in problem.spec.models:
            check_source(m.source)
        checks.append(
            Check("models / data", "ok", ", ".join(m.source for m in problem.spec.models))
        )
    except SmollabError as e:
        checks.append(Check("models / data", "fail", e.message))
    bad = [c for c in checks if c.status == "fail"]
    if bad:
        raise ConfigError(
            "Preflight failed: "
            + "; ".join(f"{c.name}: {c.detail}" for c in bad)
            + ". Fix these before any model call is paid for."
        )
    return checks
