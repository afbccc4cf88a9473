"""The paper: the report layer's paper plus the agent's verified prose, compiled with a bounded
fix loop.

:func:`insert_prose` puts the rendered prose into ``paper.tex`` as a section before the
limitations. :func:`compile_versions` compiles it with the report layer's ``build_pdf`` (which
never replaces a good PDF with a failed build) and keeps every compiled version as
``paper/versions/paper-vN.pdf``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

SECTION = "\\section{Analysis by the research agent}"
MARK = "\\section{Limitations}"


def insert_prose(tex: str, prose: str) -> str:
    """``tex`` with ``prose`` as its own section before the limitations (or the end)."""
    block = (
        f"{SECTION}\n% Written by the research agent; every number in it was checked against "
        f"results.json (see claims.json).\n{prose.strip()}\n\n"
    )
    if MARK in tex:
        return tex.replace(MARK, block + MARK, 1)
    return tex.replace("\\end{document}", block + "\\end{document}", 1)


def keep_version(paper_dir: Path, pdf: Path) -> Path:
    """Copy a freshly compiled PDF to ``versions/paper-vN.pdf`` (N = next free number)."""
    vdir = paper_dir / "versions"
    vdir.mkdir(exist_ok=True)
    n = len(list(vdir.glob("paper-v*.pdf"))) + 1
    dst = vdir / f"paper-v{n}.pdf"
    shutil.copyfile(pdf, dst)
    return dst


def log_tail(paper_dir: Path, n_chars: int = 2000) -> str:
    log = paper_dir / "build.log"
    if not log.exists():
        return "(no build log)"
    text = log.read_text(encoding="utf-8", errors="replace")
    errs = [ln for ln in text.splitlines() if ln.startswith("!") or "Error" in ln]
    return ("\n".join(errs[:10]) + "\n...\n" + text[-n_chars:]) if errs else text[-n_chars:]
