"""The paper: the report layer's paper plus the agent's verified prose, compiled with a bounded
fix loop.

:func:`insert_prose` puts the rendered prose into ``paper.tex`` as a section before the
limitations. The agent's write-up step (``Agent._write_up`` in :mod:`smollab.agent.loop`)
compiles it with the report layer's ``build_pdf`` (which never replaces a good PDF with a
failed build) and keeps every compiled version as ``paper/versions/paper-vN.pdf``. Prose
that passed the number check but still breaks LaTeX when the fix loop is spent is left out of
the paper for :func:`not_compiled_note` (it stays in ``paper/prose.tex``), so that a session
still ends with a PDF.

Two things a reader must not miss are stated in the report and the paper themselves, not only in
the session log: :func:`disclose` puts :func:`fallback_sentence` (the problem's reference
protocol ran in place of the agent's study, and why) near the top of ``report.md`` and
``report.html`` and at the start of the paper's method section; and a reply that is no write-up
(:func:`missing_write_up`: empty, a lone placeholder such as ``(script exhausted)``) never
becomes the paper's text: the offline write-up stays, with :func:`no_write_up_note`.
"""

from __future__ import annotations

import html
import re
import shutil
from pathlib import Path
from typing import Any

SECTION = "\\section{Analysis by the research agent}"
MARK = "\\section{Limitations}"


def insert_prose(tex: str, prose: str, *, verified: bool = True) -> str:
    """``tex`` with ``prose`` as its own section before the limitations (or the end);
    ``verified`` False: the section holds smollab's note (prose withheld, missing, or left out
    because it did not compile)."""
    comment = (
        "% Written by the research agent; every number in it was checked against "
        "results.json (see claims.json)."
        if verified
        else "% Written by smollab: the agent's prose is not in this paper (see claims.json)."
    )
    block = f"{SECTION}\n{comment}\n{prose.strip()}\n\n"
    if MARK in tex:
        return tex.replace(MARK, block + MARK, 1)
    return tex.replace("\\end{document}", block + "\\end{document}", 1)


def not_compiled_note(attempts: int) -> str:
    """The text that stands in the agent's section when its verified prose still broke LaTeX
    after ``attempts`` compiles (the prose itself is kept in ``paper/prose.tex``)."""
    return (
        "The research agent's analysis passed the number check but did not compile in LaTeX "
        f"after {attempts} attempts, so it is not typeset here: its text is kept in "
        "paper/prose.tex, and the TeX error in session_log.jsonl. Every other section of this "
        "document is smollab's offline write-up of the results."
    )


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


# a lone remark in parentheses: the scripted provider's "(script exhausted)", "(no reply)"
_PLACEHOLDER = re.compile(r"^\([^()]*\)$")
MIN_WORDS = 3


def missing_write_up(prose: str) -> str | None:
    """Why ``prose`` is no write-up (None when it is one): empty, a lone parenthesised
    placeholder, or fewer than :data:`MIN_WORDS` words."""
    text = prose.strip()
    if not text:
        return "the model's reply was empty"
    if _PLACEHOLDER.match(text) or len(text.split()) < MIN_WORDS:
        short = text if len(text) <= 80 else text[:77] + "..."
        return f"the model's reply was no write-up: {short!r}"
    return None


def no_write_up_note() -> str:
    """The text that stands in the agent's section when it wrote nothing usable (what it
    replied is in ``paper/claims.json`` and the transcript, not in the paper)."""
    return (
        "The research agent produced no write-up: its replies to the write-up request held no "
        "prose (see paper/claims.json). Every other section of this document is smollab's "
        "offline write-up of the results, the one a session without an agent produces."
    )


def fallback_sentence(info: dict[str, Any]) -> str:
    """One sentence: the problem's reference protocol ran in place of the agent's study.

    ``info`` is the ``fallback_run`` record's result: ``reason`` (why the agent's study did not
    run) and ``ok`` (False: the agent's spec was invalid)."""
    reason = str(info.get("reason") or "").strip()
    if not reason:
        reason = (
            "the agent's study spec was invalid"
            if info.get("ok") is False
            else "the agent ran no study"
        )
    return (
        f"The research agent's own study did not run ({reason.rstrip('.')}), so smollab ran "
        "the problem's reference protocol in its place: every result here comes from that "
        "protocol, not from a design of the agent's."
    )


def disclose_md(md: str, sentence: str) -> str:
    """``sentence`` as a note before the first ``## `` heading of a Markdown report."""
    block = f"> **Note.** {sentence}\n\n"
    at = md.find("\n## ")
    if at < 0:
        return block + md
    return md[: at + 1] + block + md[at + 1 :]


def disclose_html(page: str, sentence: str) -> str:
    """``sentence`` as a paragraph before the first ``<h2`` of an HTML report."""
    block = f"<p><strong>Note.</strong> {html.escape(sentence)}</p>\n"
    at = page.find("<h2")
    if at < 0:
        at = page.find("</body>")
    return page + block if at < 0 else page[:at] + block + page[at:]


def disclose_tex(tex: str, sentence: str) -> str:
    """``sentence`` as the first paragraph of the method section (else after the abstract,
    else after ``\\maketitle``, else at the start of the document body)."""
    from smollab.report.render import latex_escape

    block = f"\\paragraph{{Note.}} {latex_escape(sentence)}\n\n"
    m = re.search(r"\\section\*?\{Methods?\}[^\n]*\n", tex)
    if m is None:
        m = re.search(r"\\end\{abstract\}[^\n]*\n|\\maketitle[^\n]*\n", tex)
    if m is None:
        m = re.search(r"\\begin\{document\}[^\n]*\n", tex)
    if m is None:
        return block + tex
    return tex[: m.end()] + block + tex[m.end() :]
