"""``smollab sandbox run FILE.py`` and ``smollab sandbox status``: the code sandbox by hand."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Annotated

import typer

from smollab.cli.common import console, handle_errors
from smollab.errors import ConfigError

MAX_SECONDS = 86_400
MAX_MEMORY_MB = 1 << 20

app = typer.Typer(
    help="Run Python files in the code sandbox (bubblewrap, no network, no $HOME, rlimits).",
    no_args_is_help=True,
)


def _read_source(path: Path, what: str, hint: str) -> str:
    if not path.is_file():
        raise ConfigError(f"{what} {path} does not exist or is not a file.", hint=hint)
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError(
            f"{what} {path} is not UTF-8 text.", hint="Save it as UTF-8 and run again."
        ) from None


def _in_range(value: float, flag: str, low: float, high: float, allowed: str) -> None:
    """``low < value <= high`` (a finite number), else a :class:`ConfigError` naming ``flag``."""
    if not (math.isfinite(value) and low < value <= high):
        shown = value if isinstance(value, int) else f"{value:g}"
        raise ConfigError(f"{flag} {shown} is invalid.", hint=f"{flag} must be {allowed}.")


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

    source = _read_source(
        file,
        "Program",
        "Pass the path of a Python source file, e.g. `smollab sandbox run solution.py`.",
    )
    feed = (
        _read_source(stdin, "--stdin file", "Pass the path of a text file to feed the program.")
        if stdin is not None
        else ""
    )
    day = f"above 0 and at most {MAX_SECONDS} seconds (one day)"
    _in_range(timeout, "--timeout", 0, MAX_SECONDS, day)
    _in_range(cpu, "--cpu", 0, MAX_SECONDS, day)
    # with less address space the Python interpreter itself cannot start
    mem = f"at least 64 and at most {MAX_MEMORY_MB} MB (1 TiB); Python itself needs about 50 MB"
    _in_range(memory_mb, "--memory-mb", 63, MAX_MEMORY_MB, mem)
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
