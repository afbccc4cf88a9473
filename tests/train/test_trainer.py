"""The Trainer on a tiny random GPT-2: schedule, learning, exact resume, LoRA, final save."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import torch

from smollab.errors import ConfigError
from smollab.io import read_json, read_jsonl
from smollab.study.spec import TrainSpec
from smollab.tasks import PROMPT_FORMATS, build_task, validate_task_config
from smollab.train import Trainer, lr_at
from tests.conftest import tiny_lm


@pytest.fixture(scope="module")
def add_task() -> Any:
    return build_task(
        validate_task_config({"id": "add", "task": "arith.add", "strata": ["1x1"], "n_test": 20})
    )


COMPACT = PROMPT_FORMATS.get("compact")


def spec(**kw: Any) -> TrainSpec:
    base = dict(
        steps=8,
        lr=1e-2,
        warmup_steps=2,
        batch_size=4,
        seq_len=64,
        eval_every=0,
        checkpoint_every=100,
    )
    return TrainSpec(**{**base, **kw})


def make_trainer(run_dir: Path, task: Any, s: TrainSpec, **kw: Any) -> Trainer:
    tr = Trainer(tiny_lm("gpt2", seed=0), s, run_dir, task=task, fmt=COMPACT, seed=0, **kw)
    tr.setup()
    return tr


def losses(run_dir: Path) -> list[float]:
    return [r["loss"] for r in read_jsonl(run_dir / "metrics.jsonl")]


# ---------------------------------------------------------------- schedule


def test_lr_schedule_warmup_peak_cosine_floor() -> None:
    s = TrainSpec(steps=110, lr=1e-3, warmup_steps=10, min_lr_ratio=0.1)
    assert lr_at(0, s) == pytest.approx(1e-4)  # (step + 1) / warmup
    assert lr_at(4, s) == pytest.approx(5e-4)
    assert lr_at(9, s) == pytest.approx(1e-3)  # warm-up ends at the peak
    assert lr_at(10, s) == pytest.approx(1e-3)  # cosine starts at the peak
    assert lr_at(60, s) == pytest.approx(1e-4 + 0.5 * 9e-4)  # half way: mean of peak and floor
    assert lr_at(110, s) == pytest.approx(1e-4)  # the floor
    assert lr_at(500, s) == pytest.approx(1e-4)  # and stays there
    after = [lr_at(k, s) for k in range(10, 111)]
    assert all(a >= b for a, b in zip(after, after[1:], strict=False))


def test_lr_schedule_without_warmup_and_zero_floor() -> None:
    s = TrainSpec(steps=100, lr=2e-3, warmup_steps=0, min_lr_ratio=0.0)
    assert lr_at(0, s) == pytest.approx(2e-3)
    assert lr_at(50, s) == pytest.approx(1e-3)
    assert lr_at(25, s) == pytest.approx(1e-3 * (1 + math.cos(math.pi / 4)))
    assert lr_at(100, s) == pytest.approx(0.0, abs=1e-12)


# ---------------------------------------------------------------- learning


def test_loss_decreases(tmp_path: Path, add_task: Any) -> None:
    events: list[dict[str, Any]] = []
    tr = make_trainer(
        tmp_path,
        add_task,
        spec(steps=30, lr=1e-2, warmup_steps=3, batch_size=8),
        progress=events.append,
    )
    summary = tr.fit()
    ls = losses(tmp_path)
    assert len(ls) == 30 and all(math.isfinite(x) for x in ls)
    first, last = sum(ls[:3]) / 3, sum(ls[-3:]) / 3
    assert last < 0.6 * first, ls
    assert summary["steps"] == 30 and summary["final_loss"] < first
    steps = [e["step"] for e in events if e["event"] == "train_step"]
    assert steps == list(range(1, 31))
    rows = read_jsonl(tmp_path / "metrics.jsonl")
    assert [r["lr"] for r in rows[:3]] == pytest.approx([1e-2 / 3, 2e-2 / 3, 1e-2])
    assert rows[-1]["tokens"] == sum(tr.tokens_per_step) > 0


def test_eval_every_logs_monitoring(tmp_path: Path, add_task: Any) -> None:
    calls: list[bool] = []

    def monitor(model: Any) -> dict[str, float]:
        calls.append(model.training)
        return {"add/1x1": 0.25}

    tr = make_trainer(tmp_path, add_task, spec(steps=5, eval_every=2), evaluate=monitor)
    tr.fit()
    rows = read_jsonl(tmp_path / "metrics.jsonl")
    assert [r["step"] for r in rows if "eval" in r] == [2, 4, 5]  # and always the last step
    assert rows[1]["eval"] == {"add/1x1": 0.25}
    assert calls == [False, False, False]  # evaluated in eval mode


def test_too_long_example_through_trainer(tmp_path: Path, add_task: Any) -> None:
    s = spec(seq_len=8, steps=2, warmup_steps=1, batch_size=2)
    tr = Trainer(
        tiny_lm("gpt2"), s, tmp_path, task=add_task, fmt=PROMPT_FORMATS.get("plain"), seed=0
    )
    with pytest.raises(ConfigError, match="seq_len=8"):
        tr.setup()


# ---------------------------------------------------------------- resume


def test_resume_is_exact(tmp_path: Path, add_task: Any) -> None:
    s = spec(steps=8, checkpoint_every=2)
    a_dir, b_dir = tmp_path / "a", tmp_path / "b"

    a = make_trainer(a_dir, add_task, s)
    a.fit()
    a.save_final()

    def interrupt_at_5(e: dict[str, Any]) -> None:
        if e.get("event") == "train_step" and e["step"] == 5:
            raise KeyboardInterrupt

    b1 = make_trainer(b_dir, add_task, s, progress=interrupt_at_5)
    with pytest.raises(KeyboardInterrupt):
        b1.fit()
    assert [r["step"] for r in read_jsonl(b_dir / "metrics.jsonl")] == [1, 2, 3, 4, 5]
    assert torch.load(b_dir / "ckpt" / "last" / "state.pt", weights_only=False)["step"] == 4

    events: list[dict[str, Any]] = []
    b2 = make_trainer(b_dir, add_task, s, progress=events.append)
    assert b2.step == 4
    assert {"event": "resumed", "step": 4} in events
    # the log was cut back to the checkpoint
    assert [r["step"] for r in read_jsonl(b_dir / "metrics.jsonl")] == [1, 2, 3, 4]
    b2.fit()
    b2.save_final()

    assert [r["step"] for r in read_jsonl(b_dir / "metrics.jsonl")] == list(range(1, 9))
    assert losses(b_dir) == losses(a_dir)  # exact float equality
    assert [r["lr"] for r in read_jsonl(b_dir / "metrics.jsonl")] == [
        r["lr"] for r in read_jsonl(a_dir / "metrics.jsonl")
    ]
    sa, sb = a.model.state_dict(), b2.model.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k
    assert b2.tokens_seen == a.tokens_seen
    assert (
        read_json(b_dir / "train_summary.json")["final_loss"]
        == read_json(a_dir / "train_summary.json")["final_loss"]
    )


def test_resume_without_checkpoint_starts_over(tmp_path: Path, add_task: Any) -> None:
    s = spec(steps=3, checkpoint_every=100)
    (tmp_path / "metrics.jsonl").write_text('{"step": 1, "loss": 9.0}\n{"step": 2, "lo')
    tr = make_trainer(tmp_path, add_task, s)
    assert tr.step == 0
    assert not (tmp_path / "metrics.jsonl").exists()  # a stale log without checkpoint is dropped
    tr.fit()
    assert [r["step"] for r in read_jsonl(tmp_path / "metrics.jsonl")] == [1, 2, 3]


# ---------------------------------------------------------------- LoRA and final save


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
def test_lora_trains_only_adapters(tmp_path: Path, add_task: Any, arch: str) -> None:
    s = spec(method="lora", lora_r=4, steps=3, lr=1e-2)
    lm = tiny_lm(arch)
    before = {n: p.detach().clone() for n, p in lm.model.named_parameters()}
    tr = Trainer(lm, s, tmp_path, task=add_task, fmt=COMPACT, seed=0)
    tr.setup()
    trainable = [n for n, p in tr.model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    n_total = sum(p.numel() for p in tr.model.parameters())
    summary = tr.fit()
    assert 0 < summary["n_trainable_params"] < n_total
    # base weights untouched, adapters moved
    after = dict(tr.model.named_parameters())
    for n, p in after.items():
        base = n.replace("base_model.model.", "").replace(".base_layer", "")
        if "lora_" not in n:
            assert torch.equal(p, before[base]), n
    assert any(
        not torch.equal(after[n], torch.zeros_like(after[n])) for n in trainable if "lora_B" in n
    )
    tr.save_final()
    final = tmp_path / "ckpt" / "final"
    assert (final / "adapter_config.json").exists()
    assert not (final / "model.safetensors").exists()  # only the adapter is saved

    # the saved adapter reproduces the trained model's outputs on a fresh base
    from smollab.study.worker import _load_trained

    reloaded = _load_trained(tiny_lm(arch).model, final, "lora").eval()
    ids = lm.tokenizer("12+34=", return_tensors="pt").input_ids
    with torch.no_grad():
        assert torch.allclose(tr.model.eval()(ids).logits, reloaded(ids).logits, atol=1e-6)


def test_lora_targets_that_name_no_module_are_a_config_error(tmp_path: Path, add_task: Any) -> None:
    s = spec(method="lora", lora_targets=["q_proj"], steps=3)  # a Llama name on a GPT-2
    tr = Trainer(tiny_lm("gpt2"), s, tmp_path, task=add_task, fmt=COMPACT, seed=0)
    with pytest.raises(ConfigError, match=r"lora_targets = \['q_proj'\]: 'q_proj' names no module"):
        tr.setup()


def test_save_final_writes_checkpoint_and_summary(tmp_path: Path, add_task: Any) -> None:
    tr = make_trainer(tmp_path, add_task, spec(steps=4, checkpoint_every=2))
    tr.fit()
    assert (tmp_path / "ckpt" / "last" / "state.pt").exists()  # step 2 (4 is the last step)
    tr.save_final()
    final = tmp_path / "ckpt" / "final"
    assert (final / "config.json").exists()
    assert (final / "model.safetensors").exists()
    assert (final / "tokenizer.json").exists()
    assert not (tmp_path / "ckpt" / "last").exists()
    assert not [p for p in (tmp_path / "ckpt").iterdir() if p.name.startswith(".")]
    summary = read_json(tmp_path / "train_summary.json")
    assert summary["steps"] == 4
    assert summary["final_loss"] == pytest.approx(sum(losses(tmp_path)) / 4)
    assert summary["n_train_examples"] == len(tr.train_examples) > 0
    assert summary["tokens"] == tr.tokens_seen > 0

    from smollab.models import load_model

    again = load_model(str(final))
    assert again.info["kind"] == "dir"
    ids = torch.tensor([[5, 6, 7]])
    with torch.no_grad():
        assert torch.allclose(again.model(ids).logits, tr.model.eval()(ids).logits, atol=1e-6)

    tr.write_train_data(tmp_path / "train_data.jsonl")
    rows = read_jsonl(tmp_path / "train_data.jsonl")
    assert [r["question"] for r in rows] == [e.question for e in tr.train_examples]


# ---------------------------------------------------------------- attention in float32


def test_attention_runs_in_float32_under_cpu_autocast() -> None:
    """Under bf16 autocast on the CPU, the training attention computes SDPA in float32 (whose
    CPU backward is faster at short lengths) and hands autocast's dtype on; past the length
    limit, and outside autocast, it is the model's own SDPA."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    from smollab.train.trainer import FP32_ATTENTION_MAX_LEN, _attention

    attn = tiny_lm("llama").model.model.layers[0].self_attn
    g = torch.Generator().manual_seed(0)
    heads, kv, dim = attn.config.num_attention_heads, attn.config.num_key_value_heads, attn.head_dim

    def qkv(t: int) -> tuple[torch.Tensor, ...]:
        return tuple(
            torch.randn(2, h, t, dim, generator=g) for h in (heads, kv, kv)
        )  # fp32, as after the rotary embedding

    q, k, v = qkv(12)
    exact, _ = sdpa_attention_forward(attn, q, k, v, None)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out, _ = _attention(attn, q, k, v, None)
        plain, _ = sdpa_attention_forward(attn, q, k, v, None)
    assert out.dtype == plain.dtype == torch.bfloat16
    assert torch.equal(out, exact.to(torch.bfloat16))
    assert not torch.equal(plain, out)  # bf16 arithmetic would round differently
    # past the limit: the model's own SDPA, as before
    q, k, v = qkv(FP32_ATTENTION_MAX_LEN + 1)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert torch.equal(_attention(attn, q, k, v, None)[0],
                           sdpa_attention_forward(attn, q, k, v, None)[0])  # fmt: skip
    # without autocast, float32 inputs are left alone
    assert torch.equal(
        _attention(attn, q, k, v, None)[0], sdpa_attention_forward(attn, q, k, v, None)[0]
    )


def test_trainer_swaps_the_float32_attention_in_for_training_only(
    tmp_path: Path, add_task: Any
) -> None:
    s = spec(bf16_autocast=True, steps=2, warmup_steps=1)
    tr = Trainer(tiny_lm("llama", seed=0), s, tmp_path,
                 task=add_task, fmt=COMPACT, seed=0)  # fmt: skip
    tr.setup()
    layers = tr.model.model.layers

    def impls() -> list[str]:
        return [layer.self_attn.config._attn_implementation for layer in layers]

    assert set(impls()) == {"sdpa"}
    tr._training_modules()
    assert impls() == ["smollab_fp32_attention"] * (len(layers) - 1) + ["smollab_loss_queries"]
    tr._original_modules()
    assert set(impls()) == {"sdpa"}
    tr.fit()  # trains with them, and leaves the model as it was
    assert set(impls()) == {"sdpa"} and all(math.isfinite(x) for x in losses(tmp_path))


def test_bf16_autocast_falls_back_to_float32_without_native_bf16(
    tmp_path: Path, add_task: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a CPU without native bf16 (emulated: many times slower) training runs in float32,
    says so (a warning event), and the summary records what ran."""
    import smollab.train.trainer as trainer_mod

    seen: list[bool] = []
    loss = Trainer._loss

    def spy(self: Any, batch: Any) -> Any:
        seen.append(torch.is_autocast_enabled("cpu"))
        return loss(self, batch)

    monkeypatch.setattr(Trainer, "_loss", spy)
    monkeypatch.setattr(trainer_mod, "native_bf16", lambda device: False)
    events: list[dict[str, Any]] = []
    s = spec(bf16_autocast=True, steps=2, warmup_steps=1)
    tr = Trainer(tiny_lm("llama", seed=0), s, tmp_path,
                 task=add_task, fmt=COMPACT, seed=0, progress=events.append)  # fmt: skip
    tr.setup()
    assert tr.fit()["bf16_autocast"] is False and seen == [False, False]
    warnings = [e["text"] for e in events if e["event"] == "warning"]
    assert len(warnings) == 1 and "training runs in float32" in warnings[0]
    monkeypatch.setattr(trainer_mod, "native_bf16", lambda device: True)
    seen.clear()
    tr = Trainer(tiny_lm("llama", seed=0), s, tmp_path / "b",
                 task=add_task, fmt=COMPACT, seed=0)  # fmt: skip
    tr.setup()
    assert tr.fit()["bf16_autocast"] is True and seen == [True, True]


def test_seq_len_beyond_the_models_window_is_refused_before_training(
    tmp_path: Path, add_task: Any
) -> None:
    s = spec(seq_len=128)  # the tiny GPT-2's block_size is 64
    with pytest.raises(ConfigError, match=r"seq_len = 128 is longer than .* window of 64"):
        Trainer(tiny_lm("gpt2", seed=0), s, tmp_path, task=add_task, fmt=COMPACT, seed=0).setup()
    assert not (tmp_path / "metrics.jsonl").exists()


def test_library_use_a_format_name_fit_without_setup_and_named_errors(
    tmp_path: Path, add_task: Any
) -> None:
    """QA: fmt="compact" and a dict spec raised AttributeError; fit() before setup() too."""
    lm = tiny_lm("gpt2", seed=0)
    s = spec(steps=2, warmup_steps=1)
    tr = Trainer(lm, s, str(tmp_path / "a"), task=add_task, fmt="compact", seed=0)
    out = tr.fit()  # sets up first
    assert out["steps"] == 2 and len(losses(tmp_path / "a")) == 2
    with pytest.raises(ConfigError, match="Trainer takes a TrainSpec, not a dict"):
        Trainer(lm, {"steps": 2}, tmp_path, task=add_task, fmt=COMPACT, seed=0)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="not a GPT2LMHeadModel"):
        Trainer(lm.model, s, tmp_path, task=add_task, fmt=COMPACT, seed=0)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="Unknown prompt format 'compcat' in Trainer: fmt"):
        Trainer(lm, s, tmp_path, task=add_task, fmt="compcat", seed=0)
