"""Build ``paper/paper.pdf`` with whatever TeX engine is installed, never losing a good PDF.

The engine runs in the paper dir (so ``../figures/*.pdf`` resolve) with its output directory set
to a fresh temp dir inside it; the new PDF replaces ``paper.pdf`` only when the build succeeds.
The whole engine output and TeX log go to ``paper/build.log``. A build that hangs is killed
(with its children: latexmk starts pdflatex) after ``timeout`` seconds.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

from smollab.io import atomic_write_text

TIMEOUT_S = 120


def tex_available() -> str | None:
    """The engine :func:`build_pdf` will use: ``"latexmk"``, ``"pdflatex"``, or None."""
    if shutil.which("pdflatex") is None:
        return None  # latexmk -pdf needs pdflatex too
    return "latexmk" if shutil.which("latexmk") else "pdflatex"


def _commands(engine: str, tex: str, outdir: str) -> list[list[str]]:
    flags = ["-interaction=nonstopmode", "-halt-on-error"]
    if engine == "latexmk":
        return [["latexmk", "-pdf", *flags, f"-outdir={outdir}", tex]]
    # twice, so that references and the table of figures settle
    return [["pdflatex", *flags, f"-output-directory={outdir}", tex]] * 2


def _run(cmd: list[str], cwd: Path, timeout: float) -> tuple[int, str]:
    """Run ``cmd`` in its own process group; on timeout kill the whole group."""
    proc = subprocess.Popen(
        cmd,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        out, _ = proc.communicate(timeout=timeout)
        return proc.returncode, out.decode("utf-8", "replace")
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        return 124, out.decode("utf-8", "replace") + f"\n[smollab] killed after {timeout:.0f} s\n"


def build_pdf(tex_path: Path, *, timeout: float = TIMEOUT_S) -> Path | None:
    """Compile ``tex_path``; return the PDF path on success, else None (see ``build.log``).

    An existing PDF next to ``tex_path`` is kept when the build fails or no engine is found.
    """
    engine = tex_available()
    paper_dir = tex_path.parent
    log_path = paper_dir / "build.log"
    if engine is None:
        atomic_write_text(log_path, "no TeX engine (latexmk or pdflatex) on PATH; PDF skipped\n")
        return None
    # not a dot-dir: paranoid TeX installs refuse to write files under names starting with "."
    tmp = Path(tempfile.mkdtemp(prefix="tmp-build-", dir=paper_dir))
    log = []
    try:
        rc = 0
        for cmd in _commands(engine, tex_path.name, tmp.name):
            rc, out = _run(cmd, paper_dir, timeout)
            log.append(f"$ {' '.join(cmd)}\n{out}\n[exit {rc}]\n")
            if rc != 0:
                break
        built = tmp / f"{tex_path.stem}.pdf"
        tex_log = tmp / f"{tex_path.stem}.log"
        if tex_log.is_file():
            log.append(f"\n===== {tex_log.name} =====\n{tex_log.read_text('utf-8', 'replace')}")
        ok = rc == 0 and built.is_file() and built.read_bytes()[:5] == b"%PDF-"
        log.append(f"\n[smollab] build {'succeeded' if ok else 'FAILED; previous PDF kept'}\n")
        if not ok:
            return None
        target = paper_dir / f"{tex_path.stem}.pdf"
        os.replace(built, target)  # same filesystem: atomic
        return target
    finally:
        atomic_write_text(log_path, "".join(log))
        shutil.rmtree(tmp, ignore_errors=True)
