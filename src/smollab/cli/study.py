"""``smollab study SPEC`` and ``smollab run PROBLEM``."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer

from smollab.cli.agent import (
    AgentOpt,
    BaseUrlOpt,
    BudgetOpt,
    CodeOpt,
    MaxItOpt,
    MaxOutOpt,
    StartOpt,
    run_agent,
)
from smollab.cli.common import (
    StudyProgress,
    console,
    data_dir_arg,
    handle_errors,
    print_paths,
    results_table,
)

OutOpt = Annotated[Path, typer.Option("--out", help="root folder of sessions")]
SessionOpt = Annotated[
    str | None, typer.Option("--session-name", help="session folder name (default: study name)")
]
WorkersOpt = Annotated[
    int | None,
    typer.Option("--workers", help="runs at once (default: the spec's execution.workers)", min=1),
]
PdfOpt = Annotated[bool, typer.Option("--pdf/--no-pdf", help="build paper.pdf when TeX is present")]
DataOpt = Annotated[
    str | None, typer.Option("--data-dir", help="benchmark data dir (or $SMOLLAB_DATA_DIR)")
]


def _use_data_dir(value: str | None) -> None:
    """--data-dir for a study's runs: they read it from SMOLLAB_DATA_DIR (worker processes
    inherit it)."""
    import os

    from smollab.errors import ConfigError

    data_dir = data_dir_arg(value)
    if data_dir is None:
        return
    if not data_dir.is_dir():
        raise ConfigError(
            f"--data-dir {data_dir} does not exist or is not a folder. Pass the folder holding "
            "the benchmark data (e.g. shared/data)."
        )
    os.environ["SMOLLAB_DATA_DIR"] = str(data_dir.resolve())


def _execute(
    spec,
    spec_text,
    out,
    session_name,
    problem_text,
    workers,
    pdf,
    budget_usd=None,
    *,
    report: bool = True,
    notes: bool = True,
) -> Any:
    """Run a study with progress bars and print its results; returns the SessionResult.
    ``report``/``notes`` as for :func:`~smollab.study.session.run_study`."""
    from smollab.report import tex_available
    from smollab.study.executor import LocalProcessExecutor
    from smollab.study.session import run_study

    engine = tex_available()
    if pdf and report:
        console.print(
            f"preflight: PDF will be built with {engine}"
            if engine
            else "preflight: no TeX engine (latexmk/pdflatex) found: paper.tex is written, "
            "paper.pdf is skipped (install texlive-latex-base texlive-latex-recommended "
            "texlive-fonts-recommended latexmk)"
        )
    executor = LocalProcessExecutor(
        workers=workers or spec.execution.workers,
        threads_per_worker=None if workers else spec.execution.threads_per_worker,
    )
    for w in executor.warnings():
        console.print(f"warning: {w}", style="yellow", markup=False)
    t0 = time.perf_counter()
    with StudyProgress() as progress:
        res = run_study(
            spec,
            spec_text,
            out_root=out,
            session_name=session_name,
            problem_text=problem_text,
            executor=executor,
            on_event=progress,
            pdf=pdf,
            budget_usd=budget_usd,
            report=report,
            notes=notes,
        )
    if "summary" in res.results:  # study kinds other than 'lm' summarise themselves
        for line in res.results["summary"]:
            console.print(line)
    else:
        _print_lm_summary(res.results)
    print_paths([res.session_dir, *res.written])
    console.print(f"done in {time.perf_counter() - t0:.0f} s")
    return res


def _print_lm_summary(results) -> None:
    from smollab.analysis.results import against, every_comparison

    console.print(results_table(results))
    for c in every_comparison(results):
        if c["stratum"] != "overall":
            continue
        d = c["diff"]
        console.print(
            f"{c['condition']} vs {against(c)} on {c['task']} (all strata): "
            f"{d['estimate']:+.1%} [{d['low']:+.1%}, {d['high']:+.1%}], McNemar Holm p "
            f"{c['p_holm']:.3g} -> {c['verdict']}",
            markup=False,
        )
    for n in results.get("notes", []):
        if n.startswith("Target"):
            console.print(n, style="green" if n.startswith("Target met") else "yellow")
    for t in results.get("tasks", {}).values():  # what was left out of the training data
        for n in t.get("data_notes", []):
            console.print(n, style="yellow", markup=False)


@handle_errors
def study(
    spec_path: Annotated[Path, typer.Argument(help="study spec (TOML)", metavar="SPEC")],
    out: OutOpt = Path("outputs"),
    session_name: SessionOpt = None,
    workers: WorkersOpt = None,
    pdf: PdfOpt = True,
    budget_usd: BudgetOpt = None,
    data_dir: DataOpt = None,
) -> None:
    """Run a declared study: conditions x seeds x tasks, then results, figures and paper.

    The spec's study kind says what it runs: 'lm' (language models on generative tasks; the
    default), 'grok' (small models from scratch on the grokking tasks) or 'pretrain'
    (language models pretrained on a raw-text corpus, compared by held-out perplexity).

    A study with API models (source 'openai:MODEL' or 'anthropic:MODEL') prints the worst
    case of their calls not yet cached before any run; --budget-usd B refuses it (exit 4,
    nothing run) if that exceeds B.

    Example: smollab study studies/multiplication.toml --session-name mul-long
    """
    from smollab.study.session import check_session_name
    from smollab.study.spec import load_spec

    if session_name is not None:  # a bad flag is refused before the spec's checks load models
        check_session_name(session_name)
    spec = load_spec(spec_path)
    _use_data_dir(data_dir)
    _execute(spec, spec_path.read_text(), out, session_name, None, workers, pdf, budget_usd)


def _why_offline() -> str:
    """Why `smollab run` without --agent runs the reference protocol: a key in the environment
    does not start the agent, so a user who exported one is told how to."""
    import os

    for var, provider in (("ANTHROPIC_API_KEY", "anthropic"), ("OPENAI_API_KEY", "openai")):
        if os.environ.get(var):
            return (
                f"no --agent given; {var} is set: add --agent {provider}:<model> for the "
                "research agent"
            )
    return "no LLM configured"


@handle_errors
def run(
    problem: Annotated[Path, typer.Argument(help="problem file (Markdown)", metavar="PROBLEM")],
    out: OutOpt = Path("outputs"),
    session_name: SessionOpt = None,
    workers: WorkersOpt = None,
    pdf: PdfOpt = True,
    agent: AgentOpt = None,
    max_iterations: MaxItOpt = 3,
    budget_usd: BudgetOpt = None,
    start_iteration: StartOpt = None,
    code: CodeOpt = None,
    base_url: BaseUrlOpt = None,
    max_output_tokens: MaxOutOpt = None,
    data_dir: DataOpt = None,
) -> None:
    """Run a whole study from a research question.

    With no LLM configured, the problem's reference protocol runs offline and deterministically.
    With --agent, the research agent plans, runs, critiques and writes (see `smollab estimate`).

    Example: smollab run problems/multiplication.md --agent anthropic:claude-sonnet-5-5
    """
    from smollab.errors import ConfigError
    from smollab.study.problem import load_problem
    from smollab.study.session import check_session_name

    if session_name is not None:
        check_session_name(session_name)
    _use_data_dir(data_dir)
    agent_only = {
        "--start-iteration": start_iteration,
        "--code": code,
        "--base-url": base_url,
        "--max-output-tokens": max_output_tokens,
    }
    given = [flag for flag, v in agent_only.items() if v is not None]
    if agent is None and given:
        raise ConfigError(
            f"{', '.join(given)} {'is' if len(given) == 1 else 'are'} for the research agent "
            "and would be ignored: without --agent the problem's reference protocol runs "
            "offline. Add --agent PROVIDER:MODEL, or drop "
            f"{'it' if len(given) == 1 else 'them'}."
        )
    if agent is not None:
        run_agent(
            problem,
            agent,
            out=out,
            session_name=session_name,
            max_iterations=max_iterations,
            budget_usd=budget_usd,
            start_iteration=start_iteration,
            code=code,
            base_url=base_url,
            workers=workers,
            pdf=pdf,
            max_output_tokens=max_output_tokens,
        )
        return

    p = load_problem(problem)
    console.print(f"[bold]{p.title}[/] (reference protocol, {_why_offline()})")
    _execute(p.spec, p.protocol_text, out, session_name, p.text, workers, pdf, budget_usd)
