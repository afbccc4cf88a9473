"""Hostile programs: each is contained and scored as failed (or sees nothing), and the harness
carries on. Limits are small (3 s wall, 2 CPU s, 512 MB, 16 processes, 1 MB files)."""

from __future__ import annotations

import os
import signal
import socket
import textwrap
from pathlib import Path

import pytest

from smollab.sandbox import Limits, Sandbox
from tests.conftest import REPO


def _still_works(sandbox: Sandbox) -> None:
    v = sandbox.run("print('next')")
    assert v.passed and v.stdout_tail == "next\n", v


def test_infinite_loop_is_killed_at_timeout(sandbox: Sandbox) -> None:
    v = sandbox.run("while True:\n    pass")
    assert not v.passed and v.timed_out and v.killed_by == "timeout"
    assert v.signal == 9
    _still_works(sandbox)


def test_sleeping_program_is_killed_at_timeout(sandbox: Sandbox) -> None:
    v = sandbox.run("import time\nprint('before', flush=True)\ntime.sleep(600)")
    assert not v.passed and v.killed_by == "timeout"
    assert v.stdout_tail == "before\n"  # output printed before the kill is kept


def test_fork_bomb_is_contained(sandbox: Sandbox) -> None:
    src = textwrap.dedent(
        """
        import os
        while True:
            try:
                os.fork()
            except OSError:
                pass
        """
    )
    v = sandbox.run(src)
    assert not v.passed and v.killed_by in ("timeout", "nproc")
    _still_works(sandbox)


def test_fork_limit_is_reported_as_nproc(sandbox: Sandbox) -> None:
    src = "import os, time\nfor _ in range(100):\n    if os.fork() == 0:\n        time.sleep(30)"
    v = sandbox.run(src)
    assert not v.passed and v.killed_by == "nproc"
    assert "Resource temporarily unavailable" in v.stderr_tail


def test_children_die_with_the_program(sandbox: Sandbox) -> None:
    # A daemonised child would keep the pipes open; the sandbox's pid namespace ends with main.
    src = "import os, time\nif os.fork() == 0:\n    os.setsid()\n    time.sleep(600)\nprint('bye')"
    v = sandbox.run(src)
    assert v.passed and not v.timed_out and v.stdout_tail == "bye\n"


def test_huge_allocation_is_refused(sandbox: Sandbox) -> None:
    v = sandbox.run("x = bytearray(50 * 2**30)\nprint('allocated')")
    assert not v.passed and v.killed_by == "memory"
    assert "allocated" not in v.stdout_tail


def test_cpu_limit(sandbox: Sandbox) -> None:
    v = Sandbox(Limits(timeout_s=30, cpu_s=1)).run("while True:\n    pass")
    assert not v.passed and v.killed_by == "cpu" and v.signal == signal.SIGXCPU


@pytest.mark.slow
def test_cpu_limit_when_sigxcpu_is_ignored(sandbox: Sandbox) -> None:
    # a program that ignores SIGXCPU meets the hard limit one CPU second later: SIGKILL
    ign = "import signal\nsignal.signal(signal.SIGXCPU, signal.SIG_IGN)\nwhile True:\n    pass"
    v = Sandbox(Limits(timeout_s=30, cpu_s=1)).run(ign)
    assert not v.passed and v.killed_by == "cpu" and v.signal == signal.SIGKILL


def test_file_size_limit(sandbox: Sandbox) -> None:
    v = sandbox.run("open('big.bin', 'wb').write(b'x' * (2 * 2**20))")
    assert not v.passed and v.killed_by == "file_size"


def test_writes_outside_the_work_dir_fail(sandbox: Sandbox, tmp_path: Path) -> None:
    target = tmp_path / "escaped.txt"
    for path in (str(target), "/usr/escaped.txt", "/escaped.txt", str(REPO / "escaped.txt")):
        v = sandbox.run(f"open({path!r}, 'w').write('pwned')")
        assert not v.passed and v.exit_code == 1, path
        assert "Error" in v.stderr_tail
    assert not target.exists() and not Path("/usr/escaped.txt").exists()
    assert not (REPO / "escaped.txt").exists()
    # its /tmp is private: a file written there never appears on the host
    name = f"smollab-sandbox-probe-{os.getpid()}"
    v = sandbox.run(f"open('/tmp/{name}', 'w').write('x')\nprint('wrote')")
    assert v.passed and not Path("/tmp", name).exists()


def test_network_is_unreachable(sandbox: Sandbox) -> None:
    v = sandbox.run("import socket\nsocket.create_connection(('1.1.1.1', 80), timeout=2)")
    assert not v.passed and "OSError" in v.stderr_tail
    # a server on the host's loopback is not the sandbox's loopback
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        server.setblocking(False)
        port = server.getsockname()[1]
        v = sandbox.run(f"import socket\nsocket.create_connection(('127.0.0.1', {port}), 2)")
        assert not v.passed and "ConnectionRefusedError" in v.stderr_tail
        with pytest.raises(BlockingIOError):
            server.accept()  # nothing ever connected


def test_environment_secrets_are_invisible(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-planted-secret-4242")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-planted-4242")
    src = "import os\nprint(sorted(os.environ))\nprint(os.environ.get('OPENAI_API_KEY'))"
    v = sandbox.run(src)
    assert v.passed
    assert "4242" not in v.stdout_tail
    assert v.stdout_tail.splitlines() == ["['HOME', 'LANG', 'PATH', 'PWD', 'TMPDIR']", "None"]
    # nor through /proc: the harness's processes are in another pid namespace
    v = sandbox.run(
        "import glob\nfor p in glob.glob('/proc/*/environ'):\n    print(open(p).read())"
    )
    assert "4242" not in v.stdout_tail


def test_home_and_repo_are_invisible(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    home = Path(os.path.expanduser("~"))
    src = textwrap.dedent(
        f"""
        import os
        for p in ({str(home)!r}, {str(REPO)!r}, '/etc', '/work', '/root', '/home'):
            print(p, os.path.exists(p))
        print(os.path.expanduser('~'))
        print(sorted(os.listdir('/')))
        """
    )
    v = sandbox.run(src)
    assert v.passed, v.stderr_tail
    lines = v.stdout_tail.splitlines()
    assert all(line.endswith(" False") for line in lines[:6]), lines
    assert lines[6] == "/tmp/work"  # $HOME is the private work dir
    assert "home" not in lines[7] and "root" not in lines[7] and "etc" not in lines[7]


def test_killing_its_parent_is_contained(sandbox: Sandbox) -> None:
    src = "import os, time\nos.kill(os.getppid(), 9)\ntime.sleep(600)"
    v = sandbox.run(src)
    assert not v.passed and v.killed_by == "timeout"
    v = sandbox.run("import os\nos.kill(-1, 9)\nprint('survived')")  # kill everything it can
    assert not v.passed or v.stdout_tail == "survived\n"
    _still_works(sandbox)


def test_megabytes_of_output_are_capped_and_killed(sandbox: Sandbox) -> None:
    v = sandbox.run("import sys\nwhile True:\n    sys.stdout.write('y' * 65536)")
    assert not v.passed and v.killed_by == "output" and v.output_truncated
    assert len(v.stdout_tail) <= 4096 and set(v.stdout_tail) == {"y"}
    _still_works(sandbox)


def test_output_over_the_tail_is_truncated_not_failed(sandbox: Sandbox) -> None:
    src = "for i in range(20000):\n    print(i)\nprint('END')"
    v = sandbox.run(src)
    assert v.passed and v.output_truncated
    assert len(v.stdout_tail.encode()) <= 4096
    assert v.stdout_tail.endswith("19999\nEND\n")  # the tail, not the head


def test_tmp_space_is_capped(sandbox: Sandbox) -> None:
    # tmpfs lives in memory outside RLIMIT_AS, so its size is capped separately (tmp_mb)
    sandbox = Sandbox(Limits(timeout_s=10, tmp_mb=4, file_size_mb=1))
    src = (
        "import errno\n"
        "for i in range(40):\n"
        "    try:\n"
        "        open(f'f{i}', 'wb').write(b'x' * 1000000)\n"
        "    except OSError as e:\n"
        "        print('stopped', i, errno.errorcode[e.errno])\n"
        "        break\n"
    )
    v = sandbox.run(src)
    assert v.passed and v.stdout_tail.startswith("stopped") and "ENOSPC" in v.stdout_tail
    assert int(v.stdout_tail.split()[1]) <= 4


def test_a_pool_of_hostile_programs_leaves_the_good_ones_alone(sandbox: Sandbox) -> None:
    hostile = [
        "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass",
        "import os, time\nos.kill(os.getppid(), 9)\nos.kill(-1, 9)\ntime.sleep(600)",
        "import sys\nwhile True:\n    sys.stdout.write('x' * 65536)",
        "x = bytearray(50 * 2**30)",
        "while True:\n    pass",
    ]
    good = [f"print(sum(range({n})))" for n in range(10)]
    sources = [s for pair in zip(good, hostile + hostile, strict=True) for s in pair]
    verdicts = sandbox.run_many(sources, workers=4)
    for i, v in enumerate(verdicts):
        if i % 2 == 0:
            n = i // 2
            assert v.passed and v.stdout_tail == f"{sum(range(n))}\n", (i, v)
        else:
            assert not v.passed, (i, v)
