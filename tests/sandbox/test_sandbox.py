"""The sandbox API on ordinary programs: verdicts, stdin, extra files, the pool, bad input."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from smollab.errors import ConfigError, SandboxUnavailable
from smollab.sandbox import Limits, Sandbox, Verdict, backend, sandbox_status
from smollab.sandbox import sandbox as sandbox_mod
from tests.sandbox.conftest import SMALL


def test_hello_passes(sandbox: Sandbox) -> None:
    v = sandbox.run("print('hello', 6 * 7)")
    assert v.passed, v
    assert v.exit_code == 0 and v.signal is None and v.killed_by is None and not v.timed_out
    assert v.stdout_tail == "hello 42\n"
    assert v.stderr_tail == "" and v.error is None and not v.output_truncated


def test_exit_status_and_exceptions_fail(sandbox: Sandbox) -> None:
    v = sandbox.run("import sys\nsys.exit(3)")
    assert not v.passed and v.exit_code == 3 and v.killed_by is None
    v = sandbox.run("assert 1 + 1 == 3, 'bad maths'")
    assert not v.passed and v.exit_code == 1
    assert "AssertionError: bad maths" in v.stderr_tail
    v = sandbox.run("def f(:\n")
    assert not v.passed and "SyntaxError" in v.stderr_tail


def test_signal_death_is_reported_as_signal(sandbox: Sandbox) -> None:
    v = sandbox.run("import os, signal\nos.kill(os.getpid(), signal.SIGTERM)")
    assert not v.passed
    assert v.exit_code is None and v.signal == 15 and v.killed_by is None
    assert v.to_json()["signal_name"] == "SIGTERM"


def test_stdin_and_extra_files(sandbox: Sandbox) -> None:
    src = "import sys\nfrom pkg.helper import double\nprint(double(int(sys.stdin.read())))"
    files = {"pkg/__init__.py": "", "pkg/helper.py": "def double(x):\n    return 2 * x\n"}
    v = sandbox.run(src, files=files, stdin="21")
    assert v.passed, v.stderr_tail
    assert v.stdout_tail == "42\n"


def test_code_is_read_only_but_work_dir_is_writable(sandbox: Sandbox) -> None:
    src = (
        "import os\n"
        "open('out.txt', 'w').write('x')\n"
        "print(sorted(os.listdir('.')))\n"
        "try:\n"
        "    open('main.py', 'w')\n"
        "except OSError as e:\n"
        "    print('main.py', e.errno)\n"
    )
    v = sandbox.run(src)
    assert v.passed, v.stderr_tail
    assert v.stdout_tail.splitlines() == ["['main.py', 'out.txt']", "main.py 30"]  # EROFS


def test_unicode_round_trip(sandbox: Sandbox) -> None:
    v = sandbox.run("import sys\nprint('héllo ∑ 😀')\nprint('ünï', file=sys.stderr)")
    assert v.passed and v.stdout_tail == "héllo ∑ 😀\n" and v.stderr_tail == "ünï\n"


def test_run_many_preserves_order_and_isolates_failures(sandbox: Sandbox) -> None:
    sources = [f"print({i})" for i in range(6)]
    sources[2] = "while True: pass"  # one hangs until its timeout
    sources[4] = "raise SystemExit(5)"
    done: list[int] = []
    verdicts = sandbox.run_many(sources, workers=2, on_done=lambda i, v: done.append(i))
    assert [v.passed for v in verdicts] == [True, True, False, True, False, True]
    for i in (0, 1, 3, 5):
        assert verdicts[i].stdout_tail == f"{i}\n"
    assert verdicts[2].killed_by == "timeout" and verdicts[4].exit_code == 5
    assert sorted(done) == list(range(6))


def test_run_many_one_worker_and_empty(sandbox: Sandbox) -> None:
    assert sandbox.run_many([]) == []
    vs = sandbox.run_many(["print(1)", "print(2)"], workers=1)
    assert [v.stdout_tail for v in vs] == ["1\n", "2\n"]


def test_verdict_to_json_is_serialisable(sandbox: Sandbox) -> None:
    d = sandbox.run("print('x')").to_json()
    assert json.loads(json.dumps(d)) == d
    assert set(d) >= {
        "passed",
        "exit_code",
        "signal",
        "timed_out",
        "killed_by",
        "stdout_tail",
        "stderr_tail",
        "duration_s",
    }


@pytest.mark.parametrize(
    "name", ["/abs.py", "../escape.py", "a/../../b.py", "main.py", "", "./main.py"]
)
def test_bad_extra_file_names_are_refused(sandbox: Sandbox, name: str) -> None:
    with pytest.raises(ConfigError, match="Sandbox file name"):
        sandbox.run("pass", files={name: "x"})


def test_non_string_source_is_refused(sandbox: Sandbox) -> None:
    with pytest.raises(ConfigError, match="must be str"):
        sandbox.run(b"print(1)")  # type: ignore[arg-type]


@pytest.mark.parametrize("field", ["timeout_s", "cpu_s", "memory_mb", "nproc", "output_bytes"])
def test_bad_limits_name_the_field(field: str) -> None:
    with pytest.raises(ConfigError, match=f"{field}=0"):
        Limits(**{field: 0})


@pytest.mark.parametrize("field", ["cpu_s", "memory_mb", "nproc", "file_size_mb", "tmp_mb"])
def test_fractional_kernel_limits_are_refused(field: str) -> None:
    """QA: cpu_s=1.5 was cut to 1 s by prlimit, and the verdict then named no limit."""
    with pytest.raises(ConfigError, match=f"{field}=1.5 is not a whole number"):
        Limits(**{field: 1.5})
    assert Limits(**{field: 2.0}).__dict__[field] == 2  # a whole float is taken as an int
    assert isinstance(Limits(**{field: 2.0}).__dict__[field], int)
    assert Limits(timeout_s=1.5).timeout_s == 1.5


def test_sandbox_takes_limits_not_a_dict() -> None:
    with pytest.raises(ConfigError, match="Sandbox takes a Limits, not a dict"):
        Sandbox({"timeout_s": 5})  # type: ignore[arg-type]


def test_run_many_refuses_one_program_text_and_zero_workers(sandbox: Sandbox) -> None:
    with pytest.raises(ConfigError, match="a list of programs"):
        sandbox.run_many("print(1)")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="workers=0 is invalid"):
        sandbox.run_many(["print(1)"], workers=0)


def test_status_is_none_where_the_sandbox_works(sandbox: Sandbox) -> None:
    assert sandbox_status() is None
    assert sandbox_status(refresh=True) is None


def test_refuses_without_bubblewrap_unless_unsafe(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(backend, "find_bwrap", lambda: None)
    monkeypatch.setattr(sandbox_mod, "_STATUS_CACHE", {})
    reason = sandbox_status()
    assert reason is not None and "bubblewrap" in reason
    with pytest.raises(SandboxUnavailable) as err:
        Sandbox(SMALL)
    msg = err.value.render()
    assert "bubblewrap" in msg and "apt-get install bubblewrap" in msg and "unsafe" in msg
    v = Sandbox(SMALL, unsafe=True).run("print('ran unsafely')")
    assert v.passed and v.stdout_tail == "ran unsafely\n"


def test_refuses_when_namespaces_fail(monkeypatch: pytest.MonkeyPatch) -> None:
    # A bwrap that exists but cannot create namespaces (as in a locked-down container).
    fake = backend.Bwrap(path="/bin/false", disable_userns=True, tmpfs_size=True)
    monkeypatch.setattr(backend, "find_bwrap", lambda: fake)
    monkeypatch.setattr(sandbox_mod, "_STATUS_CACHE", {})
    reason = sandbox_status()
    assert reason is not None and "cannot start a sandbox" in reason


def test_missing_interpreter_is_refused(tmp_path: object) -> None:
    with pytest.raises(SandboxUnavailable, match="does not exist"):
        Sandbox(SMALL, python="/nonexistent/python3")


def test_unsafe_mode_still_enforces_timeout_and_clears_env(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SMOLLAB_TEST_SECRET", "planted-secret-123")
    sb = Sandbox(Limits(timeout_s=1, cpu_s=2), unsafe=True)
    v = sb.run("while True: pass")
    assert not v.passed and v.timed_out and v.killed_by == "timeout"
    v = sb.run("import os\nprint(sorted(os.environ))")
    assert v.passed and "SMOLLAB_TEST_SECRET" not in v.stdout_tail
    v = sb.run("import sys\nprint(sys.stdin.read())\nopen('f.txt','w').write('ok')", stdin="in")
    assert v.passed and v.stdout_tail == "in\n"


def test_verdict_passed_requires_no_limit() -> None:
    v = Verdict(
        passed=False,
        exit_code=0,
        signal=None,
        timed_out=False,
        killed_by="output",
        stdout_tail="",
        stderr_tail="",
        duration_s=0.1,
    )
    assert v.to_json()["killed_by"] == "output" and v.to_json()["signal_name"] is None


def test_interleaved_fork_bomb_tracebacks_are_the_process_limit() -> None:
    # `while True: os.fork()`: the many processes' tracebacks interleave on the shared stderr,
    # so the last line can be a fragment (as captured from a real run); still the nproc limit
    from smollab.sandbox.verdict import classify

    def killed_by(stderr: str) -> str | None:
        return classify(
            exit_code=1,
            signal=None,
            harness_kill=None,
            stderr_tail=stderr,
            duration_s=0.5,
            limits=Limits(),
        )

    garbled = (
        "BlockingIOError: [Errno 11] Resource temporarily unavailable\n"
        "while True: os.fork()\n Traceback (most recent call last):\n"
        '      File "/tmp/work/main.py", line 2, in <module>\n'
        "       while True: os.fork()\n                 ^^^^^^^^^\n"
        "BlockingIOError: [Errno 11] Resource temporarily unavailable\n"
        "      Traceback (most recent call last):\n"
    )
    assert killed_by(garbled) == "nproc"
    assert killed_by(": [Errno 11] Resource temporarily unavailable\n") == "nproc"
    # an ordinary failure stays an ordinary failure
    plain = 'Traceback (most recent call last):\n  File "main.py", line 1\nValueError: x\n'
    assert killed_by(plain) is None


def test_read_only_binds_are_visible_and_read_only(sandbox: Sandbox, tmp_path: Path) -> None:
    # pytest's tmp_path is private to root; the sandbox uid needs a path it may traverse
    lib = Path(tempfile.mkdtemp(prefix="smollab-ro-bind-"))
    lib.chmod(0o755)
    (lib / "shared_helper.py").write_text("ANSWER = 42\n")
    (lib / "shared_helper.py").chmod(0o644)
    try:
        sb = Sandbox(SMALL, ro_binds=[lib])
        src = (
            f"import sys\nsys.path.insert(0, {str(lib)!r})\nimport shared_helper\n"
            f"print(shared_helper.ANSWER)\nopen({str(lib / 'new.py')!r}, 'w')"
        )
        v = sb.run(src)
    finally:
        shutil.rmtree(lib)
    assert not v.passed and v.stdout_tail == "42\n" and "Read-only file system" in v.stderr_tail
    with pytest.raises(ConfigError, match="does not exist"):
        Sandbox(SMALL, ro_binds=[tmp_path / "missing"])


def test_setup_failure_is_an_error_verdict_not_a_program_failure(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    gone = tmp_path / "gone"
    gone.mkdir()
    sb = Sandbox(SMALL, ro_binds=[gone])
    gone.rmdir()  # bwrap can no longer bind it: the sandbox, not the program, fails
    v = sb.run("print('never runs')")
    assert not v.passed and v.error is not None and v.error.startswith("bwrap:")
    assert v.exit_code is None and v.killed_by is None


@pytest.mark.skipif(os.geteuid() != 0, reason="the uid drop happens only under root")
def test_programs_run_as_an_unprivileged_uid(sandbox: Sandbox) -> None:
    src = "import os\nprint(os.getuid(), os.getgid(), os.getgroups())"
    assert sandbox.run(src).stdout_tail == "65534 65534 []\n"
    # even unsafe mode drops root, so the program cannot signal the harness (signal 0 = probe)
    unsafe = Sandbox(SMALL, unsafe=True)
    assert unsafe.run(src).stdout_tail == "65534 65534 []\n"
    v = unsafe.run("import os\nos.kill(os.getppid(), 0)")
    assert not v.passed and "PermissionError" in v.stderr_tail


def test_unsafe_mode_kills_leftover_children() -> None:
    # no pid namespace in unsafe mode: the harness kills the process group after the program exits
    src = "import os, time\npid = os.fork()\nif pid == 0:\n    time.sleep(600)\nprint(pid)\n"
    # unsafe mode's nproc counts every process of the dropped uid, including fork bombs that other
    # test workers run at the same moment: a roomy limit keeps this test about process groups
    v = Sandbox(dataclasses.replace(SMALL, nproc=4096), unsafe=True).run(src)
    assert v.passed, v.stderr_tail
    child = int(v.stdout_tail)
    for _ in range(100):  # SIGKILL delivery is asynchronous; the child is reaped by init
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    else:
        raise AssertionError(f"child {child} still alive")


def test_default_interpreter_falls_back_to_the_running_one(monkeypatch: pytest.MonkeyPatch) -> None:
    assert (
        backend.default_python() == backend.DEFAULT_PYTHON or not Path("/usr/bin/python3").exists()
    )
    assert backend.python_binds("/usr/bin/python3") == []
    monkeypatch.setattr(backend, "DEFAULT_PYTHON", "/nonexistent/python3")
    real = Path(sys.executable).resolve()
    assert backend.default_python() == str(real)
    prefix = str(real.parent.parent)
    assert backend.python_binds(str(real)) == (
        [] if prefix.startswith("/usr") else ["--ro-bind", prefix, prefix]
    )


def test_site_packages_of_a_venv_only_when_asked(sandbox: Sandbox) -> None:
    root = Path(tempfile.mkdtemp(prefix="smollab-venv-"))
    root.chmod(0o755)  # readable by the sandbox uid
    try:
        venv = root / "venv"
        subprocess.run(
            [backend.DEFAULT_PYTHON, "-m", "venv", "--without-pip", str(venv)], check=True
        )
        (site_dir,) = venv.glob("lib/python3*/site-packages")
        (site_dir / "venv_only_mod.py").write_text("VALUE = 'from the venv'\n")
        for p in (venv, *venv.rglob("*")):
            if not p.is_symlink():
                p.chmod(0o755 if p.is_dir() else 0o644)
        python = str(venv / "bin" / "python")
        src = "import venv_only_mod\nprint(venv_only_mod.VALUE)"
        v = Sandbox(SMALL, python=python, site=True).run(src)
        assert v.passed and v.stdout_tail == "from the venv\n", v.stderr_tail
        v = Sandbox(SMALL, python=python).run(src)
        assert not v.passed and "ModuleNotFoundError" in v.stderr_tail
    finally:
        shutil.rmtree(root)
