"""``smollab report SESSION`` and ``smollab sessions``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from smollab.cli.common import console, handle_errors, print_paths
from smollab.errors import ConfigError


@handle_errors
def report(
    session: Annotated[
        Path, typer.Argument(help="session folder, or a name under --out", metavar="SESSION")
    ],
    out: Annotated[Path, typer.Option("--out", help="root folder of sessions")] = Path("outputs"),
    pdf: Annotated[
        bool, typer.Option("--pdf/--no-pdf", help="build paper.pdf when TeX is present")
    ] = True,
) -> None:
    """Rebuild figures, report.md, report.html and the paper from a session's results.

    Example: smollab report outputs/multiplication
    """
    from smollab.report import build_report

    d = session if session.exists() else out / session
    if not d.is_dir():
        raise ConfigError(
            f"No session folder {session}"
            + ("" if (out / session) == session else f" (nor {out / session})")
            + ". List sessions with "
            "`smollab sessions --out DIR`, and pass a session folder or its name under --out."
        )
    if not (d / "results" / "results.json").exists():
        from smollab.report.context import eval_folder

        if (eval_note := eval_folder(d)) is not None:
            raise ConfigError(eval_note)
        raise ConfigError(
            f"{d} has no results/results.json: it is not a finished session. List sessions with "
            f"`smollab sessions`{_finish_hint(d)}"
        )
    from smollab.io import read_json
    from smollab.study.kinds import get_kind

    kind = read_json(d / "results" / "results.json").get("kind")
    if kind is not None:  # results of another study kind: its own report
        tex, pdf_path = get_kind(kind).report(d, pdf=pdf)
        print_paths([p for p in (d / "report.md", d / "report.html", tex, pdf_path) if p])
        return
    paths = build_report(d, pdf=pdf)
    print_paths(
        [p for p in (paths.report_md, paths.report_html, paths.paper_tex, paths.paper_pdf) if p]
    )


def _finish_hint(d: Path) -> str:
    """How to finish the unfinished session ``d``, as a command that works for the kind of
    session it is: an agent session (a launch record in session.json) is resumed; any other
    (made by `smollab study`, `smollab run` or `smollab train`) is finished by studying its
    own study.toml into the same folder, which reuses its finished runs. session.json records
    no other command, so none is guessed."""
    import shlex
    import tomllib

    from smollab.agent.state import read_session_json
    from smollab.errors import CorruptFile

    try:
        info = read_session_json(d)
    except CorruptFile:
        info = {}
    if isinstance(info, dict) and info.get("launch"):
        return f", or continue this agent session with `smollab resume {shlex.quote(str(d))}`."
    spec = d / "study.toml"
    if not spec.is_file():
        return "; it has no study.toml to finish it from: start its study again."
    cmd = f"smollab study {shlex.quote(str(spec))}"
    if d.parent != Path("outputs"):  # smollab study's default --out
        cmd += f" --out {shlex.quote(str(d.parent))}"
    try:
        name = tomllib.loads(spec.read_text(encoding="utf-8")).get("study", {}).get("name")
    except (tomllib.TOMLDecodeError, UnicodeDecodeError, AttributeError):
        name = None
    if name != d.name:  # the session folder was named with --session-name
        cmd += f" --session-name {shlex.quote(d.name)}"
    return f", or finish this one with `{cmd}` (its finished runs are reused)."


def _runs_cell(d: Path, state: dict) -> str:
    """Finished runs of the session's current study, of how many: "3/4". Run folders of an
    earlier version of the study (kept for reuse) are not counted; sessions written before
    the run list was recorded show the finished folders found."""
    hashes = state.get("run_hashes")
    if not isinstance(hashes, list):
        return str(sum(1 for _ in (d / "runs").glob("*/record.json")))
    done = sum(1 for h in hashes if (d / "runs" / str(h) / "record.json").exists())
    return f"{done}/{len(hashes)}"


#: an agent session that stopped before its end: the stage it stopped in is not all it says
_STOPPED = {"failed": " (stopped by an error)", "budget": " (budget reached)"}


@handle_errors
def sessions(
    out: Annotated[Path, typer.Option("--out", help="root folder of sessions")] = Path("outputs"),
) -> None:
    """List the sessions under --out with their stage and runs.

    Example: smollab sessions --out outputs
    """
    from smollab.errors import CorruptFile
    from smollab.io import read_json

    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file, not a folder of sessions. Pass the folder.")
    table = Table(title=f"Sessions in {out}")
    for col in ("session", "stage", "updated", "runs", "report"):
        table.add_column(col)
    found = sorted(out.glob("*/session.json"), key=lambda p: p.stat().st_mtime, reverse=True)
    for sj in found:
        d = sj.parent
        try:
            s = read_json(sj)
        except CorruptFile:
            table.add_row(d.name, "unreadable session.json", "?", "?", "?")
            continue
        table.add_row(
            d.name,
            str(s.get("stage", "?")) + _STOPPED.get(str(s.get("status")), ""),
            s.get("updated", "?"),
            _runs_cell(d, s),
            "yes" if (d / "report.md").exists() else "no",
        )
    if not found:
        where = "" if out.is_dir() else " (the folder does not exist)"
        console.print(
            f"No sessions in {out}{where}. Start one with `smollab run problems/multiplication.md`."
        )
        return
    console.print(table)
