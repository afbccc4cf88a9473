"""Opt-in CUDA checks (``pytest -m gpu``): the library's GPU paths give the CPU's results.

CI has no GPU, so these run only when asked for (``-m gpu``) on a machine with CUDA. They cover
the evaluation LM (loglikelihood batching and greedy generation, float32 and bfloat16), the
fine-tuning Trainer with bf16 autocast, the grokking trainer (fp32, bf16, resume), and
``smollab eval --device cuda`` through the real CLI.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import pytest
import torch

from smollab.eval.lm import HFLM, GenerateRequest, LoglikelihoodRequest
from smollab.io import read_json, read_jsonl
from tests.conftest import REPO

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]

DATA = Path(os.environ.get("SMOLLAB_DATA_DIR", REPO.parent / "shared" / "data"))
TOK = DATA / "gpt2-tokenizer"

CONTEXTS = [
    "Roof shingle removal: A man is sitting on a roof. he",
    "Question: What is 98 plus 45?\nAnswer:",
    "Baking cookies: A woman pours flour into a bowl and then",
    "The quick brown fox jumps over the lazy dog, and the dog " * 4,
    "",
]
ENDINGS = [" is using wrap.", " starts pulling up roofing on a roof.", " 143", " x" * 9, "."]
LL_REQS = [LoglikelihoodRequest(c, e) for c in CONTEXTS for e in ENDINGS]
GEN_REQS = [
    GenerateRequest(c or "Once upon a time", stop=("\n\n",), max_tokens=24) for c in CONTEXTS
]


def bpe_model(device: str, dtype: str = "float32") -> Any:
    """A tiny random GPT-2 (real GPT-2 tokenizer), weights scaled up so that greedy choices are
    not near-ties; the same weights on every device (built on the CPU, then moved)."""
    from smollab.models import load_model

    if not TOK.is_dir():
        pytest.fail(f"the GPU tests need the GPT-2 tokenizer at {TOK}: set SMOLLAB_DATA_DIR")
    loaded = load_model(
        "scratch:gpt2",
        tokenizer=str(TOK),
        config={"n_layer": 2, "n_head": 2, "n_embd": 64, "block_size": 128},
        seed=0,
    )
    with torch.no_grad():
        for p in loaded.model.parameters():
            p.mul_(4.0)
    loaded.model.to(device=device, dtype=getattr(torch, dtype))
    return loaded


def test_loglikelihood_on_cuda_matches_cpu() -> None:
    cpu, gpu = bpe_model("cpu"), bpe_model("cuda")
    assert next(gpu.model.parameters()).is_cuda
    # batch 4: several context passes, continuations merged across them
    ref = HFLM(cpu.model, cpu.tokenizer, batch_size=4).loglikelihood(LL_REQS)
    got = HFLM(gpu.model, gpu.tokenizer, batch_size=4).loglikelihood(LL_REQS)
    assert len(got) == len(ref) == len(LL_REQS)
    for r, g in zip(ref, got, strict=True):
        assert g.logprob == pytest.approx(r.logprob, abs=2e-4, rel=1e-5)
        assert g.n_tokens == r.n_tokens
    # greediness can flip only where two logits tie within rounding
    same = sum(r.is_greedy == g.is_greedy for r, g in zip(ref, got, strict=True))
    assert same >= len(ref) - 1


def test_greedy_generation_on_cuda_matches_cpu() -> None:
    cpu, gpu = bpe_model("cpu"), bpe_model("cuda")
    ref = HFLM(cpu.model, cpu.tokenizer, batch_size=3).generate(GEN_REQS)
    got = HFLM(gpu.model, gpu.tokenizer, batch_size=3).generate(GEN_REQS)
    assert all(ref) and got == ref


def test_bf16_loglikelihood_close_to_fp32() -> None:
    fp32, bf16 = bpe_model("cuda"), bpe_model("cuda", "bfloat16")
    ref = HFLM(fp32.model, fp32.tokenizer, batch_size=8).loglikelihood(LL_REQS)
    got = HFLM(bf16.model, bf16.tokenizer, batch_size=8).loglikelihood(LL_REQS)
    for r, g in zip(ref, got, strict=True):
        assert math.isfinite(g.logprob)
        # bf16 keeps ~3 significant digits: per-token log-probs agree to a few hundredths
        assert abs(g.logprob - r.logprob) / r.n_tokens < 0.15, (r, g)


def test_trainer_on_cuda_with_bf16_autocast(tmp_path: Path) -> None:
    from smollab.models import load_model
    from smollab.study.spec import TrainSpec
    from smollab.tasks import PROMPT_FORMATS, build_task, validate_task_config
    from smollab.train import Trainer
    from tests.conftest import TINY_CONFIG

    task = build_task(
        validate_task_config({"id": "add", "task": "arith.add", "strata": ["1x1"], "n_test": 20})
    )
    lm = load_model("scratch:gpt2", config=dict(TINY_CONFIG), seed=0, device="cuda")
    spec = TrainSpec(
        steps=40, lr=1e-2, warmup_steps=3, batch_size=16, seq_len=64, eval_every=0,
        checkpoint_every=100, bf16_autocast=True,
    )  # fmt: skip
    tr = Trainer(lm, spec, tmp_path, task=task, fmt=PROMPT_FORMATS.get("compact"), seed=0)
    tr.setup()
    summary = tr.fit()
    tr.save_final()
    losses = [r["loss"] for r in read_jsonl(tmp_path / "metrics.jsonl")]
    assert len(losses) == 40 and all(math.isfinite(x) for x in losses)
    assert sum(losses[-3:]) < 0.6 * sum(losses[:3]), losses
    assert summary["steps"] == 40
    assert next(lm.model.parameters()).is_cuda
    # the saved model is a plain checkpoint that loads on the CPU
    final = tmp_path / "ckpt" / "final"
    back = load_model(str(final), device="cpu")
    w = next(back.model.parameters())
    assert w.device.type == "cpu" and w.dtype == torch.float32


def _grok(run_dir: Path, **kw: Any) -> Any:
    from smollab.models import build_small_model
    from smollab.tasks import build_task, validate_task_config
    from smollab.train.grokking import GrokTrainer, GrokTrainSpec

    task = build_task(validate_task_config({"id": "add", "task": "grok.x_plus_y", "p": 5}))
    torch.manual_seed(0)
    model = build_small_model(
        "decoder", {"d_model": 32, "n_head": 2}, vocab_size=task.vocab_size,
        n_out=task.n_classes, seq_len=4,
    )  # fmt: skip
    base = {"steps": 300, "batch_size": 32, "lr": 1e-2, "weight_decay": 0.1, "warmup_steps": 5,
            "eval_every": 10, "device": "cuda"}  # fmt: skip
    return GrokTrainer(task, model, GrokTrainSpec(**{**base, **kw}), run_dir, seed=0)


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_grokking_trainer_on_cuda_learns(tmp_path: Path, precision: str) -> None:
    summary = _grok(tmp_path, precision=precision).fit()
    rows = read_jsonl(tmp_path / "metrics.jsonl")
    assert all(math.isfinite(r["train_loss"]) and math.isfinite(r["val_loss"]) for r in rows)
    # p = 5: a 12-pair training set, learnt within the run (train accuracy is averaged over
    # the steps since the last evaluation, so bf16's noisier steps keep it a little under 1)
    assert rows[-1]["train_acc"] >= 0.9
    assert rows[-1]["train_loss"] < 0.5 * rows[0]["train_loss"]
    if precision == "fp32":
        assert summary["memorisation_step"] is not None
    split = read_json(tmp_path / "split.json")
    assert len(split["train"]) == summary["n_train"]


def test_grokking_resume_on_cuda(tmp_path: Path) -> None:
    whole = _grok(tmp_path / "a", steps=60, checkpoint_every=20).fit()
    _grok(tmp_path / "b", steps=60, checkpoint_every=20).fit(stop_at=47)
    resumed = _grok(tmp_path / "b", steps=60, checkpoint_every=20)
    assert resumed.resume() and resumed.step == 40
    again = _grok(tmp_path / "b", steps=60, checkpoint_every=20).fit()
    # same split and schedule; CUDA's atomic-add reductions may differ in the last bits
    assert read_json(tmp_path / "b" / "split.json") == read_json(tmp_path / "a" / "split.json")
    assert again["final_val_acc"] == pytest.approx(whole["final_val_acc"], abs=0.05)
    ra = read_jsonl(tmp_path / "a" / "metrics.jsonl")
    rb = read_jsonl(tmp_path / "b" / "metrics.jsonl")
    assert [r["step"] for r in ra] == [r["step"] for r in rb]
    for x, y in zip(ra, rb, strict=True):
        assert y["train_loss"] == pytest.approx(x["train_loss"], rel=1e-3, abs=1e-4)


def test_eval_cli_on_cuda(cli: Any, tmp_path: Path) -> None:
    out = tmp_path / "ev"
    proc = cli(
        "eval", "--model", "scratch:gpt2", "--tokenizer", str(TOK), "--task", "hellaswag",
        "--limit", "6", "--data-dir", str(DATA), "--out", str(out), "--batch-size", "4",
        "--device", "cuda",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    res = json.loads((out / "results.json").read_text())
    assert res["tasks"]["hellaswag"]["n"] == 6
    assert res["device"].startswith("cuda")
    assert res["environment"]["cuda_available"] is True
