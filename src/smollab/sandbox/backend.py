"""The command line that runs one program in bubblewrap, and the check that it works here.

The sandbox is built from the kernel's own mechanisms, one per threat:

- namespaces (``bwrap --unshare-all --unshare-user``): no network (a private loopback only), no
  view of other processes (a private pid namespace, so ``os.kill(os.getppid(), 9)`` hits the
  sandbox's own init and does nothing), no nested user namespaces (``--disable-userns``), and a
  filesystem made of read-only ``/usr`` and ``/`` plus a size-capped tmpfs ``/tmp`` holding the
  work dir. ``$HOME``, the repo, ``/etc`` and every other host path are simply not there. The
  program's files arrive through memfds (``--ro-bind-data``), never through a host directory.
- ``--clearenv``: no API keys or other environment secrets; only PATH, HOME, LANG and TMPDIR.
- an unprivileged uid: when the harness runs as root, ``setpriv`` drops to ``SANDBOX_UID`` before
  bwrap starts (RLIMIT_NPROC does not apply to root, and a root-owned sandbox is one kernel bug
  from root). ``--new-session`` keeps it off the harness's terminal.
- rlimits set by ``prlimit`` inside the sandbox, soft = hard, so the program cannot raise them.
  Setting them inside (rather than on bwrap) makes RLIMIT_NPROC count only the sandbox's own
  processes, because the kernel counts processes per user namespace.
- ``--die-with-parent`` and a private pid namespace: killing bwrap (the harness does, on timeout)
  kills every process the program started, however it daemonised.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from smollab.sandbox.verdict import Limits

SANDBOX_UID = 65534  # "nobody": owns nothing on the host
WORKDIR = "/tmp/work"  # the program's cwd inside the sandbox: main.py and the extra files
DEFAULT_PYTHON = "/usr/bin/python3"  # the system interpreter: standard library, no harness venv
# -E -s: ignore PYTHON* variables and user site-packages; -S: skip `site` (faster start-up and,
# as in the reference harnesses, no exit()/quit() builtins); -u: output reaches the harness as it
# is written, so a program killed at the timeout still shows what it printed; -B: no .pyc writes.
PYTHON_FLAGS = ("-E", "-s", "-S", "-u", "-B")


def python_flags(site: bool) -> tuple[str, ...]:
    """PYTHON_FLAGS, without ``-S`` when the program may import the interpreter's site-packages."""
    return tuple(f for f in PYTHON_FLAGS if not (site and f == "-S"))


_ROOT_LINKS = ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")


@dataclass(frozen=True)
class Bwrap:
    """The bubblewrap binary and which optional flags it understands (they vary by version)."""

    path: str
    disable_userns: bool
    tmpfs_size: bool


@functools.cache
def find_bwrap() -> Bwrap | None:
    path = shutil.which("bwrap")
    if path is None:
        return None
    try:
        text = subprocess.run(
            [path, "--help"], capture_output=True, text=True, timeout=10, check=False
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return Bwrap(path, disable_userns="--disable-userns" in text, tmpfs_size="--size" in text)


def find_prlimit() -> str | None:
    """prlimit must live under /usr: it runs inside the sandbox, where only /usr is mounted."""
    path = shutil.which("prlimit", path="/usr/bin:/usr/sbin")
    return str(Path(path).resolve()) if path else None


def drops_uid() -> bool:
    """Whether the harness must (and can) switch to SANDBOX_UID: only when it runs as root."""
    return os.geteuid() == 0


def find_setpriv() -> str | None:
    path = shutil.which("setpriv", path="/usr/bin:/usr/sbin:/bin:/sbin")
    return str(Path(path).resolve()) if path else None


def uid_drop_args() -> list[str]:
    """``setpriv`` to SANDBOX_UID with no supplementary groups, when running as root.

    An exec'd setpriv rather than subprocess's ``user=``/``group=``: with those, CPython cannot
    use vfork and forks the whole harness instead, which costs ~250 ms per program when the
    harness holds a 3 GB model (7 ms with setpriv, measured).
    """
    if not drops_uid():
        return []
    setpriv = find_setpriv() or "setpriv"
    uid = SANDBOX_UID
    return [setpriv, f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--"]


def _root_layout() -> list[str]:
    """Mirror the host's /bin, /lib... : symlinks into /usr on merged-/usr systems, else binds."""
    args: list[str] = []
    for p in _ROOT_LINKS:
        if os.path.islink(p):
            args += ["--symlink", os.readlink(p), p]
        elif os.path.isdir(p):
            args += ["--ro-bind", p, p]
    return args


def default_python() -> str:
    """DEFAULT_PYTHON where it exists, else the base interpreter running smollab.

    A venv's python resolves to its base interpreter; its install prefix is then bound read-only
    (see :func:`python_binds`) and must be readable by the sandbox uid.
    """
    if os.access(DEFAULT_PYTHON, os.X_OK):
        return DEFAULT_PYTHON
    return str(Path(sys.executable).resolve())


def python_binds(python: str) -> list[str]:
    """Read-only binds the interpreter needs beyond /usr: its install prefix and, for a venv's
    python, the venv (found by its ``pyvenv.cfg``), each at its host path."""
    dirs = []
    venv = Path(os.path.abspath(python)).parent.parent
    if (venv / "pyvenv.cfg").is_file():
        dirs.append(venv)
    dirs.append(Path(python).resolve().parent.parent)  # <prefix>/bin/python3.X
    args: list[str] = []
    for d in dict.fromkeys(dirs):
        if not d.is_relative_to("/usr"):
            args += ["--ro-bind", str(d), str(d)]
    return args


def prlimit_args(prlimit: str, limits: Limits, *, nproc: bool = True) -> list[str]:
    mb = 2**20
    # CPU: soft limit sends SIGXCPU (reported as "cpu"); the hard limit a second later is SIGKILL
    # for a program that ignores SIGXCPU.
    return [
        prlimit,
        f"--cpu={limits.cpu_s}:{limits.cpu_s + 1}",
        f"--as={limits.memory_mb * mb}",
        *([f"--nproc={limits.nproc}"] if nproc else []),
        f"--fsize={limits.file_size_mb * mb}",
        "--core=0",
        "--",
    ]


def bwrap_argv(
    bwrap: Bwrap,
    *,
    limits: Limits,
    python: str,
    prlimit: str,
    data_fds: list[tuple[int, str]],
    ro_binds: tuple[str, ...] = (),
    site: bool = False,
) -> list[str]:
    """The full argv: setpriv (under root), bwrap's mounts, prlimit, ``python main.py`` in WORKDIR.

    ``data_fds`` are (fd, path relative to WORKDIR) pairs; bwrap copies each fd's content into a
    read-only file there, so the program never touches a host file.
    """
    argv = [*uid_drop_args(), bwrap.path, "--unshare-all", "--unshare-user"]
    if bwrap.disable_userns:
        argv.append("--disable-userns")  # no nested user namespaces (a common exploit path)
    argv += ["--die-with-parent", "--new-session", "--hostname", "sandbox"]
    argv += ["--ro-bind", "/usr", "/usr", *_root_layout()]
    argv += ["--proc", "/proc", "--dev", "/dev", "--perms", "1777"]
    if bwrap.tmpfs_size:
        argv += ["--size", str(limits.tmp_mb * 2**20)]
    argv += ["--tmpfs", "/tmp", "--dir", WORKDIR]
    argv += python_binds(python)  # binds after the tmpfs, so one under /tmp is not hidden by it
    for path in ro_binds:
        argv += ["--ro-bind", path, path]
    made = {WORKDIR}
    for fd, rel in data_fds:
        dest = f"{WORKDIR}/{rel}"
        for parent in reversed(Path(dest).parents):
            if str(parent).startswith(WORKDIR + "/") and str(parent) not in made:
                argv += ["--dir", str(parent)]
                made.add(str(parent))
        argv += ["--ro-bind-data", str(fd), dest]
    # bwrap builds / as a tmpfs; read-only, so /tmp (size-capped) is the only writable place
    argv += ["--remount-ro", "/", "--chdir", WORKDIR, "--clearenv"]
    for key, value in sandbox_env(WORKDIR).items():
        argv += ["--setenv", key, value]
    argv += ["--", *prlimit_args(prlimit, limits), python, *python_flags(site), "main.py"]
    return argv


def sandbox_env(home: str) -> dict[str, str]:
    """The whole environment a sandboxed program sees: nothing from the harness."""
    return {"PATH": "/usr/bin:/bin", "HOME": home, "LANG": "C.UTF-8", "TMPDIR": "/tmp"}


INSTALL_HINT = (
    "Install bubblewrap (scripts/install_system_deps.sh, or `apt-get install bubblewrap`) and "
    "util-linux (for prlimit), and allow unprivileged user namespaces "
    "(`sysctl -w kernel.unprivileged_userns_clone=1` and a non-zero user.max_user_namespaces; "
    "on Ubuntu 24.04 also `sysctl -w kernel.apparmor_restrict_unprivileged_userns=0`; inside "
    "Docker, run with `--security-opt seccomp=unconfined` or a profile that allows unshare). "
    "Or pass the explicit unsafe flag to run programs as plain subprocesses with rlimits only: "
    "they can then read your files, use the network and see the environment."
)


def unavailable_reason(python: str) -> str | None:
    """None when every piece is present; else what is missing (without running anything)."""
    if not os.path.exists("/proc/self/ns/user"):
        return "This kernel has no user namespaces (needed by the code sandbox)."
    if find_bwrap() is None:
        return "bubblewrap (`bwrap`) is not on PATH; the code sandbox needs it."
    if drops_uid() and find_setpriv() is None:
        return "`setpriv` (util-linux) is missing; as root, the sandbox drops privileges with it."
    if find_prlimit() is None:
        return "`prlimit` (util-linux) is not in /usr/bin; the code sandbox sets rlimits with it."
    if not os.access(python, os.X_OK):
        return f"The sandbox's Python interpreter {python} does not exist or is not executable."
    return None
