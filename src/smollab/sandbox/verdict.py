"""What a sandboxed run may use (:class:`Limits`) and what came of it (:class:`Verdict`)."""

from __future__ import annotations

import dataclasses
import re
import signal as _signal
from dataclasses import dataclass
from typing import Any, Literal

from smollab.errors import ConfigError

KilledBy = Literal["timeout", "cpu", "memory", "file_size", "nproc", "output"]


@dataclass(frozen=True)
class Limits:
    """Resource limits for one sandboxed program.

    ``timeout_s`` is wall-clock time; when it passes the whole sandbox (every process the program
    started) is killed. ``cpu_s``, ``memory_mb`` (address space), ``nproc`` (processes and threads)
    and ``file_size_mb`` (largest file it may write) are kernel rlimits, set hard so the program
    cannot raise them; they apply per process, except ``nproc`` which counts the whole sandbox.
    ``output_bytes`` is how much of the end of stdout and of stderr the verdict keeps; output beyond
    it is dropped as it arrives, never buffered. A program that writes more than
    ``max_output_bytes`` in all is killed (``killed_by="output"``). ``tmp_mb`` caps the in-memory
    filesystem that holds the working directory and ``/tmp``.

    There is no cgroup, so nothing caps the sandbox's memory as a whole: a program that forks
    can hold up to ``nproc * memory_mb`` plus ``tmp_mb``. Lower ``nproc`` where that matters.
    """

    timeout_s: float = 10.0
    cpu_s: int = 10
    memory_mb: int = 1024
    nproc: int = 64
    file_size_mb: int = 16
    output_bytes: int = 65536
    max_output_bytes: int = 8 * 2**20
    tmp_mb: int = 64

    def __post_init__(self) -> None:
        # Limits come from CLI flags and study specs, so a bad value must name itself.
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
                raise ConfigError(
                    f"Sandbox limit {f.name}={value!r} is invalid.",
                    hint="Every sandbox limit must be a positive number.",
                )
            # the kernel's limits and the byte counts are whole numbers: prlimit would cut
            # cpu_s=1.5 to 1 s, and the verdict would not name the limit that killed it
            if f.name != "timeout_s" and value != int(value):
                raise ConfigError(
                    f"Sandbox limit {f.name}={value!r} is not a whole number.",
                    hint=f"Give {f.name} as an integer (only timeout_s may be fractional).",
                )
            if f.name != "timeout_s":
                object.__setattr__(self, f.name, int(value))  # 2.0 -> 2 for prlimit


@dataclass(frozen=True)
class Verdict:
    """The outcome of one sandboxed program.

    ``passed`` is true exactly when the program exited with status 0 and hit no limit.
    ``exit_code`` is the exit status, or None when a signal ended it (then ``signal`` is set).
    ``killed_by`` names the limit that stopped it: "timeout" and "output" are enforced by the
    harness; "cpu", "memory", "file_size" and "nproc" are read from the signal or from the last
    error Python printed (MemoryError, "File too large", a failed fork; a failed fork in any of
    the last few lines, where a fork bomb's tracebacks interleave), so a program that catches
    those errors and exits 0 is not marked. ``stdout_tail``/``stderr_tail`` hold the last
    ``Limits.output_bytes`` bytes of each stream (``output_truncated`` says whether anything was
    dropped). ``error`` is set when the sandbox itself could not start the program; that is a fault
    of the machine, not of the program, and ``passed`` is false.
    """

    passed: bool
    exit_code: int | None
    signal: int | None
    timed_out: bool
    killed_by: KilledBy | None
    stdout_tail: str
    stderr_tail: str
    duration_s: float
    output_truncated: bool = False
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict with every field (``signal_name`` added for readers)."""
        d = dataclasses.asdict(self)
        d["signal_name"] = _signal.Signals(self.signal).name if self.signal else None
        return d


_LAST_ERROR_PATTERNS: list[tuple[re.Pattern[str], KilledBy]] = [
    (re.compile(r"^MemoryError\b"), "memory"),
    (re.compile(r"\[Errno 27\]|File too large"), "file_size"),
    (re.compile(r"^BlockingIOError: \[Errno 11\]"), "nproc"),
    (re.compile(r"can't start new thread"), "nproc"),
]


def _last_lines(text: str, n: int) -> list[str]:
    """The last ``n`` non-blank lines of ``text``, stripped, the last one first."""
    lines = [line.strip() for line in reversed(text.splitlines()) if line.strip()]
    return lines[:n]


#: a failed fork as Python reports it anywhere in a line: the tracebacks of a fork bomb's many
#: processes interleave on the shared stderr, so its last line can be a fragment of one
_FORK_FAILED = re.compile(r"(BlockingIOError|\[Errno 11\] Resource temporarily unavailable)")


def classify(
    *,
    exit_code: int | None,
    signal: int | None,
    harness_kill: KilledBy | None,
    stderr_tail: str,
    duration_s: float,
    limits: Limits,
) -> KilledBy | None:
    """Which limit stopped the program, if any (see :class:`Verdict` for how each is told)."""
    if harness_kill is not None:
        return harness_kill
    if signal == _signal.SIGXCPU:
        return "cpu"
    if signal == _signal.SIGKILL and duration_s >= limits.cpu_s:
        # The hard CPU limit (soft + 1 s) sends SIGKILL to a program that ignores SIGXCPU. The
        # sandbox's CPU time cannot be read (bwrap does not reap into our rusage), but CPU time
        # never exceeds wall time, so a SIGKILL before cpu_s of wall time was something else.
        return "cpu"
    if signal == _signal.SIGXFSZ:
        return "file_size"
    if exit_code not in (None, 0):
        tail = _last_lines(stderr_tail, 8)
        last = tail[0] if tail else ""
        for pattern, kind in _LAST_ERROR_PATTERNS:
            if pattern.search(last):
                return kind
        # processes that all hit the process limit write their tracebacks at once, and the
        # lines interleave: a failed fork in any of the last lines is the process limit
        if any(_FORK_FAILED.search(line) for line in tail):
            return "nproc"
    return None
