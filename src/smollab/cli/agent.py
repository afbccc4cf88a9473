"""``smollab run PROBLEM --agent ...``, ``smollab resume SESSION`` and ``smollab estimate``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from smollab.cli.common import console, handle_errors, print_paths
from smollab.errors import ConfigError, SmollabError

AgentOpt = Annotated[
    str | None,
    typer.Option(
        "--agent",
        help="anthropic:<model> | openai:<model> | scripted:<file>; leave it out to run the "
        "problem's reference protocol offline",
    ),
]
MaxItOpt = Annotated[int, typer.Option("--max-iterations", min=1, help="agent iterations at most")]
BudgetOpt = Annotated[
    float | None,
    typer.Option(
        "--budget-usd",
        min=0,
        help="hard budget in USD for model calls: the research agent's (smollab run --agent), "
        "and an API model's in a study or evaluation, checked against their worst case before "
        "the first call",
    ),
]
StartOpt = Annotated[
    int | None,
    typer.Option("--start-iteration", min=1, help="redo the session from this iteration on"),
]
CodeOpt = Annotated[
    Path | None, typer.Option("--code", help="a codebase to summarise into the agent's context")
]
BaseUrlOpt = Annotated[
    str | None,
    typer.Option("--base-url", help="OpenAI-compatible server (vLLM, Ollama, llama.cpp)"),
]


MaxOutOpt = Annotated[
    int | None,
    typer.Option("--max-output-tokens", min=16, help="cap every model call's output tokens"),
]


def _progress(e: dict[str, Any]) -> None:
    if e.get("event") == "agent_stage":
        console.print(f"[bold]iteration {e['iteration']}[/] {e['stage']}")
    elif e.get("event") == "agent_study":
        console.print(f"  running study {e['study']}")


def _preflight_table(checks: list[Any]) -> Table:
    t = Table(title="Preflight")
    for col in ("check", "status", "detail"):
        t.add_column(col)
    style = {"ok": "green", "warn": "yellow", "fail": "red"}
    for c in checks:
        t.add_row(c.name, f"[{style[c.status]}]{c.status}[/]", c.detail)
    return t


def run_agent(
    problem_path: Path,
    agent_spec: str,
    *,
    out: Path,
    session_name: str | None,
    max_iterations: int,
    budget_usd: float | None,
    start_iteration: int | None,
    code: Path | None,
    base_url: str | None,
    workers: int | None,
    pdf: bool,
    resume: bool = False,
    max_output_tokens: int | None = None,
) -> None:
    from smollab.agent import Agent, Limits
    from smollab.agent.loop import check_session_dir
    from smollab.agent.preflight import preflight
    from smollab.agent.state import read_session_json
    from smollab.providers import make_provider
    from smollab.study.problem import load_problem

    problem = load_problem(problem_path)
    if start_iteration is not None and start_iteration > max_iterations:
        raise ConfigError(
            f"--start-iteration {start_iteration} is beyond the session's {max_iterations} "
            f"iterations (--max-iterations): pick an iteration from 1 to {max_iterations}, or "
            "raise --max-iterations."
        )
    if code is not None and not code.is_dir():
        raise ConfigError(f"--code {code} is not a directory. Pass the root of a codebase.")
    name = session_name or problem.spec.study.name
    check_session_dir(out, name, resume=resume or start_iteration is not None)
    # an unreadable session.json is named before the preflight's key check spends anything
    read_session_json(out / name)
    opts: dict[str, Any] = {"base_url": base_url} if base_url else {}
    provider = make_provider(agent_spec, **opts)
    console.print(f"[bold]{problem.title}[/] (agent {agent_spec})")
    from smollab.providers.ledger import Ledger

    # before any call: a budget that cannot be enforced is refused up front
    Ledger(provider.name, provider.model, budget_usd).check_budget_configured()
    if budget_usd == 0 and provider.name != "scripted":
        # every model call costs something, the preflight's key check included
        raise ConfigError(
            f"--budget-usd 0 leaves nothing for {agent_spec}'s calls, not even the preflight's "
            "one-token key check. Pass a positive budget (`smollab estimate "
            f"{problem_path} --agent {agent_spec}` shows what a session costs), or drop "
            "--budget-usd."
        )
    try:
        checks = preflight(provider, problem, out)
    except SmollabError as e:
        if resume:  # the session exists: `smollab run` again would be refused
            _name_session(e, out / name)
        raise
    console.print(_preflight_table(checks))
    agent = Agent(
        problem,
        provider,
        out_root=out,
        session_name=name,
        limits=Limits(
            max_iterations=max_iterations,
            budget_usd=budget_usd,
            pdf=pdf,
            workers=workers,
            max_output_tokens=max_output_tokens,
        ),
        code_dir=code,
        on_event=_progress,
    )
    launch = {
        "agent": agent_spec,
        "base_url": base_url,
        "max_iterations": max_iterations,
        "budget_usd": budget_usd,
        "code": str(code) if code else None,
        "workers": workers,
        "pdf": pdf,
        "max_output_tokens": max_output_tokens,
    }
    _save_launch(out, name, launch)
    try:
        res = agent.run(start_iteration=start_iteration)
    except SmollabError as e:
        _name_session(e, out / name)
        raise
    except KeyboardInterrupt:
        # not the study's "run the same command again": `smollab run` now refuses this folder
        import shlex
        import sys

        from rich.markup import escape

        from smollab.cli.common import err_console

        err_console.print(
            "[bold yellow]interrupted:[/] "
            + escape(
                "the session is saved (model replies, tool results, finished runs and the last "
                "training checkpoints); continue with "
                f"`smollab resume {shlex.quote(str(out / name))}`."
            )
        )
        sys.exit(130)
    llm = res.metrics.get("llm", {})
    cost = llm.get("cost_usd")
    from rich.markup import escape

    from smollab.io import read_json

    claims_path = res.session_dir / "paper" / "claims.json"
    claims = read_json(claims_path) if claims_path.exists() else {}
    if claims.get("reference_protocol_ran"):  # the disclosure the report and paper carry
        console.print(escape(str(claims["reference_protocol_ran"])))
    withheld = (
        "NOT verified (no write-up from the agent; the offline write-up stands)"
        if claims.get("write_up") is False
        else "NOT verified (prose withheld)"
    )
    console.print(
        f"{res.iterations} iteration(s), stopped: {res.stop_reason}; claims "
        f"{'verified' if res.claims_ok else withheld}; "
        f"{llm.get('calls', 0)} calls, cost "
        + (f"${cost:.4f}" if cost is not None else "unknown (price or tokens not reported)")
        + _study_api_line(llm)
    )
    print_paths([res.session_dir, *([res.paper_pdf] if res.paper_pdf else [])])
    for note in (
        _missing_pdf_note(pdf, res.paper_pdf, res.session_dir),
        _prose_left_out_note(claims, res.session_dir),
    ):
        if note:
            console.print(f"warning: {note}", style="yellow", markup=False)


def _missing_pdf_note(pdf: bool, paper_pdf: Path | None, session_dir: Path) -> str | None:
    """Why a PDF that was asked for (and could be built) is missing, or None."""
    if not pdf or paper_pdf is not None:
        return None
    from smollab.report import tex_available

    engine = tex_available()
    if not engine:
        return "no TeX engine (latexmk/pdflatex) found: paper.tex is written, paper.pdf is skipped."
    return (
        f"paper.pdf was not built: {engine} failed on paper.tex (see "
        f"{session_dir / 'paper' / 'build.log'}); paper.tex is kept."
    )


def _prose_left_out_note(claims: dict[str, Any], session_dir: Path) -> str | None:
    """The agent's verified prose broke LaTeX to the end and the paper was built without it."""
    if claims.get("prose_in_paper") is not False:
        return None
    paper = session_dir / "paper"
    return (
        "the agent's prose did not compile in LaTeX after the fix attempts: paper.pdf carries "
        f"smollab's note in its place, and the prose is kept in {paper / 'prose.tex'} (the TeX "
        f"error is in {session_dir / 'session_log.jsonl'}, event prose_left_out)."
    )


def _name_session(e: SmollabError, session_dir: Path) -> None:
    """Where a provider or budget error's hint says to run the same command again or
    ``smollab resume SESSION``, name the session's resume command: once its folder exists,
    running the same ``smollab run`` again is refused, so resuming it is the way on."""
    from smollab.providers.base import RUN_AGAIN

    if not e.hint or ("SESSION" not in e.hint and RUN_AGAIN not in e.hint):
        return
    import shlex

    cmd = f"`smollab resume {shlex.quote(str(session_dir))}"
    e.hint = e.hint.replace(RUN_AGAIN, f"continue with {cmd}`").replace(
        "`smollab resume SESSION", cmd
    )
    e.args = (e.render(),)


def _study_api_line(llm: dict[str, Any]) -> str:
    """``; API models in its studies: ...`` for a session whose studies called API models."""
    studies = llm.get("study_api_calls") or []
    if not studies:
        return ""
    cost = llm.get("study_api_cost_usd")
    calls = sum(s.get("calls", 0) for s in studies)
    spent = llm.get("budget_spent_usd")
    return (
        f"; API models in its studies: {calls} calls, cost "
        + (f"${cost:.4f}" if cost is not None else "unknown (charged at the worst case)")
        + (f"; ${spent:.4f} of the budget used" if llm.get("budget_usd") is not None else "")
    )


def _save_launch(out: Path, name: str, launch: dict[str, Any]) -> None:
    from smollab.agent.state import read_session_json
    from smollab.io import atomic_write_json

    prev = read_session_json(out / name)
    atomic_write_json(out / name / "session.json", {**prev, "launch": launch})


@handle_errors
def resume(
    session: Annotated[Path, typer.Argument(help="session folder", metavar="SESSION")],
    max_iterations: Annotated[
        int | None, typer.Option("--max-iterations", min=1, help="override")
    ] = None,
    budget_usd: BudgetOpt = None,
    start_iteration: StartOpt = None,
    pdf: Annotated[
        bool, typer.Option("--pdf/--no-pdf", help="build paper.pdf when TeX is present")
    ] = True,
    base_url: Annotated[
        str | None,
        typer.Option(
            "--base-url",
            help="the OpenAI-compatible server, where it moved (default: the session's own)",
        ),
    ] = None,
) -> None:
    """Continue an agent session after a crash, a budget stop or an interrupt.

    Recorded model replies and tool results are replayed (nothing is paid twice); the first
    missing step runs live; training resumes from its last checkpoint.

    Example: smollab resume outputs/multiplication --budget-usd 2
    """
    from smollab.agent.state import read_session_json, session_json_hint
    from smollab.errors import CorruptFile

    info_path = session / "session.json"
    if not info_path.is_file():
        raise ConfigError(
            f"{session} is not a session folder (no session.json). Pass outputs/<session>."
        )
    info = read_session_json(session)
    launch = info.get("launch")
    if not launch:
        raise ConfigError(
            f"{session} was not started by the agent (no launch record in session.json); "
            "re-run `smollab run` or `smollab study` for it: finished runs are reused."
        )
    # what resume reads from it (--max-iterations stands in for the record's own)
    needed = [("agent", str)] + ([("max_iterations", int)] if max_iterations is None else [])
    lost = [
        k for k, t in needed if not isinstance(launch, dict) or not isinstance(launch.get(k), t)
    ]
    if lost:
        raise CorruptFile(
            f"{info_path}: its launch record lacks {' and '.join(map(repr, lost))} (or holds "
            "the wrong type): it was edited.",
            hint=session_json_hint(session),
        )
    if not (session / "problem.md").is_file():
        raise ConfigError(
            f"{session} has no problem.md (the session's copy of its problem file, written when "
            "it started): copy the problem file there as problem.md, then resume."
        )
    run_agent(
        session / "problem.md",
        launch["agent"],
        out=session.parent,
        session_name=session.name,
        max_iterations=max_iterations or launch["max_iterations"],
        budget_usd=budget_usd if budget_usd is not None else launch.get("budget_usd"),
        start_iteration=start_iteration,
        code=Path(launch["code"]) if launch.get("code") else None,
        base_url=base_url or launch.get("base_url"),
        workers=launch.get("workers"),
        pdf=pdf,
        resume=True,
        max_output_tokens=launch.get("max_output_tokens"),
    )


DEFAULT_ESTIMATE_AGENT = "anthropic:claude-sonnet-5-5"


@handle_errors
def estimate(
    target: Annotated[
        Path,
        typer.Argument(help="problem file (Markdown) or study spec (TOML)", metavar="PROBLEM|SPEC"),
    ],
    agent: Annotated[
        str | None,
        typer.Option("--agent", help=f"provider:model to price (default {DEFAULT_ESTIMATE_AGENT})"),
    ] = None,
    max_iterations: MaxItOpt = 3,
    code: CodeOpt = None,
    out: Annotated[
        Path, typer.Option("--out", help="root folder of sessions (runs already done are free)")
    ] = Path("outputs"),
    session_name: Annotated[
        str | None,
        typer.Option("--session-name", help="session folder name (default: the study name)"),
    ] = None,
) -> None:
    """Estimate what a session will cost, before anything is spent.

    For a problem file: the research agent's calls (--agent), and the API-model calls of its
    reference protocol if it names any. For a study spec (TOML): the worst case of its
    API-model calls not yet made (runs done in --out and replies in the request cache are
    free), the bound that `smollab study SPEC --budget-usd B` enforces. Makes no call and
    needs no API key.

    Example: smollab estimate problems/multiplication.md --agent anthropic:claude-sonnet-5-5
    """
    if target.suffix == ".toml":
        if agent is not None:
            raise ConfigError(
                f"--agent prices a research agent working on a problem file; {target} is a study "
                "spec, whose API calls are priced from its own [[models]]. Drop --agent."
            )
        from smollab.study.spec import load_spec

        spec = load_spec(target)
        _print_study_bound(spec, out / (session_name or spec.study.name), f"smollab study {target}")
        return

    from smollab.agent.estimate import estimate as est
    from smollab.providers import parse_agent
    from smollab.study.problem import load_problem

    agent = agent or DEFAULT_ESTIMATE_AGENT
    if code is not None and not code.is_dir():
        raise ConfigError(f"--code {code} is not a directory. Pass the root of a codebase.")
    p = load_problem(target)
    prov, model = parse_agent(agent)
    e = est(p, prov, model, max_iterations, code)
    t = Table(title=f"Cost estimate: {agent}, {max_iterations} iterations")
    t.add_column("item")
    t.add_column("value", justify="right")
    t.add_row("model calls", str(e.calls))
    t.add_row("cached prefix (system, API reference, problem, code)", f"{e.prefix_tokens} tokens")
    if e.price is None:
        t.add_row("price", f"unknown (not in the price table of {e.prices_as_of})")
    else:
        t.add_row(
            "price in / out / cache write / cache read ($/M tokens)",
            f"{e.price.input} / {e.price.output} / {e.price.cache_write} / "
            f"{e.price.cache_read} (as of {e.prices_as_of})",
        )
        t.add_row("estimate without prompt caching", f"${e.cost_uncached:.3f}")
        t.add_row("estimate with prompt caching", f"${e.cost_cached:.3f}")
    console.print(t)
    if e.cost_cached is not None:
        # an estimate, not a bound: estimate takes no budget, so it is measured against none
        console.print(
            f"With prompt caching the prefix is written once and read by the other "
            f"{e.calls - 1} calls at the cache-read price. This is an estimate: "
            f"`smollab run {target} --agent {agent} --budget-usd B` makes B a hard bound."
        )
    if any(m.is_api for m in p.spec.models):
        console.print(
            f"The reference protocol names API models (`smollab run {target}` runs it; an "
            "agent's studies call API models within the session's --budget-usd):"
        )
        _print_study_bound(
            p.spec, out / (session_name or p.spec.study.name), f"smollab run {target}"
        )


def _print_study_bound(spec: Any, session_dir: Path, command: str) -> None:
    """The worst case of a study's API calls still to make (see ``pending_api_bounds``)."""
    from smollab.eval.provider_lm import usd
    from smollab.study.session import pending_api_bounds

    if not any(m.is_api for m in spec.models):
        console.print(
            f"Study {spec.study.name} names no API model: its runs make no API call (cost $0)."
        )
        return
    bounds = pending_api_bounds(spec, session_dir)
    t = Table(title=f"API calls of study {spec.study.name} (worst case, before any call)")
    for col in ("model", "calls", "not cached", "worst case"):
        t.add_column(col, justify="left" if col == "model" else "right")
    for b in bounds:
        unpriced = b.worst_usd is None and b.uncached
        worst = "unknown price" if unpriced else usd(b.worst_usd or 0.0)
        t.add_row(b.source, str(b.calls), str(b.uncached), worst)
    if bounds:
        console.print(t)
    else:
        console.print(f"Every run of {session_dir} is done: no API call is left to make.")
    if any(b.uncached and b.worst_usd is None for b in bounds):
        console.print(
            "A model without a price (every --base-url server, or a model missing from "
            "providers/prices.toml) cannot be bounded in dollars, so --budget-usd cannot be "
            "enforced for it."
        )
    elif bounds:
        total = sum(b.worst_usd or 0.0 for b in bounds)
        console.print(
            f"At most {usd(total)}: each prompt's characters at 3 per token at the dearest input "
            f"rate, plus every request's full max_tokens of output. `{command} --budget-usd B` "
            "refuses to start if this is above B."
        )
