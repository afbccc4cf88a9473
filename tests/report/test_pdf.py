"""PDF build: engine choice, a failed or hung build keeps the previous PDF (fake engines)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from smollab.report import tex_available
from smollab.report.pdf import build_pdf

FAIL = "#!/bin/sh\necho 'fake engine: ! LaTeX Error'\nexit 1\n"
HANG = "#!/bin/sh\nexec /bin/sleep 30\n"
# writes a PDF into -output-directory=..., like pdflatex (shell builtins only: PATH is fake)
OK = """#!/bin/sh
for a in "$@"; do case "$a" in -output-directory=*) d="${a#*=}";; esac; done
printf '%%PDF-1.5 new\\n' > "$d/paper.pdf"
"""


def fake_engines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **scripts: str) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, body in scripts.items():
        exe = bin_dir / name
        exe.write_text(body)
        exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", str(bin_dir))


def paper_dir(tmp_path: Path) -> Path:
    d = tmp_path / "session" / "paper"
    d.mkdir(parents=True)
    (d / "paper.tex").write_text("\\documentclass{article}\\begin{document}x\\end{document}\n")
    (d / "paper.pdf").write_bytes(b"%PDF-1.4 previous good build\n")
    return d


def test_engine_choice(tmp_path, monkeypatch):
    fake_engines(tmp_path, monkeypatch, latexmk=OK)
    assert tex_available() is None  # latexmk without pdflatex cannot build
    (tmp_path / "bin" / "pdflatex").write_text(OK)
    (tmp_path / "bin" / "pdflatex").chmod(0o755)
    assert tex_available() == "latexmk"
    (tmp_path / "bin" / "latexmk").unlink()
    assert tex_available() == "pdflatex"


def test_failed_build_keeps_previous_pdf(tmp_path, monkeypatch):
    d = paper_dir(tmp_path)
    fake_engines(tmp_path, monkeypatch, pdflatex=FAIL)
    assert build_pdf(d / "paper.tex") is None
    assert (d / "paper.pdf").read_bytes() == b"%PDF-1.4 previous good build\n"
    log = (d / "build.log").read_text()
    assert "fake engine: ! LaTeX Error" in log and "FAILED" in log
    assert sorted(p.name for p in d.iterdir()) == ["build.log", "paper.pdf", "paper.tex"]


def test_hung_build_is_killed_and_keeps_previous_pdf(tmp_path, monkeypatch):
    d = paper_dir(tmp_path)
    fake_engines(tmp_path, monkeypatch, pdflatex=HANG)
    assert build_pdf(d / "paper.tex", timeout=0.5) is None
    assert (d / "paper.pdf").read_bytes().startswith(b"%PDF-1.4 previous")
    assert "killed after" in (d / "build.log").read_text()


def test_successful_build_replaces_pdf(tmp_path, monkeypatch):
    d = paper_dir(tmp_path)
    fake_engines(tmp_path, monkeypatch, pdflatex=OK)
    assert build_pdf(d / "paper.tex") == d / "paper.pdf"
    assert (d / "paper.pdf").read_bytes() == b"%PDF-1.5 new\n"


def test_no_engine_skips(tmp_path, monkeypatch):
    d = paper_dir(tmp_path)
    fake_engines(tmp_path, monkeypatch)
    assert build_pdf(d / "paper.tex") is None
    assert (d / "paper.pdf").is_file()
    assert "no TeX engine" in (d / "build.log").read_text()


@pytest.mark.slow
@pytest.mark.skipif(tex_available() is None, reason="no TeX engine installed")
def test_real_tex_builds_the_paper(tmp_path):
    from smollab.report import build_report

    from .conftest import make_session

    paths = build_report(make_session(tmp_path), pdf=True)
    assert paths.paper_pdf is not None and paths.paper_pdf.read_bytes()[:5] == b"%PDF-"
    assert "build succeeded" in (tmp_path / "paper" / "build.log").read_text()
