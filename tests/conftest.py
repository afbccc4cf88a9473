"""Shared fixtures: an isolated SMOLLAB_HOME, a tiny study spec, tiny random models, CLI helpers.

Everything here is sized for a shared 2-core CPU: from-scratch models with one layer and 32-dim
embeddings, a char tokenizer, fixed seeds.
"""

from __future__ import annotations

import atexit
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src"
STUBS = Path(__file__).resolve().parent / "_stubs"

# huggingface_hub reads these when it is first imported, so they are set before any test module
# imports transformers: never touch the network or the user's HF cache.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_HOME"] = _HF_HOME = tempfile.mkdtemp(prefix="smollab-tests-hf-")
atexit.register(shutil.rmtree, _HF_HOME, ignore_errors=True)
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

#: The real benchmark data: SMOLLAB_DATA_DIR (as CI sets it), else ../shared/data beside the
#: checkout. Tests that read it are skipped only when neither is there; a SMOLLAB_DATA_DIR that is
#: set but missing stops the run (``pytest_configure``) instead of skipping them silently.
SHARED = Path(os.environ.get("SMOLLAB_DATA_DIR") or REPO.parent / "shared" / "data").resolve()
needs_data = pytest.mark.skipif(
    not SHARED.is_dir(), reason=f"needs the benchmark data ({SHARED}; set SMOLLAB_DATA_DIR)"
)


def pytest_configure(config: pytest.Config) -> None:
    given = os.environ.get("SMOLLAB_DATA_DIR")
    if given and not Path(given).is_dir():
        raise pytest.UsageError(
            f"SMOLLAB_DATA_DIR={given} is not a folder: point it at the benchmark data (the "
            "folder holding gsm8k/, hellaswag/, ...) or unset it."
        )


TINY_CONFIG = {"n_layer": 1, "n_head": 2, "n_embd": 32, "block_size": 64}

# A small but complete study: one baseline, one 4-step fine-tune, 2 seeds, 2 strata.
TINY_SPEC = """\
# smollab study tiny.toml
[study]
name = "tiny"
seeds = [0, 1]

[[models]]
name = "tiny-gpt2"
source = "scratch:gpt2"
tokenizer = "char"
config = { n_layer = 1, n_head = 2, n_embd = 32, block_size = 64 }

[[tasks]]
id = "add"
task = "arith.add"
strata = ["1x1", "1x2"]
n_test = 12

[[conditions]]
name = "baseline"
format = "compact"

[[conditions]]
name = "ft"
format = "compact"
[conditions.train]
steps = 4
lr = 1e-3
warmup_steps = 1
batch_size = 4
seq_len = 64
eval_every = 2
eval_items = 4
checkpoint_every = 2
threads = 1

[eval]
batch_size = 16
"""


def with_source(spec_text: str, source: str) -> str:
    """``spec_text`` (the tiny spec) with its model's source replaced; the scratch-only
    ``tokenizer`` and ``config`` lines go too, since other sources refuse them."""
    text = spec_text.replace('source = "scratch:gpt2"', f"source = {source!r}".replace("'", '"'))
    return re.sub(r'\n(tokenizer = "char"|config = \{[^\n]*\})', "", text)


@pytest.fixture
def tiny_spec_text() -> str:
    """The TOML text of a tiny, complete study (baseline + 4-step fine-tune, 2 seeds)."""
    return TINY_SPEC


@pytest.fixture(autouse=True)
def tmp_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """SMOLLAB_HOME in a temp dir: no test writes to the user cache (HF_HOME is set above)."""
    home = tmp_path_factory.mktemp("smollab_home")
    monkeypatch.setenv("SMOLLAB_HOME", str(home))
    return home


# ---------------------------------------------------------------- the report package (in flux)


def _load_stub() -> Any:
    spec = importlib.util.spec_from_file_location(
        "tests_report_stub", STUBS / "tests_report_stub.py"
    )
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


_STUB = _load_stub()
REAL_REPORT = _STUB.real_report_available() and not _STUB.forced()


def ensure_report(mp: pytest.MonkeyPatch) -> bool:
    """Make ``from smollab.report import build_report`` work; True when the real one is used.

    Only when the real ``smollab.report`` lacks ``build_report`` is a stub patched in (it writes
    report.md and report.html so the session layout stays checkable).
    """
    if REAL_REPORT:
        return True
    try:
        import smollab.report as mod
    except Exception:
        import types

        mod = types.ModuleType("smollab.report")
        mod.__path__ = []  # type: ignore[attr-defined]
        mp.setitem(sys.modules, "smollab.report", mod)
    mp.setattr(mod, "build_report", _STUB.build_report, raising=False)
    mp.setattr(mod, "tex_available", _STUB.tex_available, raising=False)
    return False


@pytest.fixture
def report_ready(monkeypatch: pytest.MonkeyPatch) -> bool:
    """See :func:`ensure_report`."""
    return ensure_report(monkeypatch)


# ---------------------------------------------------------------- models


def tiny_lm(arch: str = "gpt2", seed: int = 0) -> Any:
    from smollab.models import load_model

    return load_model(f"scratch:{arch}", config=dict(TINY_CONFIG), seed=seed)


@pytest.fixture
def tiny_gpt2() -> Any:
    """A fresh tiny random GPT-2 with the char tokenizer (safe to train)."""
    return tiny_lm("gpt2")


@pytest.fixture(autouse=True, scope="session")
def _torch_threads() -> None:
    """One torch thread in the test process: the CPU is shared, and the math stays deterministic."""
    try:
        import torch
    except ImportError:  # pragma: no cover
        return
    torch.set_num_threads(1)


# ---------------------------------------------------------------- the CLI in a subprocess


def cli_env(home: Path, **extra: str) -> dict[str, str]:
    """Environment for ``python -m smollab.cli.main``: src on the path, caches in ``home``."""
    env = dict(os.environ)
    paths = [str(SRC)]
    if not REAL_REPORT:
        paths.append(str(STUBS))
    env.update(
        PYTHONPATH=os.pathsep.join(paths),
        SMOLLAB_HOME=str(home),
        HF_HOME=str(home / "hf"),
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_VERBOSITY="error",
        OMP_NUM_THREADS="1",
        COLUMNS="200",
        NO_COLOR="1",
        TERM="dumb",
    )
    env.update(extra)
    return env


def find_processes(match: Any) -> list[int]:
    """PIDs of the live processes for which ``match(parent pid, command-line args)`` is true
    (Linux ``/proc``; args as bytes)."""
    pids = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            cmd = (d / "cmdline").read_bytes().split(b"\0")
        except (OSError, IndexError, ValueError):
            continue
        if match(ppid, cmd):
            pids.append(int(d.name))
    return pids


def smollab_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "smollab.cli.main", *map(str, args)]


def run_cli(
    *args: str, home: Path, cwd: Path | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        smollab_cmd(*args),
        env=cli_env(home),
        cwd=cwd or REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def one_line(text: str) -> str:
    """Collapse whitespace (rich wraps long lines) so messages can be matched as one paragraph."""
    return " ".join(text.split())


@pytest.fixture
def cli(tmp_home: Path) -> Iterator[Any]:
    """``cli("study", spec, "--out", out)`` -> CompletedProcess, with an isolated environment."""

    def call(*args: Any, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return run_cli(*map(str, args), home=tmp_home, timeout=timeout)

    yield call
