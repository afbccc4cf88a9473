"""When the agent's verified prose still breaks LaTeX after the fix loop, the paper is built
with smollab's note in its place: a session ends with a paper.pdf, and the prose is kept."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from smollab.agent import Agent, Limits
from smollab.agent.loop import MAX_LATEX_ATTEMPTS
from smollab.io import read_json, read_jsonl
from smollab.report import tex_available
from smollab.study.problem import load_problem
from tests.agent.scripts import scripted_agent

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "results_sample.json"
REF = "{{conditions.finetune_full.tasks.mul.overall.exact_match.estimate|pct}}"


def _agent(tmp: Path, replies: list[dict[str, Any]]) -> Agent:
    a = scripted_agent(tmp, replies, name="w", limits=Limits(pdf=True))
    (a.dir / "results").mkdir(parents=True)
    shutil.copyfile(FIXTURE, a.dir / "results" / "results.json")
    (a.dir / "study.toml").write_text(load_problem(tmp / "problem.md").protocol_text)
    return a


def _check_fallback(a: Agent, pdf: Path | None, bad: str) -> None:
    paper = a.dir / "paper"
    assert pdf == paper / "paper.pdf" and pdf.read_bytes()[:5] == b"%PDF-"
    tex = (paper / "paper.tex").read_text()
    # paper.tex on disk is the version the PDF was built from: smollab's note, not the prose
    assert bad not in tex and "did not compile" in tex and "paper/prose.tex" in tex
    # the prose is kept, verified and rendered, where the note says
    assert bad in (paper / "prose.tex").read_text()
    assert f"{0.5495 * 100:.1f}\\%" in (paper / "prose.tex").read_text()
    assert [p.name for p in (paper / "versions").glob("*.pdf")] == ["paper-v1.pdf"]
    claims = read_json(paper / "claims.json")
    assert claims["ok"] is True and claims["prose_in_paper"] is False
    log = read_jsonl(a.dir / "session_log.jsonl")
    assert [e["ok"] for e in log if e["event"] == "latex"] == [False] * MAX_LATEX_ATTEMPTS
    left = [e for e in log if e["event"] == "prose_left_out"]
    assert len(left) == 1 and left[0]["ok"] is True


def test_prose_that_never_compiles_is_replaced_by_a_note(
    tmp_path: Path, report_ready: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fast: a fake engine that fails on the agent's macro, as pdflatex would."""
    if not report_ready:
        pytest.skip("needs the real report package")
    import smollab.report.pdf as pdfmod

    def fake_build(tex: Path, **kw: Any) -> Path | None:
        (tex.parent / "build.log").write_text("! Undefined control sequence \\badmacro\n")
        if "\\badmacro" in tex.read_text():
            return None
        out = tex.with_suffix(".pdf")
        out.write_bytes(b"%PDF-1.5 fake\n")
        return out

    monkeypatch.setattr(pdfmod, "build_pdf", fake_build)
    monkeypatch.setattr("smollab.report.tex_available", lambda: "pdflatex")
    a = _agent(tmp_path, [{"text": f"We saw {REF} \\badmacro."}] * MAX_LATEX_ATTEMPTS)
    ok, pdf = a._write_up(1)
    assert ok
    _check_fallback(a, pdf, "\\badmacro")


def test_when_the_paper_fails_without_the_prose_too_the_prose_stays(
    tmp_path: Path, report_ready: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The prose was not the fault: paper.tex keeps it, and no PDF is claimed."""
    if not report_ready:
        pytest.skip("needs the real report package")
    import smollab.report.pdf as pdfmod

    monkeypatch.setattr(pdfmod, "build_pdf", lambda tex, **kw: None)
    monkeypatch.setattr("smollab.report.tex_available", lambda: "pdflatex")
    a = _agent(tmp_path, [{"text": f"We saw {REF} here."}] * MAX_LATEX_ATTEMPTS)
    ok, pdf = a._write_up(1)
    assert ok and pdf is None
    assert "We saw" in (a.dir / "paper" / "paper.tex").read_text()
    assert read_json(a.dir / "paper" / "claims.json")["prose_in_paper"] is True
    log = read_jsonl(a.dir / "session_log.jsonl")
    assert [e["ok"] for e in log if e["event"] == "prose_left_out"] == [False]


def test_the_cli_says_the_prose_was_left_out(tmp_path: Path) -> None:
    from smollab.cli.agent import _prose_left_out_note

    assert _prose_left_out_note({"ok": True, "prose_in_paper": True}, tmp_path) is None
    assert _prose_left_out_note({}, tmp_path) is None  # sessions from before the field
    note = _prose_left_out_note({"ok": True, "prose_in_paper": False}, tmp_path)
    assert note and str(tmp_path / "paper" / "prose.tex") in note and "prose_left_out" in note


@pytest.mark.skipif(tex_available() is None, reason="no TeX engine installed")
def test_real_tex_on_prose_with_unescaped_specials(
    tmp_path: Path, report_ready: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real engine on a one-page paper (the report layer's is stood in for, to stay fast):
    prose with an unescaped ``_``, ``&`` and ``#`` fails every time, the note compiles."""
    if not report_ready:
        pytest.skip("needs the real report package")
    a = _agent(tmp_path, [{"text": f"We saw {REF} on x_y & z #."}] * MAX_LATEX_ATTEMPTS)

    def tiny_report() -> Path:
        tex = a.dir / "paper" / "paper.tex"
        tex.parent.mkdir(parents=True, exist_ok=True)
        tex.write_text(
            "\\documentclass{article}\n\\begin{document}\nResults.\n\n"
            "\\section{Limitations}\nFew seeds.\n\\end{document}\n"
        )
        return tex

    monkeypatch.setattr(a, "_report", tiny_report)
    ok, pdf = a._write_up(1)
    assert ok
    _check_fallback(a, pdf, "x_y & z #")
    assert "build succeeded" in (a.dir / "paper" / "build.log").read_text()
