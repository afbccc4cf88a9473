"""Run untrusted Python programs: :class:`Sandbox` (one or many) and :func:`sandbox_status`."""

from __future__ import annotations

import contextlib
import os
import re
import selectors
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path, PurePosixPath

from smollab.errors import ConfigError, SandboxUnavailable
from smollab.sandbox import backend
from smollab.sandbox.verdict import KilledBy, Limits, Verdict, classify

_DRAIN_GRACE_S = 1.0  # after exit, how long to wait for pipes still held by dying processes
_KILL_GRACE_S = 5.0  # after SIGKILL, how long before giving up on the process entirely
_READ_CHUNK = 65536
_SETUP_FAILURE = re.compile(r"^(bwrap|prlimit): ", re.MULTILINE)


class _Tail:
    """The last ``cap`` bytes of a stream; older bytes are dropped as new ones arrive."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.buf = bytearray()
        self.total = 0

    def add(self, chunk: bytes) -> None:
        self.total += len(chunk)
        self.buf += chunk
        if len(self.buf) > 2 * self.cap:  # trim in batches: amortised O(1) per byte
            del self.buf[: -self.cap]

    def text(self) -> str:
        return bytes(self.buf[-self.cap :]).decode("utf-8", errors="replace")

    @property
    def truncated(self) -> bool:
        return self.total > self.cap


def _memfd(name: str, text: str) -> int:
    """An anonymous in-memory file holding ``text``, rewound; close-on-exec in this process."""
    fd = os.memfd_create(name, os.MFD_CLOEXEC)
    data = text.encode("utf-8")
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


def _check_files(files: Mapping[str, str]) -> list[tuple[str, str]]:
    checked = []
    for name, content in files.items():
        p = PurePosixPath(name)
        if (
            not name
            or p.is_absolute()
            or ".." in p.parts
            or str(p) in (".", "main.py")
            or not isinstance(content, str)
        ):
            raise ConfigError(
                f"Sandbox file name {name!r} is invalid.",
                hint="Extra files need a relative path inside the work dir (no '..', not "
                "main.py) and str content.",
            )
        checked.append((str(p), content))
    return checked


class Sandbox:
    """Runs Python programs isolated from the machine, one per call or many in a pool.

    With ``unsafe=False`` (the default) every program runs under bubblewrap as described in
    :mod:`smollab.sandbox.backend`; construction raises :class:`SandboxUnavailable` when that is not
    possible here. ``unsafe=True`` runs programs as plain subprocesses with the same rlimits and
    timeout (and, under root, an unprivileged uid) but no isolation: they can read files, use the
    network and kill processes of the same user, and as root the ``nproc`` limit counts every
    process of that uid, so programs running at the same time share it. ``python`` is the
    interpreter inside the sandbox (default the system ``/usr/bin/python3``, standard library only,
    else the interpreter running smollab); ``ro_binds`` are extra host paths made visible read-only
    at the same place (for example a directory of wheels); under root they must be readable by
    ``backend.SANDBOX_UID``. ``site=True`` lets programs import the interpreter's site-packages
    (pass a venv's python to give them its packages; the venv and its base install are bound
    read-only); by default they get the standard library only.
    """

    def __init__(
        self,
        limits: Limits = Limits(),  # frozen, so one shared default is safe
        *,
        unsafe: bool = False,
        python: str | None = None,
        ro_binds: Sequence[str] = (),
        site: bool = False,
    ) -> None:
        if not isinstance(limits, Limits):
            raise ConfigError(
                f"Sandbox takes a Limits, not a {type(limits).__name__}: "
                "Sandbox(Limits(timeout_s=5, ...)), or Limits(**fields) for a dict."
            )
        self.limits = limits
        self.unsafe = unsafe
        self.site = site
        self.python = python = python or backend.default_python()
        self.ro_binds = tuple(str(Path(p).resolve()) for p in ro_binds)
        for p in self.ro_binds:
            if not os.path.exists(p):
                raise ConfigError(
                    f"Sandbox read-only bind {p} does not exist.",
                    hint="Pass existing host paths in ro_binds.",
                )
        if not unsafe:
            reason = sandbox_status(python)
            if reason is not None:
                raise SandboxUnavailable(reason, hint=backend.INSTALL_HINT)
        elif not os.access(python, os.X_OK):
            raise SandboxUnavailable(f"The Python interpreter {python} is not executable.")

    # ---------------------------------------------------------------- public API
    def run(
        self, source: str, *, files: Mapping[str, str] | None = None, stdin: str = ""
    ) -> Verdict:
        """Run ``python3 main.py`` with ``source`` as main.py in a fresh work dir.

        ``files`` maps relative paths to extra file contents placed beside main.py (importable as
        modules); ``stdin`` is fed to the program. Never raises for anything the program does:
        crashes, hangs and limit hits all come back as a :class:`Verdict`.
        """
        if not isinstance(source, str):
            raise ConfigError(f"Sandbox source must be str, got {type(source).__name__}.")
        extra = _check_files(files or {})
        if self.unsafe:
            return self._run_unsafe(source, extra, stdin)
        return self._run_bwrap(source, extra, stdin)

    def run_many(
        self,
        sources: Sequence[str],
        *,
        workers: int | None = None,
        on_done: Callable[[int, Verdict], None] | None = None,
    ) -> list[Verdict]:
        """Run many programs, ``workers`` at a time (default: two per CPU); order is preserved.

        Each program gets its own sandbox, so one that hangs, floods output or kills processes
        affects only its own verdict. ``on_done(index, verdict)`` is called as each one finishes
        (from a worker thread), for progress display.
        """
        # Starting a sandbox spends part of its time waiting on the kernel (namespace set-up and
        # teardown), so two workers per core keep the cores busy (measured: 2 workers 42-46
        # programs/s, 4 workers 54-64/s on 2 loaded cores).
        if isinstance(sources, str):  # a str is a sequence of one-character programs
            raise ConfigError(
                "Sandbox.run_many takes a list of programs, not one program's text: use "
                "run(source) for one, or run_many([source, ...])."
            )
        if workers is not None and workers < 1:
            raise ConfigError(f"Sandbox workers={workers} is invalid; use 1 or more.")
        n = workers or 2 * (os.cpu_count() or 1)

        def one(i: int) -> Verdict:
            v = self.run(sources[i])
            if on_done is not None:
                on_done(i, v)
            return v

        if n == 1:
            return [one(i) for i in range(len(sources))]
        with ThreadPoolExecutor(max_workers=n, thread_name_prefix="sandbox") as pool:
            return list(pool.map(one, range(len(sources))))

    # ---------------------------------------------------------------- backends
    def _run_bwrap(self, source: str, extra: list[tuple[str, str]], stdin: str) -> Verdict:
        bwrap = backend.find_bwrap()
        prlimit = backend.find_prlimit()
        assert bwrap is not None and prlimit is not None  # checked in __init__
        fds: list[int] = []
        try:
            fds.append(_memfd("main.py", source))
            data_fds = [(fds[-1], "main.py")]
            for rel, content in extra:
                fds.append(_memfd(rel, content))
                data_fds.append((fds[-1], rel))
            stdin_fd = _memfd("stdin", stdin) if stdin else None
            if stdin_fd is not None:
                fds.append(stdin_fd)
            argv = backend.bwrap_argv(
                bwrap,
                limits=self.limits,
                python=self.python,
                prlimit=prlimit,
                data_fds=data_fds,
                ro_binds=self.ro_binds,
                site=self.site,
            )
            for attempt in range(2):
                verdict = _execute(
                    argv,
                    limits=self.limits,
                    env={"PATH": "/usr/bin:/bin"},
                    cwd="/",
                    pass_fds=tuple(fd for fd, _ in data_fds),
                    stdin_fd=stdin_fd,
                    bwrap_status=True,
                )
                if verdict.error is None or attempt == 1:
                    break
                # Setting up namespaces can fail transiently under load (EAGAIN); try once more.
                # bwrap read the memfds through a shared file offset, so rewind them first.
                for fd in fds:
                    os.lseek(fd, 0, os.SEEK_SET)
            return verdict
        finally:
            for fd in fds:
                os.close(fd)

    def _run_unsafe(self, source: str, extra: list[tuple[str, str]], stdin: str) -> Verdict:
        with tempfile.TemporaryDirectory(prefix="smollab-unsafe-") as tmp:
            work = Path(tmp)
            (work / "main.py").write_text(source, encoding="utf-8")
            for rel, content in extra:
                (work / rel).parent.mkdir(parents=True, exist_ok=True)
                (work / rel).write_text(content, encoding="utf-8")
            if backend.drops_uid():
                os.chmod(work, 0o777)  # the dropped uid must be able to write its work dir
            stdin_fd = _memfd("stdin", stdin) if stdin else None
            try:
                argv = [self.python, *backend.python_flags(self.site), "main.py"]
                prlimit = backend.find_prlimit()
                if prlimit is not None:
                    # Without a user namespace RLIMIT_NPROC counts every process of the uid, so
                    # it is only set when the program runs as its own uid (root drops to one).
                    nproc = backend.drops_uid()
                    argv = [*backend.prlimit_args(prlimit, self.limits, nproc=nproc), *argv]
                argv = [*backend.uid_drop_args(), *argv]
                return _execute(
                    argv,
                    limits=self.limits,
                    env=backend.sandbox_env(str(work)),
                    cwd=str(work),
                    pass_fds=(),
                    stdin_fd=stdin_fd,
                    bwrap_status=False,
                )
            finally:
                if stdin_fd is not None:
                    os.close(stdin_fd)


def _execute(
    argv: list[str],
    *,
    limits: Limits,
    env: dict[str, str],
    cwd: str,
    pass_fds: tuple[int, ...],
    stdin_fd: int | None,
    bwrap_status: bool,
) -> Verdict:
    """Start ``argv`` in a new session, read its output with caps, enforce the wall clock."""
    start = time.monotonic()
    try:
        proc = subprocess.Popen(
            argv,
            stdin=stdin_fd if stdin_fd is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            cwd=cwd,
            pass_fds=pass_fds,
            start_new_session=True,  # its own process group, so one killpg reaches everything
        )
    except OSError as e:
        return _failed_to_start(f"could not start the sandbox: {e}", time.monotonic() - start)

    assert proc.stdout is not None and proc.stderr is not None
    out, err = _Tail(limits.output_bytes), _Tail(limits.output_bytes)
    tails = {proc.stdout.fileno(): out, proc.stderr.fileno(): err}
    harness_kill: KilledBy | None = None
    pidfd = os.pidfd_open(proc.pid)
    sel = selectors.DefaultSelector()
    try:
        for fd in tails:
            os.set_blocking(fd, False)
            sel.register(fd, selectors.EVENT_READ)
        sel.register(pidfd, selectors.EVENT_READ)
        deadline = start + limits.timeout_s
        open_pipes, exited_at, killed_at = len(tails), None, None

        def kill(why: KilledBy) -> None:
            nonlocal harness_kill, killed_at
            harness_kill, killed_at = why, time.monotonic()
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)

        while open_pipes or exited_at is None:
            now = time.monotonic()
            if exited_at is not None:
                if now >= exited_at + _DRAIN_GRACE_S:
                    break
                wait = exited_at + _DRAIN_GRACE_S - now
            elif killed_at is not None:
                if now >= killed_at + _KILL_GRACE_S:
                    break
                wait = killed_at + _KILL_GRACE_S - now
            else:
                if now >= deadline:
                    kill("timeout")
                    continue
                wait = deadline - now
            for key, _ in sel.select(wait):
                if key.fd == pidfd:
                    sel.unregister(pidfd)
                    exited_at = time.monotonic()
                    continue
                try:
                    chunk = os.read(key.fd, _READ_CHUNK)
                except BlockingIOError:
                    continue
                if not chunk:
                    sel.unregister(key.fd)
                    open_pipes -= 1
                    continue
                tails[key.fd].add(chunk)
                if killed_at is None and out.total + err.total > limits.max_output_bytes:
                    kill("output")
        if exited_at is None:  # should not happen: SIGKILL cannot be ignored
            kill(harness_kill or "timeout")
        # Stragglers left in the process group (only possible in unsafe mode, where there is no
        # pid namespace to take them down) go too; the group is still ours until proc is reaped.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    except BaseException:
        # The harness itself failed or was interrupted (Ctrl-C): never leave the program running.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        raise
    finally:
        sel.close()
        os.close(pidfd)
        proc.stdout.close()
        proc.stderr.close()
    duration = time.monotonic() - start

    rc = proc.returncode
    exit_code: int | None = rc
    sig: int | None = None
    if rc < 0:
        exit_code, sig = None, -rc
    elif bwrap_status and 128 < rc <= 128 + 64:
        exit_code, sig = None, rc - 128  # bwrap reports "killed by signal N" as 128 + N
    stderr_text = err.text()
    if bwrap_status and rc == 1 and not out.total and _SETUP_FAILURE.match(stderr_text):
        return _failed_to_start(stderr_text.strip(), duration)
    killed_by = classify(
        exit_code=exit_code,
        signal=sig,
        harness_kill=harness_kill,
        stderr_tail=stderr_text,
        duration_s=duration,
        limits=limits,
    )
    return Verdict(
        passed=exit_code == 0 and killed_by is None,
        exit_code=exit_code,
        signal=sig,
        timed_out=harness_kill == "timeout",
        killed_by=killed_by,
        stdout_tail=out.text(),
        stderr_tail=stderr_text,
        duration_s=round(duration, 4),
        output_truncated=out.truncated or err.truncated,
    )


def _failed_to_start(message: str, duration: float) -> Verdict:
    return Verdict(
        passed=False,
        exit_code=None,
        signal=None,
        timed_out=False,
        killed_by=None,
        stdout_tail="",
        stderr_tail="",
        duration_s=round(duration, 4),
        error=message,
    )


_STATUS_CACHE: dict[str, str | None] = {}


def sandbox_status(python: str | None = None, *, refresh: bool = False) -> str | None:
    """None when the bubblewrap sandbox works here, else why not (one sentence, for preflight).

    Runs a one-line probe program through the real sandbox once per interpreter (default: the
    one :class:`Sandbox` uses) and caches the answer; ``refresh=True`` probes again.
    """
    python = python or backend.default_python()
    if not refresh and python in _STATUS_CACHE:
        return _STATUS_CACHE[python]
    reason = backend.unavailable_reason(python)
    if reason is None:
        reason = _probe(python)
    _STATUS_CACHE[python] = reason
    return reason


def _probe(python: str) -> str | None:
    bwrap, prlimit = backend.find_bwrap(), backend.find_prlimit()
    assert bwrap is not None and prlimit is not None
    limits = Limits(timeout_s=30)
    fd = _memfd("main.py", "print('sandbox-ok')\n")
    try:
        argv = backend.bwrap_argv(
            bwrap, limits=limits, python=python, prlimit=prlimit, data_fds=[(fd, "main.py")]
        )
        v = _execute(
            argv,
            limits=limits,
            env={"PATH": "/usr/bin:/bin"},
            cwd="/",
            pass_fds=(fd,),
            stdin_fd=None,
            bwrap_status=True,
        )
    finally:
        os.close(fd)
    if v.passed and v.stdout_tail.strip() == "sandbox-ok":
        return None
    detail = (v.error or v.stderr_tail or v.stdout_tail).strip().splitlines()
    said = detail[-1] if detail else f"exit status {v.exit_code}"
    return f"bubblewrap is installed but cannot start a sandbox here ({said})."
