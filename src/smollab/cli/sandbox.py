"""``smollab sandbox run FILE.py`` and ``smollab sandbox status``: the code sandbox by hand."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from smollab.cli.common import console, handle_errors
from smollab.errors import ConfigError

app = typer.Typer(
    help="Run Python files in the code sandbox (bubblewrap, no network, no $HOME, rlimits).",
    no_args_is_help=True,
)


def _read_source(path: Path, what: str) -> str:
    if not path.is_file():
        raise ConfigError(
            f"{what} {path} does not exist or is not a file.",
            hint="Pass the path of a Python source file, e.g. `smollab sandbox run solution.py`.",
        )
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError(
            f"{what} {path} is not UTF-8 text.", hint="Save it as UTF-8 and run again."
        ) from None


def _positive(value: float, flag: str) -> None:
    if value <= 0:
        raise ConfigError(f"{flag} {value:g} is invalid.", hint=f"{flag} must be above 0.")


@app.command("run")
@handle_errors
def run(
    file: Annotated[Path, typer.Argument(help="the Python file to run (as main.py)")],
    timeout: Annotated[float, typer.Option("--timeout", help="wall-clock limit, s")] = 10.0,
    cpu: Annotated[int, typer.Option("--cpu", help="CPU-time limit, s")] = 10,
    memory_mb: Annotated[int, typer.Option("--memory-mb", help="address-space limit")] = 1024,
    stdin: Annotated[
        Path | None, typer.Option("--stdin", help="file whose text is fed to the program")
    ] = None,
    unsafe: Annotated[
        bool,
        typer.Option(
            "--unsafe",
            help="without bubblewrap: a plain subprocess with rlimits; the program can read "
            "your files and use the network",
        ),
    ] = False,
) -> None:
    """Run one Python file in the sandbox and print its verdict as JSON.

    The verdict: passed (exit status 0, no limit hit), exit status or signal, timed out,
    which limit killed it, the tail of stdout and stderr. Exits 0 if passed, else 1.

    Example: smollab sandbox run solution.py --timeout 5
    """
    from smollab.sandbox import Limits, Sandbox

    source = _read_source(file, "Program")
    feed = _read_source(stdin, "--stdin file") if stdin is not None else ""
    _positive(timeout, "--timeout")
    _positive(cpu, "--cpu")
    _positive(memory_mb, "--memory-mb")
    sandbox = Sandbox(Limits(timeout_s=timeout, cpu_s=cpu, memory_mb=memory_mb), unsafe=unsafe)
    verdict = sandbox.run(source, stdin=feed)
    out = verdict.to_json()
    out["file"] = str(file)
    out["sandboxed"] = not unsafe
    sys.stdout.write(json.dumps(out, indent=2, ensure_ascii=False) + "\n")
    if not verdict.passed:
        raise typer.Exit(1)


@app.command("status")
@handle_errors
def status() -> None:
    """Say whether the sandbox works on this machine, and if not, why and how to fix it.

    Example: smollab sandbox status
    """
    from smollab.errors import SandboxUnavailable
    from smollab.sandbox import backend, sandbox_status

    reason = sandbox_status()
    if reason is not None:
        raise SandboxUnavailable(reason, hint=backend.INSTALL_HINT)
    bwrap = backend.find_bwrap()
    uid = f"uid {backend.SANDBOX_UID}" if backend.drops_uid() else "your uid"
    console.print(f"sandbox works: {bwrap.path if bwrap else 'bwrap'}, programs run as {uid}")
