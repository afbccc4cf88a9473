"""Supervised fine-tuning and from-scratch training: one loop, readable top to bottom.

    trainer = Trainer(lm, spec, run_dir, task=task, fmt=fmt, seed=0)
    trainer.setup()      # seeds, LoRA, optimizer, schedule, data; resumes from ckpt/last if present
    trainer.fit()        # train, evaluate every N steps, checkpoint every M steps
    trainer.save_final()

The loss is cross-entropy on answer tokens only (on every token when the task is a corpus:
pretraining, ``CorpusTask.train_sequences``, with no prompt format), and the output projection
is applied only at those positions (a forward pre-hook on the output embedding gathers them),
which saves most of the vocabulary projection on packed arithmetic sequences. The data order is
a pure function of (seed, step), so a resumed run sees exactly the batches an uninterrupted run
would.

Speed (``benchmarks/bench_scratch_train.py`` measures it): the sequences become tensors once in
``setup``; rows are right-padded, so under the causal mask no real token sees a pad and SDPA runs
its ``is_causal`` kernel; the loss positions are gathered with a fixed-length index, and in the
last decoder layer the attention (its queries), the attention output projection and the MLP
also run at those positions only; under bf16 autocast on the CPU the attention of sequences up
to 256 tokens runs in float32 (whose flash-attention backward is several times faster there than
bf16's); tanh-approximate GELUs are computed as the identical
``x * sigmoid(2u)`` while training; AdamW is fused; ``metrics.jsonl`` is fsynced at checkpoints,
not every step.
``compile=True`` (or ``SMOLLAB_COMPILE=1``) also compiles every decoder layer with
``torch.compile`` for the training steps; batches are then padded to ``seq_len``, so all steps
run the same kernels and a resumed run stays exact. Compiling takes tens of seconds once per
process, so it is opt-in: it pays on runs of a few hundred steps and more.
"""

from __future__ import annotations

import copy
import math
import os
import random
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from smollab.errors import ConfigError
from smollab.io import atomic_write_json, dumps, read_jsonl, write_jsonl
from smollab.models import LoadedModel
from smollab.models.loader import native_bf16
from smollab.study.spec import TrainSpec
from smollab.tasks import Example, PromptFormat, Task
from smollab.train.data import (
    IGNORE,
    OutOfExamples,
    PackedSequence,
    encode_example,
    pack_examples,
)

ProgressFn = Callable[[dict[str, Any]], None]


def check_lora_targets(model: Any, targets: list[str], where: str) -> None:
    """Refuse LoRA ``targets`` that name no module of ``model`` (a ConfigError naming ``where``
    and the module names it has). peft's rule: a target matches a module whose dotted name is
    the target or ends with ``.target``. ``["all-linear"]`` always matches."""
    if targets == ["all-linear"]:
        return
    names = [n for n, _ in model.named_modules() if n]
    missing = [t for t in targets if not any(n == t or n.endswith("." + t) for n in names)]
    if not missing:
        return
    from transformers.pytorch_utils import Conv1D

    kinds = (torch.nn.Linear, torch.nn.Embedding, torch.nn.Conv1d, torch.nn.Conv2d, Conv1D)
    leaves = sorted(
        {n.rsplit(".", 1)[-1] for n, m in model.named_modules() if isinstance(m, kinds)}
    )
    raise ConfigError(
        f"{where} = {targets}: {', '.join(repr(t) for t in missing)} "
        f"{'names no module' if len(missing) == 1 else 'name no modules'} of this model. Its "
        f"layers LoRA can adapt are {', '.join(repr(n) for n in leaves)}; use some of those, or "
        "['all-linear'] (the default) for every linear layer but the output head."
    )


def set_seed(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def lr_at(step: int, spec: TrainSpec) -> float:
    """Linear warm-up to ``lr`` then cosine decay to ``lr * min_lr_ratio`` (step is 0-based)."""
    if spec.warmup_steps and step < spec.warmup_steps:
        return spec.lr * (step + 1) / spec.warmup_steps
    span = max(1, spec.steps - spec.warmup_steps)
    progress = min(1.0, (step - spec.warmup_steps) / span)
    floor = spec.lr * spec.min_lr_ratio
    return floor + 0.5 * (spec.lr - floor) * (1 + math.cos(math.pi * progress))


class _GatherPositions:
    """Forward pre-hook on the output embedding: keep only hidden states at loss positions.

    ``index`` holds the flat (row * width + column) loss positions of the batch, padded to a
    fixed length per run with position 0 so that shapes do not change from step to step (a
    compiled model then never recompiles, and every step runs the same kernels). Padding
    entries get ``IGNORE`` targets, so they add nothing to the loss or to any gradient.
    ``scatter`` is the same index with the padding sent to one spare row past the end.
    """

    def __init__(self) -> None:
        self.index: torch.Tensor | None = None
        self.scatter: torch.Tensor | None = None
        self.shape: tuple[int, int] = (0, 0)  # (rows, width) of the batch
        # per row: its loss positions [rows, n] (padded with 0), the same with the padding sent
        # to a spare column, and the causal mask of those queries [rows, 1, n, width]
        self.query_index: torch.Tensor | None = None
        self.query_scatter: torch.Tensor | None = None
        self.query_mask: torch.Tensor | None = None

    def __call__(self, module: Any, args: tuple[Any, ...]) -> tuple[Any, ...] | None:
        return None if self.index is None else (self.select(args[0], self.index),)

    @staticmethod
    def select(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        """Rows ``index`` of ``x`` flattened to [rows * width, features]."""
        return x.reshape(-1, x.shape[-1]).index_select(0, index)


#: Per model type: a decoder layer's attention module, and the submodules whose outputs are
#: added to the residual stream position by position (attention output projection, MLP). In
#: these models everything after the last layer also works per position (a norm, the output
#: projection).
_LLAMA_LIKE = ("llama", "mistral", "qwen2", "qwen3")
_LAST_LAYER = {
    "gpt2": ("attn", ("attn.c_proj", "mlp")),
    **{t: ("self_attn", ("self_attn.o_proj", "mlp")) for t in _LLAMA_LIKE},
}
_LOSS_QUERIES = "smollab_loss_queries"


BF16_FALLBACK = (
    "bf16_autocast is off: this CPU has no native bf16 (AVX-512 or AMX), so bf16 would be "
    "emulated and many times slower; training runs in float32"
)

_FP32_ATTENTION = "smollab_fp32_attention"
#: under bf16 autocast on the CPU, attention over sequences up to this many tokens runs in
#: float32: PyTorch's CPU flash-attention backward is several times slower in bf16 than in fp32
#: at these lengths, and bf16 is faster only from about 1,024 tokens
#: (``benchmarks/bench_train_attention.py``; figures in BENCHMARKS.md)
FP32_ATTENTION_MAX_LEN = 256


def _attention(
    module: Any, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, mask: Any, **kw: Any
) -> tuple[torch.Tensor, Any]:
    """SDPA on the CPU under autocast (which would run it in bf16) or on bf16 inputs: in float32
    up to :data:`FP32_ATTENTION_MAX_LEN` keys, the output in the dtype autocast would have given
    it; otherwise the model's own SDPA."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    cpu = query.device.type == "cpu"
    autocast = cpu and torch.is_autocast_enabled("cpu")
    low = torch.get_autocast_dtype("cpu") if autocast else query.dtype
    if not cpu or low == torch.float32 or key.shape[2] > FP32_ATTENTION_MAX_LEN:
        return sdpa_attention_forward(module, query, key, value, mask, **kw)
    if isinstance(mask, torch.Tensor) and mask.is_floating_point():
        mask = mask.float()
    with torch.autocast("cpu", enabled=False):
        out, weights = sdpa_attention_forward(
            module, query.float(), key.float(), value.float(), mask, **kw
        )
    return out.to(low), weights


def _loss_query_attention(
    module: Any, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, mask: Any, **kw: Any
) -> tuple[torch.Tensor, Any]:
    """SDPA for the last layer during a training step, with queries at loss positions only.

    Registered as a HF attention implementation and used by the last layer's attention alone
    (through its own copy of the config); outside a training step, or when the model passes a
    mask other than the plain causal one, it is plain SDPA. Outputs at other positions are
    zero: the hooks of :class:`_AtLossPositions` never read them.
    """
    g: _GatherPositions | None = getattr(module.config, "_smollab_gather", None)
    index, scatter = (g.query_index, g.query_scatter) if g is not None else (None, None)
    if g is None or index is None or scatter is None or mask is not None:
        # not in a training step, or a mask beyond plain causal (e.g. a sliding window)
        return _attention(module, query, key, value, mask, **kw)
    b, h, t, d = query.shape
    q = query.gather(2, index[:, None, :, None].expand(b, h, -1, d))
    out, weights = _attention(module, q, key, value, g.query_mask, **kw)
    full = out.new_zeros(b, t + 1, *out.shape[2:])  # [rows, width + spare, heads, dim]
    full = full.scatter(1, scatter[:, :, None, None].expand_as(out), out)
    return full[:, :t], weights


class _AtLossPositions:
    """Hooks on the last decoder layer's residual branches: run them at loss positions only.

    After the last layer only per-position work remains, and the output projection is applied
    at loss positions, so the last layer's attention output projection and MLP matter only
    there; elsewhere their output is left at zero. On packed arithmetic ~15% of positions are
    loss positions, which removes most of the last layer's MLP and output projection (and,
    with :func:`_loss_query_attention`, of its attention).
    """

    def __init__(self, gather: _GatherPositions) -> None:
        self.gather = gather

    def pre(self, module: Any, args: tuple[Any, ...]) -> tuple[Any, ...] | None:
        index = self.gather.index
        return None if index is None else (self.gather.select(args[0], index), *args[1:])

    def post(self, module: Any, args: tuple[Any, ...], output: torch.Tensor) -> Any:
        g = self.gather
        if g.scatter is None:
            return None
        rows, width = g.shape
        full = output.new_zeros(rows * width + 1, output.shape[-1])
        full = full.index_copy(0, g.scatter, output)  # padding lands in the spare last row
        return full[:-1].view(rows, width, output.shape[-1])


_GELU_A = 1.5957691216057308  # 2 * sqrt(2 / pi)
_GELU_B = 0.07135481627260025  # 2 * sqrt(2 / pi) * 0.044715


class _SigmoidGELUFn(torch.autograd.Function):
    """``x * sigmoid(x * (A + B x^2))`` with a hand-written backward: 4 passes over the tensor
    forward and 7 backward, where autograd of the same expression takes about 17."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        s = torch.sigmoid(torch.addcmul(torch.full_like(x, _GELU_A), x, x, value=_GELU_B).mul_(x))
        ctx.save_for_backward(x, s)
        return x * s

    @staticmethod
    def backward(ctx: Any, dy: torch.Tensor) -> torch.Tensor:
        x, s = ctx.saved_tensors
        # d/dx [x s(u)] = s + x s (1 - s) u'(x), u'(x) = A + 3 B x^2
        t = torch.addcmul(torch.full_like(x, _GELU_A), x, x, value=3 * _GELU_B)
        return t.mul_(x).mul_(1 - s).add_(1).mul_(s).mul_(dy)


class _SigmoidGELU(torch.nn.Module):
    """GPT-2's tanh-approximate GELU ``0.5 x (1 + tanh(u))``, ``u = sqrt(2/pi) (x + 0.044715 x^3)``,
    computed through the identity ``0.5 (1 + tanh(u)) = sigmoid(2u)``.

    Same function (outputs differ by float rounding, ~1e-7), but ``tanh`` is the slowest
    elementwise kernel on this CPU (~7x ``sigmoid``), and the backward then needs no
    transcendental at all. Forward plus backward per [2048, 512] activation: 3.2 ms instead of
    10.9 ms (one thread).
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _SigmoidGELUFn.apply(x)


def _tanh_gelu_classes() -> tuple[type, ...]:
    from transformers import activations

    names = ("NewGELUActivation", "GELUTanh", "PytorchGELUTanh")
    return tuple({getattr(activations, n) for n in names if hasattr(activations, n)})


def _adamw_impl(params: list[torch.Tensor]) -> dict[str, bool]:
    """The fused AdamW kernel where torch has one for these tensors, else the foreach one.

    Fused does one pass over each parameter instead of a dozen foreach kernels (the updates agree
    to float rounding); on small models the optimizer step is a visible part of a CPU step.
    """
    devices = {p.device.type for p in params}
    dtypes = {p.dtype for p in params}
    if params and devices <= {"cpu", "cuda"} and dtypes <= {torch.float32, torch.bfloat16}:
        return {"fused": True}
    return {"foreach": True}


class _MetricsLog:
    """``metrics.jsonl`` opened once for a ``fit``: each row is written and flushed (so it
    survives the process being killed), but fsynced only before a checkpoint and at the end.

    An fsync per step cost ~5 ms of wall time per step here; rows after the last checkpoint are
    dropped on resume anyway, so syncing at checkpoints loses nothing that resume would keep.
    """

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.f = open(path, "a+b")  # noqa: SIM115  (closed in close())
        # a crash may have left a torn last line: end it, so the new rows stay parseable
        if self.f.tell() > 0:
            self.f.seek(-1, os.SEEK_END)
            if self.f.read(1) != b"\n":
                self.f.write(b"\n")

    def append(self, row: dict[str, Any]) -> None:
        self.f.write((dumps(row, indent=None) + "\n").encode("utf-8"))
        self.f.flush()

    def sync(self) -> None:
        self.f.flush()
        os.fsync(self.f.fileno())

    def close(self) -> None:
        if not self.f.closed:
            self.sync()
            self.f.close()


class Trainer:
    """Trains ``lm.model`` on ``task`` examples rendered by ``fmt``; writes into ``run_dir``."""

    def __init__(
        self,
        lm: LoadedModel,
        spec: TrainSpec,
        run_dir: Path,
        *,
        task: Task | Any,
        fmt: PromptFormat | str | None,
        seed: int,
        evaluate: Callable[[Any], dict[str, float]] | None = None,
        progress: ProgressFn | None = None,
        compile: bool | None = None,
    ) -> None:
        if isinstance(fmt, str):  # a format's registered name, as evaluate_items takes
            from smollab.tasks import PROMPT_FORMATS

            fmt = PROMPT_FORMATS.get(fmt, where="Trainer: fmt")
        if not isinstance(spec, TrainSpec):
            raise ConfigError(
                f"Trainer takes a TrainSpec, not a {type(spec).__name__}: "
                "smollab.train.TrainSpec(steps=..., lr=...), or TrainSpec(**fields) for a dict."
            )
        if not isinstance(lm, LoadedModel):
            raise ConfigError(
                f"Trainer takes what load_model returns (a LoadedModel), not a {type(lm).__name__}."
            )
        self.lm, self.spec, self.run_dir = lm, spec, Path(run_dir)
        self.task, self.fmt, self.seed = task, fmt, seed
        self.evaluate = evaluate
        self.progress = progress or (lambda e: None)
        self.ckpt_dir = self.run_dir / "ckpt"
        self.metrics_path = self.run_dir / "metrics.jsonl"
        self.step = 0
        self.tokens_seen = 0
        self.train_seconds = 0.0
        self.bf16: bool | None = None  # bf16 autocast as it runs (set by fit)
        if compile is None:
            compile = os.environ.get("SMOLLAB_COMPILE", "") not in ("", "0")
        self.compile = compile
        self._compiled: list[Any] = []
        self._swaps: list[tuple[Any, str, Any, Any]] = []  # (owner, attribute, original, training)
        self._gelus_found = False

    # ------------------------------------------------------------------ setup
    def setup(self) -> None:
        spec = self.spec
        from smollab.eval.lm import model_window

        window = model_window(self.lm.model, self.lm.tokenizer)
        if spec.seq_len > window:
            raise ConfigError(
                f"[conditions.train].seq_len = {spec.seq_len} is longer than the model's context "
                f"window of {window} tokens. Set seq_len to at most {window} (or, for a scratch "
                "model, raise config.block_size)."
            )
        if spec.threads:
            torch.set_num_threads(spec.threads)
        set_seed(self.seed)
        model = self.lm.model
        if spec.method == "lora":
            from peft import LoraConfig, get_peft_model

            check_lora_targets(model, spec.lora_targets, "[conditions.train].lora_targets")
            targets: Any = spec.lora_targets
            if targets == ["all-linear"]:
                targets = "all-linear"
            cfg = LoraConfig(
                r=spec.lora_r,
                # peft annotates lora_alpha as int; its scaling lora_alpha / r takes a float too
                lora_alpha=spec.lora_alpha,  # type: ignore[arg-type]
                lora_dropout=spec.lora_dropout,
                target_modules=targets,
                task_type="CAUSAL_LM",
            )
            model = get_peft_model(model, cfg)
        elif spec.freeze_embeddings:
            for p in model.get_input_embeddings().parameters():
                p.requires_grad_(False)
            for p in model.get_output_embeddings().parameters():
                p.requires_grad_(False)
        self.model = model
        self.params = [p for p in model.parameters() if p.requires_grad]
        decay = [p for p in self.params if p.ndim >= 2]
        no_decay = [p for p in self.params if p.ndim < 2]
        self.optimizer = torch.optim.AdamW(
            [
                {"params": decay, "weight_decay": spec.weight_decay},
                {"params": no_decay, "weight_decay": 0.0},
            ],
            lr=spec.lr,
            betas=spec.betas,
            **_adamw_impl(self.params),
        )
        self.hook = _GatherPositions()
        self.lm.model.get_output_embeddings().register_forward_pre_hook(self.hook)
        self._hook_last_layer()
        self._build_data()
        self._tensorise()
        self._resume()

    def _build_data(self) -> None:
        spec, tok = self.spec, self.lm.tokenizer
        n_seq = spec.steps * spec.grad_accum * spec.batch_size
        chunked = getattr(self.task, "train_sequences", None)
        if chunked is not None:
            # pretraining on raw text (a corpus task): documents joined with EOS and cut into
            # seq_len chunks, every token a target (the causal LM objective)
            chunks, used = chunked(tok, spec.seq_len, n_seq, self.seed)
            self.train_examples: list[Example] = used
            self.sequences = [PackedSequence(c, list(c), 0) for c in chunks]
            self._tokens_per_step(n_seq)
            return
        if self.fmt is None:
            raise ConfigError(
                f"Trainer: task {self.task.name!r} needs a prompt format (fmt) to render its "
                "examples; only a corpus task trains without one."
            )
        # budget the examples from a sample of their token lengths
        probe = self.task.train_examples(64, seed=self.seed, weights=spec.weights or None)
        mean_len = np.mean([sum(map(len, encode_example(tok, self.fmt, e, True))) for e in probe])
        per_seq = max(1, int(spec.seq_len // mean_len)) if spec.pack else 1
        n_ex = int(n_seq * per_seq * 1.5) + 64
        while True:
            examples = self.task.train_examples(n_ex, seed=self.seed, weights=spec.weights or None)
            try:
                self.sequences, used = pack_examples(
                    examples, tok, self.fmt, spec.seq_len, n_seq, pack=spec.pack
                )
                break
            except OutOfExamples:
                if n_ex > 50 * n_seq * per_seq:
                    raise
                n_ex *= 2
        self.train_examples = examples[:used]
        self._tokens_per_step(n_seq)

    def _tokens_per_step(self, n_seq: int) -> None:
        spec = self.spec
        self.tokens_per_step = [
            sum(len(s.input_ids) for s in self.sequences[i : i + spec.batch_size * spec.grad_accum])
            for i in range(0, n_seq, spec.batch_size * spec.grad_accum)
        ]

    def _tensorise(self) -> None:
        """All sequences as one right-padded tensor, built once (no per-step Python collate).

        Row ``i`` holds ``sequences[i]``; ``targets[i, t]`` is the label of token ``t + 1`` (so
        position ``t`` predicts it) and ``IGNORE`` elsewhere, exactly as ``collate`` builds it.
        """
        seqs, width = self.sequences, self.spec.seq_len
        pad = self.lm.tokenizer.pad_token_id or 0
        dtype = torch.int32 if len(self.lm.tokenizer) < 2**31 else torch.long  # half the memory
        self._lengths = torch.tensor([len(s.input_ids) for s in seqs], dtype=torch.long)
        flat_ids = torch.tensor([t for s in seqs for t in s.input_ids], dtype=dtype)
        flat_labels = torch.tensor([t for s in seqs for t in s.labels], dtype=dtype)
        col = torch.arange(width)
        valid = col[None, :] < self._lengths[:, None]
        self._ids = torch.full((len(seqs), width), pad, dtype=dtype)
        self._ids[valid] = flat_ids
        labels = torch.full((len(seqs), width), IGNORE, dtype=dtype)
        labels[valid] = flat_labels
        self._targets = torch.full_like(labels, IGNORE)
        self._targets[:, :-1] = labels[:, 1:]
        per_step = self.spec.batch_size * self.spec.grad_accum
        counts = (self._targets != IGNORE).sum(1)
        self._n_targets = counts.view(-1, per_step).sum(1).tolist()
        self._n_gather = int(counts.view(-1, self.spec.batch_size).sum(1).max())
        self._n_query = int(counts.max())

    def _batch(self, start: int, stop: int) -> dict[str, torch.Tensor]:
        """Rows ``start:stop``, padded to the longest row (to ``seq_len`` when compiled), with
        the fixed-length gather indices and targets of their loss positions."""
        width = self.spec.seq_len if self._compiled else int(self._lengths[start:stop].max())
        ids = self._ids[start:stop, :width].long()
        targets = self._targets[start:stop, :width].long()
        positions = targets != IGNORE
        flat = positions.view(-1).nonzero().squeeze(1)
        pad = self._n_gather - len(flat)
        return {
            "input_ids": ids,
            "targets": targets,
            "loss_positions": positions,
            "gather_index": torch.cat([flat, flat.new_zeros(pad)]),
            "scatter_index": torch.cat([flat, flat.new_full((pad,), ids.numel())]),
            "gather_targets": torch.cat([targets.view(-1)[flat], targets.new_full((pad,), IGNORE)]),
            **self._query_positions(positions),
        }

    def _query_positions(self, positions: torch.Tensor) -> dict[str, torch.Tensor]:
        """Each row's loss positions, in order, padded to the run's largest count."""
        n, width = self._n_query, positions.shape[1]
        order = torch.argsort((~positions).to(torch.int8), dim=1, stable=True)[:, :n]
        valid = torch.arange(n) < positions.sum(1, keepdim=True)
        index = torch.where(valid, order, 0)
        return {
            "query_index": index,
            "query_scatter": torch.where(valid, order, width),
            "query_mask": (torch.arange(width) <= index[:, :, None]).unsqueeze(1),
        }

    def _compile_layers(self) -> None:
        """``torch.compile`` every decoder layer (the classes a HF model lists as unsplittable).

        The compiled forward is an instance attribute, so state dicts and saved checkpoints are
        unchanged; ``_uncompile`` removes it again. Evaluation runs with the eager stance.
        """
        for module in self._decoder_layers():
            module.forward = torch.compile(module.forward, dynamic=False)
            self._compiled.append(module)

    def _hook_last_layer(self) -> bool:
        """Run the last layer's attention (queries), output projection and MLP at loss
        positions only, and the other layers' attention through :func:`_attention` (float32
        under bf16 autocast on the CPU), for the model types in ``_LAST_LAYER``; False where not
        applicable."""
        arch = _LAST_LAYER.get(self.lm.model.config.model_type)
        layers = self._decoder_layers()
        if not arch or not layers:
            return False
        try:
            attn = layers[-1].get_submodule(arch[0])
            branches = [layers[-1].get_submodule(name) for name in arch[1]]
        except AttributeError:
            return False
        hooks = _AtLossPositions(self.hook)
        for m in branches:
            m.register_forward_pre_hook(hooks.pre)
            m.register_forward_hook(hooks.post)
        config = getattr(attn, "config", None)
        if config is not None and config._attn_implementation == "sdpa":
            from transformers import AttentionInterface

            AttentionInterface.register(_LOSS_QUERIES, _loss_query_attention)
            own = copy.copy(config)
            own._attn_implementation_internal = _LOSS_QUERIES
            own._smollab_gather = self.hook
            self._swaps.append((attn, "config", config, own))
            # the other layers: SDPA in float32 under bf16 autocast on the CPU (_attention)
            AttentionInterface.register(_FP32_ATTENTION, _attention)
            others: dict[int, Any] = {}
            for layer in layers[:-1]:
                a = layer.get_submodule(arch[0])
                cfg = getattr(a, "config", None)
                if cfg is None or cfg._attn_implementation != "sdpa":
                    continue
                if id(cfg) not in others:
                    others[id(cfg)] = copy.copy(cfg)
                    others[id(cfg)]._attn_implementation_internal = _FP32_ATTENTION
                self._swaps.append((a, "config", cfg, others[id(cfg)]))
        return True

    def _training_modules(self) -> None:
        """Swap in the training-only pieces: tanh-approximate GELUs as :class:`_SigmoidGELU`,
        the last layer's loss-position attention. ``_original_modules`` swaps them back."""
        if not self._gelus_found:  # found once; the same objects are swapped in every time
            classes = _tanh_gelu_classes()
            for parent in list(self.model.modules()):
                for name, child in parent.named_children():
                    if isinstance(child, classes):
                        self._swaps.append((parent, name, child, _SigmoidGELU()))
            self._gelus_found = True
        for owner, name, _, training in self._swaps:
            setattr(owner, name, training)

    def _original_modules(self) -> None:
        for owner, name, original, _ in self._swaps:
            setattr(owner, name, original)

    def _decoder_layers(self) -> list[torch.nn.Module]:
        """The model's decoder layers, in order (the classes HF lists as unsplittable)."""
        names = set(getattr(self.lm.model, "_no_split_modules", None) or [])
        return [m for m in self.model.modules() if type(m).__name__ in names]

    def _uncompile(self) -> None:
        for module in self._compiled:
            del module.forward
        self._compiled = []

    def write_train_data(self, path: Path) -> None:
        """The exact training examples, in the order they were used."""
        write_jsonl(path, (e.to_dict() for e in self.train_examples))

    # ------------------------------------------------------------------ checkpoints
    def _trainable_state(self) -> dict[str, torch.Tensor]:
        return {n: p.detach() for n, p in self.model.named_parameters() if p.requires_grad}

    def save_checkpoint(self) -> None:
        """Atomically replace ``ckpt/last`` with the current step's state."""
        tmp = self.ckpt_dir / f".last.tmp{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        torch.save(
            {
                "step": self.step,
                "tokens_seen": self.tokens_seen,
                "train_seconds": self.train_seconds,
                "params": self._trainable_state(),
                "optimizer": self.optimizer.state_dict(),
                "rng": {
                    "python": random.getstate(),
                    "numpy": np.random.get_state(),
                    "torch": torch.get_rng_state(),
                },
            },
            tmp / "state.pt",
        )
        last = self.ckpt_dir / "last"
        old = self.ckpt_dir / f".old{os.getpid()}"
        if last.exists():
            os.replace(last, old)
        os.replace(tmp, last)
        shutil.rmtree(old, ignore_errors=True)

    def _resume(self) -> None:
        state_path = self.ckpt_dir / "last" / "state.pt"
        if not state_path.exists():
            if self.metrics_path.exists():  # a run killed before its first checkpoint
                self.metrics_path.unlink()
            return
        state = torch.load(state_path, weights_only=False)
        params = dict(self.model.named_parameters())
        with torch.no_grad():
            for n, t in state["params"].items():
                params[n].copy_(t)
        self.optimizer.load_state_dict(state["optimizer"])
        random.setstate(state["rng"]["python"])
        np.random.set_state(state["rng"]["numpy"])
        torch.set_rng_state(state["rng"]["torch"])
        self.step = state["step"]
        self.tokens_seen = state["tokens_seen"]
        self.train_seconds = state["train_seconds"]
        # drop log lines written after the checkpoint, so the log matches an uninterrupted run
        if self.metrics_path.exists():
            rows = [r for r in read_jsonl(self.metrics_path) if r.get("step", 0) <= self.step]
            write_jsonl(self.metrics_path, rows)
        self.progress({"event": "resumed", "step": self.step})

    # ------------------------------------------------------------------ loop
    def _loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        ids, g = batch["input_ids"], self.hook
        g.index, g.scatter = batch["gather_index"], batch["scatter_index"]
        g.shape = (ids.shape[0], ids.shape[1])
        g.query_index, g.query_scatter = batch["query_index"], batch["query_scatter"]
        g.query_mask = batch["query_mask"]
        try:
            # Rows are right-padded: under the causal mask no real token attends to a pad, so a
            # padding mask changes nothing at loss positions. An all-ones mask lets SDPA use its
            # is_causal kernel instead of an explicit [B, 1, T, T] mask.
            logits = self.model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits
        finally:
            g.index = g.scatter = g.query_index = g.query_scatter = g.query_mask = None
        # the gather's padding has IGNORE targets: it adds nothing to the sum
        return torch.nn.functional.cross_entropy(
            logits.float(), batch["gather_targets"], reduction="sum"
        )

    def fit(self) -> dict[str, Any]:
        """Train to ``spec.steps`` (setting up first if :meth:`setup` was not called); returns
        :meth:`summary`."""
        if not hasattr(self, "model"):
            self.setup()
        self._training_modules()
        if self.compile and not self._compiled:
            self._compile_layers()
        self.model.train()
        log = _MetricsLog(self.metrics_path)
        try:
            self._fit_loop(log)
        finally:
            log.close()
            self._uncompile()
            self._original_modules()
        self.model.eval()
        return self.summary()

    def _fit_loop(self, log: _MetricsLog) -> None:
        spec = self.spec
        device = next(self.model.parameters()).device
        per_step = spec.batch_size * spec.grad_accum
        self.bf16 = spec.bf16_autocast and native_bf16(device)
        if spec.bf16_autocast and not self.bf16:
            self.progress({"event": "warning", "text": BF16_FALLBACK})
        autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=self.bf16)
        while self.step < spec.steps:
            t0 = time.perf_counter()
            lr = lr_at(self.step, spec)
            for g in self.optimizer.param_groups:
                g["lr"] = lr
            n_targets = self._n_targets[self.step]
            total = 0.0
            for m in range(spec.grad_accum):
                start = self.step * per_step + m * spec.batch_size
                batch = {
                    k: v.to(device) for k, v in self._batch(start, start + spec.batch_size).items()
                }
                with autocast:
                    loss = self._loss(batch)
                (loss / n_targets).backward()
                total += loss.item()
            if spec.grad_clip > 0:
                gnorm = float(torch.nn.utils.clip_grad_norm_(self.params, spec.grad_clip))
            else:
                gnorm = float("nan")
            self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)
            self.step += 1
            self.tokens_seen += self.tokens_per_step[self.step - 1]
            self.train_seconds += time.perf_counter() - t0
            row = {
                "step": self.step,
                "loss": total / n_targets,
                "lr": lr,
                "grad_norm": gnorm,
                "tokens": self.tokens_seen,
                "time_s": round(self.train_seconds, 3),
            }
            if not math.isfinite(row["loss"]):
                raise FloatingPointError(f"training loss is {row['loss']} at step {self.step}")
            if (
                self.evaluate
                and spec.eval_every
                and (self.step % spec.eval_every == 0 or self.step == spec.steps)
            ):
                # evaluate the model exactly as it is evaluated after training
                self.model.eval()
                self._original_modules()
                with torch.compiler.set_stance("force_eager"):
                    row["eval"] = self.evaluate(self.model)
                self._training_modules()
                self.model.train()
            log.append(row)
            self.progress({"event": "train_step", **row, "total": spec.steps})
            if self.step % spec.checkpoint_every == 0 and self.step < spec.steps:
                log.sync()  # the rows up to a checkpoint are on disk before the checkpoint is
                self.save_checkpoint()

    def summary(self) -> dict[str, Any]:
        rows = read_jsonl(self.metrics_path) if self.metrics_path.exists() else []
        tail = [r["loss"] for r in rows[-10:]]
        return {
            "steps": self.step,
            "tokens": self.tokens_seen,
            "train_seconds": self.train_seconds,
            "tokens_per_s": self.tokens_seen / self.train_seconds if self.train_seconds else None,
            "final_loss": float(np.mean(tail)) if tail else None,
            "n_train_examples": len(self.train_examples),
            "n_trainable_params": sum(p.numel() for p in self.params),
            # bf16_autocast as it ran: off on a CPU without native bf16 (native_bf16)
            "bf16_autocast": self.bf16,
        }

    def save_final(self) -> None:
        """Save the final model (full weights or the LoRA adapter) to ``ckpt/final``, write
        ``train_summary.json`` (the stage's done-marker), then drop ``ckpt/last``."""
        final = self.ckpt_dir / "final"
        tmp = self.ckpt_dir / f".final.tmp{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        self.model.save_pretrained(tmp)
        self.lm.tokenizer.save_pretrained(tmp)
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
        atomic_write_json(self.run_dir / "train_summary.json", self.summary())
        shutil.rmtree(self.ckpt_dir / "last", ignore_errors=True)
