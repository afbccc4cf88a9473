"""``build_report``: results.json -> figures, report.md/.html, paper.tex, numbers.json, paper.pdf.

Order matters only for the file list: figures first (the report embeds them), then the paper and
its PDF, then the reports (which list what exists). Every file is written atomically, so an
interrupted build leaves each file either old or new.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from smollab.report.context import build_context, load_results
from smollab.report.figures import draw_all, figure_text
from smollab.report.paper import NUMBERS_SCHEMA, write_paper
from smollab.report.pdf import build_pdf
from smollab.report.render import NumberLog, html_env, md_env, tex_env
from smollab.report.text import write_reports

log = logging.getLogger(__name__)

RESULTS = Path("results") / "results.json"


@dataclass(frozen=True)
class ReportPaths:
    """What :func:`build_report` wrote. ``paper_pdf`` is None when no PDF was built this time
    (no TeX engine, ``pdf=False``, or a failed build; see ``paper/build.log``)."""

    figures: list[Path] = field(default_factory=list)
    report_md: Path | None = None
    report_html: Path | None = None
    paper_tex: Path | None = None
    paper_pdf: Path | None = None
    numbers_json: Path | None = None


def _figure_entries(
    drawn: list[dict[str, Any]], session_dir: Path, tasks: dict[str, Any]
) -> list[dict[str, Any]]:
    entries = []
    for d in drawn:
        title, caption = figure_text(d["kind"], tasks.get(d["task"]) if d["task"] else None)
        png, pdf = (p.relative_to(session_dir).as_posix() for p in d["paths"])
        entries.append({**d, "title": title, "caption": caption, "png": png, "pdf": pdf})
    return entries


def _file_list(session_dir: Path, written: list[Path]) -> list[dict[str, str]]:
    described = {
        "problem.md": "the research question as posed",
        "study.toml": "the declared study (conditions, seeds, tasks)",
        "results/results.json": "all metrics with intervals; the source of every number",
        "report.md": "this report",
        "report.html": "this report, self-contained (figures embedded)",
        "paper/paper.tex": "the paper source",
        "paper/numbers.json": "every number the paper prints, keyed by its path in results.json",
        "paper/paper.pdf": "the compiled paper",
        "paper/build.log": "TeX build log",
    }
    rel = [p.relative_to(session_dir).as_posix() for p in written]
    paths = [p for p in described if p in rel or (session_dir / p).is_file()]
    paths += [p for p in rel if p not in described]
    return [{"path": p, "what": described.get(p, "figure")} for p in paths]


def build_report(session_dir: Path, *, pdf: bool = True) -> ReportPaths:
    """Write figures, ``report.md``, ``report.html``, ``paper/paper.tex``, ``paper/numbers.json``
    and (when ``pdf`` and a TeX engine is available) ``paper/paper.pdf`` for a session folder.

    Raises:
        DataError: ``results/results.json`` is missing or not a ``smollab.results/1`` file.
    """
    session_dir = Path(session_dir)
    results = load_results(session_dir / RESULTS)
    ctx = build_context(results)

    drawn = draw_all(results, session_dir / "figures")
    figures = _figure_entries(drawn, session_dir, results.get("tasks") or {})
    stems = {(f["kind"], f["task"]): f["stem"] for f in figures}
    for t in ctx["tasks"]:
        t["figures"] = {
            "accuracy": stems.get(("accuracy_by_difficulty", t["name"])),
            "errors": stems.get(("error_taxonomy", t["name"])),
        }
    ctx["loss_figure"] = stems.get(("loss_curves", None))
    ctx["figures"] = figures

    tex_path, numbers_path = write_paper(ctx, session_dir / "paper")
    pdf_path = build_pdf(tex_path) if pdf else None
    if pdf and pdf_path is None:
        log.warning("paper.pdf not built; see %s", session_dir / "paper" / "build.log")

    figure_paths = [p for d in drawn for p in d["paths"]]
    reports = [session_dir / "report.md", session_dir / "report.html"]
    ctx["files"] = _file_list(session_dir, [*figure_paths, tex_path, numbers_path, *reports])
    md, html = write_reports(ctx, session_dir)
    return ReportPaths(
        figures=figure_paths,
        report_md=md,
        report_html=html,
        paper_tex=tex_path,
        paper_pdf=pdf_path,
        numbers_json=numbers_path,
    )


def kind_figures(session_dir: Path, drawn: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The ``figures`` entries of a study kind's template context: each drawn figure's fields
    (title, caption, ...) with its ``paths`` as ``png``/``pdf`` relative to ``session_dir``,
    and ``stem``, the file name for LaTeX (marked safe: not escaped)."""
    from markupsafe import Markup

    figs = []
    for d in drawn:
        png, pdf_path = (p.relative_to(session_dir).as_posix() for p in d["paths"])
        figs.append(
            {
                **{k: v for k, v in d.items() if k != "paths"},
                "png": png,
                "pdf": pdf_path,
                "stem": Markup(Path(png).stem),
            }
        )
    return figs


def write_kind_documents(
    session_dir: Path, ctx: dict[str, Any], prefix: str, *, pdf: bool
) -> tuple[Path, Path | None]:
    """The documents of a study kind with its own templates (``grok``, ``pretrain``):
    ``report.md``, ``report.html`` (figures embedded), ``paper/paper.tex`` and
    ``paper/numbers.json`` from ``{prefix}_report.md.j2``, ``{prefix}_report.html.j2`` and
    ``{prefix}_paper.tex.j2``, and ``paper/paper.pdf`` when ``pdf`` and a TeX engine is present.
    ``ctx["figures"]`` are ``{title, caption, png, pdf, stem}`` with paths relative to
    ``session_dir``. Returns (paper.tex, paper.pdf or None)."""
    import base64

    from smollab.io import atomic_write_json, atomic_write_text

    md = md_env().get_template(f"{prefix}_report.md.j2").render(**ctx)
    atomic_write_text(session_dir / "report.md", md)
    html_figs = [
        {
            **f,
            "data_uri": "data:image/png;base64,"
            + base64.b64encode((session_dir / f["png"]).read_bytes()).decode(),
        }
        for f in ctx["figures"]
    ]
    html = (
        html_env().get_template(f"{prefix}_report.html.j2").render(**{**ctx, "figures": html_figs})
    )
    atomic_write_text(session_dir / "report.html", html)
    numbers = NumberLog()
    tex = tex_env(numbers).get_template(f"{prefix}_paper.tex.j2").render(**ctx)
    tex_path = atomic_write_text(session_dir / "paper" / "paper.tex", tex)
    atomic_write_json(
        session_dir / "paper" / "numbers.json",
        {
            "schema": NUMBERS_SCHEMA,
            "source": "../results/results.json",
            "paper": "paper.tex",
            "numbers": numbers.numbers,
        },
    )
    pdf_path = build_pdf(tex_path) if pdf else None
    if pdf and pdf_path is None:
        log.warning("paper.pdf not built; see %s", session_dir / "paper" / "build.log")
    return tex_path, pdf_path
