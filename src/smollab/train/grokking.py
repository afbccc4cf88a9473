"""A fast, resumable trainer for the grokking tasks (:mod:`smollab.tasks.modular`).

Speed comes from keeping everything as tensors: the whole dataset lives on the device, a step
draws its batch with one ``torch.randint`` (with replacement, as in the reference template),
the model reads only the last position (:mod:`smollab.models.small`), evaluation runs the whole
validation set in one batch, and AdamW is the fused (or for-each) implementation. Nothing in a
step goes through a Python data pipeline.

Run folder (``run_dir``)::

    split.json        the seeded train/validation split (indices into the task's pairs)
    metrics.jsonl     one row per evaluation: step, train/val loss and accuracy, weight norm, lr
    snapshots/        step_XXXXXX.npz: representations at chosen steps (the first and last
                      blocks' outputs at the last position; the input embeddings of the whole
                      sequence), answer labels, the train/val flag, the token embedding matrix
    ckpt/last.pt      model, optimizer, sampler state and counters (every checkpoint_every steps)
    ckpt/final.pt     the final model
    train_summary.json

Train metrics are the mean over the training batches since the previous evaluation (no extra
forward pass). ``step_val_acc_99`` is the first evaluation step with validation accuracy (the
whole validation set) >= 0.99; the memorisation step is the first evaluation step whose train
accuracy (the mean over the batches since the previous evaluation, each measured before its
update) is >= 0.99; the gap is their difference. Only the ``eval_every`` grid and the run's last
step count for both: the extra rows at explicit snapshot steps do not. The weight norm is the
L2 norm of all parameters (embeddings, attention, MLP, LayerNorm gains and biases, the head).
A run killed mid-way resumes from ``ckpt/last.pt`` with the same split, the same sampler state and
the same metrics rows, so it reaches exactly the final metrics of an uninterrupted run.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, cast

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from smollab.errors import ConfigError, DataError
from smollab.io import append_jsonl, atomic_write_json, read_json, read_jsonl, write_jsonl
from smollab.models.loader import native_bf16, resolve_device
from smollab.tasks.modular import ModularTask, Split

ACC_BAR = 0.99
LAYER_NAMES = ("embed", "first", "last")
Progress = Callable[[dict[str, Any]], None]


BF16_EMULATED = (
    'precision = "bf16" on a CPU without native bf16 (AVX-512 or AMX): bf16 is emulated here '
    'and several times slower than fp32; precision = "fp32" is faster on this machine'
)


class GrokTrainSpec(BaseModel):
    """``[conditions.config]`` of a ``kind = "grok"`` study: the reference configuration by
    default (AdamW lr 1e-3, betas 0.9/0.98, weight decay 0.5, 50 warm-up steps, batch 512,
    7,500 steps)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    steps: int = Field(7500, ge=1)
    lr: float = Field(1e-3, gt=0)
    betas: tuple[float, float] = Field((0.9, 0.98), strict=False)
    weight_decay: float = Field(0.5, ge=0)
    warmup_steps: int = Field(50, ge=0, description="linear warm-up from 0 (as the template)")
    lr_schedule: Literal["constant", "cosine"] = Field(
        "constant",
        description="after the warm-up: 'constant' (as the template) or 'cosine', decaying to "
        "min_lr_ratio * lr at `steps` (the planned steps: stop_after_99 does not change it)",
    )
    min_lr_ratio: float = Field(
        0.0, ge=0, le=1, description="the cosine schedule's last learning rate, as a share of lr"
    )
    batch_size: int = Field(512, ge=1)
    lr_mult: dict[Literal["embed", "layers", "head"], float] = Field(
        default_factory=dict, description="per-part learning-rate multipliers"
    )
    wd_mult: dict[Literal["embed", "layers", "head"], float] = Field(
        default_factory=dict, description="per-part weight-decay multipliers"
    )
    grokfast_alpha: float | None = Field(
        None,
        gt=0,
        lt=1,
        description="Grokfast-EMA gradient filter (Lee et al. 2024): each gradient g becomes "
        "g + grokfast_lamb * EMA(g) with this EMA decay (their default 0.98); off when unset",
    )
    grokfast_lamb: float = Field(2.0, ge=0, description="Grokfast amplification of the slow EMA")
    eval_every: int = Field(10, ge=1, description="steps between evaluations")
    checkpoint_every: int = Field(500, ge=1)
    stop_after_99: int | None = Field(
        None, ge=0, description="stop this many steps after val acc first reaches 99%"
    )
    snapshot_steps: list[int] | Literal["auto", "none"] = Field(
        "none",
        description="steps at which representations are saved ('auto': 12 log-spaced steps "
        "and a grid of 10 linear ones)",
    )
    snapshot_points: int = Field(2000, ge=10, description="pairs per snapshot (a fixed sample)")
    tsne_points: int | None = Field(
        None, ge=5, description="t-SNE of this many snapshot points (off when unset)"
    )
    compile: bool = Field(
        False,
        description="torch.compile the model: one static graph for training and one for "
        "evaluation; about 45 s of compilation on a CPU the first time (cached afterwards), "
        "so it pays on long runs and on every run after the first (BENCHMARKS.md)",
    )
    shared_prefix: bool = Field(
        True,
        description="compute the positions before the second operand (x and the operator) "
        "once per distinct x, and the first block's in-projection once per (token, position): "
        "the same function, about half the work on a CPU. The distinct prefixes are found once "
        "for the whole task, so a step does not wait on the host (BENCHMARKS.md)",
    )
    precision: Literal["fp32", "bf16"] = Field(
        "fp32",
        description="bf16: autocast matmuls to bfloat16 (weights and optimizer stay fp32); "
        "about 3x faster matmuls on CPUs with AVX512-BF16/AMX, numerically not the reference",
    )
    device: str = Field("cpu", description="'cpu', 'cuda' or 'auto'")
    threads: int | None = Field(None, ge=1)

    @field_validator("min_lr_ratio")
    @classmethod
    def _min_lr_needs_cosine(cls, v: float, info: ValidationInfo) -> float:
        if v and info.data.get("lr_schedule") != "cosine":
            raise ValueError(
                f"min_lr_ratio = {v} has no effect with a constant learning rate: add "
                'lr_schedule = "cosine", or drop min_lr_ratio'
            )
        return v

    @field_validator("lr_mult", "wd_mult")
    @classmethod
    def _pos(cls, v: dict[str, float]) -> dict[str, float]:
        if any(x < 0 for x in v.values()):
            raise ValueError(f"multipliers must be >= 0, got {v}")
        return v

    @field_validator("snapshot_steps", mode="before")
    @classmethod
    def _snapshot_kind(cls, v: Any) -> Any:
        if isinstance(v, str) and v not in ("auto", "none"):
            raise ValueError(
                "snapshot_steps is 'auto' (log-spaced and linear steps), 'none', or a list of "
                "steps such as [0, 500, 1000]"
            )
        return v

    @field_validator("snapshot_steps")
    @classmethod
    def _snapshots(cls, v: Any, info: ValidationInfo) -> Any:
        steps = info.data.get("steps")
        if isinstance(v, list) and steps is not None:
            bad = [s for s in v if not 0 <= s <= steps]
            if bad:
                raise ValueError(
                    f"snapshot steps {bad} lie outside the run (0..{steps} steps); choose "
                    "steps within it or raise 'steps'"
                )
        return v

    @field_validator("tsne_points")
    @classmethod
    def _tsne(cls, v: int | None, info: ValidationInfo) -> int | None:
        pts = info.data.get("snapshot_points")
        if v is not None and info.data.get("snapshot_steps") == "none":
            raise ValueError(
                "t-SNE is drawn from representation snapshots, and snapshot_steps is 'none' "
                "(the default), so none would be made; set snapshot_steps ('auto' or a list of "
                "steps), or drop tsne_points"
            )
        if v is not None and pts is not None and v > pts:
            raise ValueError(
                f"t-SNE asks for {v} points but a snapshot holds {pts} (snapshot_points); ask "
                "for at most that many"
            )
        return v

    def snapshot_schedule(self) -> list[int]:
        if self.snapshot_steps == "none":
            return []
        if self.snapshot_steps == "auto":
            # log-spaced early (memorisation is fast), plus a linear grid so that the grokking
            # phase, late and long, is sampled too
            pts = [*np.geomspace(self.eval_every, self.steps, 12), *np.linspace(0, self.steps, 11)]
            k = self.eval_every
            steps = {0, self.steps} | {int(round(s / k)) * k for s in pts}
            return sorted(s for s in steps if s <= self.steps)
        return sorted(set(self.snapshot_steps))


def check_points(spec: GrokTrainSpec, task: ModularTask, where: str) -> None:
    """Snapshot and t-SNE sizes against the task's number of pairs (a ConfigError if too many)."""
    if spec.tsne_points is not None and spec.tsne_points > task.n_pairs:
        raise ConfigError(
            f"{where}: tsne_points={spec.tsne_points} but task {task.name!r} has only "
            f"{task.n_pairs} pairs. Ask for at most {task.n_pairs} points."
        )


class GrokTrainer:
    """Train a small model on one grokking task; ``fit()`` resumes from ``ckpt/last.pt``."""

    def __init__(
        self,
        task: ModularTask,
        model: torch.nn.Module,
        spec: GrokTrainSpec,
        run_dir: Path,
        *,
        seed: int,
        progress: Progress | None = None,
    ) -> None:
        self.task, self.model, self.spec, self.seed = task, model, spec, seed
        self.run_dir = Path(run_dir)
        self.emit = progress or (lambda e: None)
        self.device = resolve_device(spec.device)
        self.model.to(self.device)
        self.split = self._load_or_make_split()
        dev = self.device
        toks = torch.from_numpy(task.tokens()).to(dev)
        labels = torch.from_numpy(task.labels()).to(dev)
        tr = torch.from_numpy(self.split.train).to(dev)
        va = torch.from_numpy(self.split.val).to(dev)
        self.train_x, self.train_y = toks[tr], labels[tr]
        self.val_x, self.val_y = toks[va], labels[va]
        # positions 0..1 (x, op) repeat across pairs: computed once per distinct prefix, found
        # once for the whole task (static shapes: no search per batch, no host-device sync)
        self.prefixes: torch.Tensor | None = None
        self.train_inv: torch.Tensor | None = None  # each pair's index into the prefixes
        self.val_inv: torch.Tensor | None = None
        if spec.shared_prefix and hasattr(model, "prefix_index"):
            self.prefixes, inv = cast(Any, model).prefix_index(toks, 2)
            self.train_inv, self.val_inv = inv[tr], inv[va]
        self.all_x, self.all_y = toks, labels
        self.gen = torch.Generator(device=dev)
        self.gen.manual_seed(seed)
        self.optimizer = self._optimizer()
        self.grad_ema: list[torch.Tensor] | None = None  # Grokfast-EMA state
        self.step = 0
        self.state: dict[str, Any] = {
            "step_val_acc_99": None,
            "step_train_acc_99": None,
            "train_time_s": 0.0,
            "snapshot_time_s": 0.0,
        }
        # one static graph per batch shape (training, evaluation)
        self._fwd = torch.compile(model, dynamic=False) if spec.compile else model
        self.snapshot_ids = self._snapshot_ids()

    # ------------------------------------------------------------------ set-up
    def _load_or_make_split(self) -> Split:
        path = self.run_dir / "split.json"
        split = self.task.split(self.seed)
        if path.exists():
            saved = Split.from_json(read_json(path))
            if not np.array_equal(saved.train, split.train):
                raise DataError(
                    f"{path} holds a different split from the one seed {self.seed} draws for "
                    f"task {self.task.name!r}; the run folder belongs to another configuration. "
                    "Delete the run folder to start over."
                )
            return saved
        self.run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_json(path, {"task": self.task.config.model_dump(), **split.to_json()})
        return split

    def _optimizer(self) -> torch.optim.Optimizer:
        groups_by_part = getattr(self.model, "param_groups", None)
        parts = groups_by_part() if groups_by_part else {"layers": list(self.model.parameters())}
        lr_mult: dict[str, float] = {str(k): v for k, v in self.spec.lr_mult.items()}
        wd_mult: dict[str, float] = {str(k): v for k, v in self.spec.wd_mult.items()}
        groups = [
            {
                "params": ps,
                "lr": self.spec.lr * lr_mult.get(name, 1.0),
                "weight_decay": self.spec.weight_decay * wd_mult.get(name, 1.0),
                "name": name,
            }
            for name, ps in parts.items()
            if ps
        ]
        for g in groups:
            g["base_lr"] = g["lr"]
        kw: dict[str, Any] = {"betas": self.spec.betas}
        # fused AdamW: one kernel for all parameters (CPU support since torch 2.4)
        try:
            return torch.optim.AdamW(groups, fused=True, **kw)
        except (RuntimeError, TypeError):
            return torch.optim.AdamW(groups, foreach=True, **kw)

    def _snapshot_ids(self) -> np.ndarray:
        n = min(self.spec.snapshot_points, self.task.n_pairs)
        rng = np.random.Generator(np.random.PCG64(self.seed + 7919))
        return np.sort(rng.choice(self.task.n_pairs, size=n, replace=False))

    def _set_lr(self, update: int) -> None:
        w, spec = self.spec.warmup_steps, self.spec
        factor = min(update / w, 1.0) if w else 1.0
        if spec.lr_schedule == "cosine" and update > w:
            done = min(1.0, (update - w) / max(1, spec.steps - w))
            r = spec.min_lr_ratio
            factor = r + (1 - r) * 0.5 * (1 + math.cos(math.pi * done))
        for g in self.optimizer.param_groups:
            g["lr"] = g["base_lr"] * factor

    # ------------------------------------------------------------------ checkpoints
    @property
    def ckpt_path(self) -> Path:
        return self.run_dir / "ckpt" / "last.pt"

    def save_checkpoint(self) -> None:
        path = self.ckpt_path
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"last.pt.tmp{os.getpid()}")
        torch.save(
            {
                "step": self.step,
                "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "generator": self.gen.get_state(),
                "state": self.state,
                "grad_ema": self.grad_ema,
            },
            tmp,
        )
        os.replace(tmp, path)

    def resume(self) -> bool:
        """Load ``ckpt/last.pt`` if present and drop metrics rows and snapshots written after it.
        Without a checkpoint the run starts again from step 0, so what a run killed before its
        first checkpoint wrote (metrics rows, snapshots) is removed, not appended to."""
        mpath = self.run_dir / "metrics.jsonl"
        if not self.ckpt_path.exists():
            mpath.unlink(missing_ok=True)
            for snap in (self.run_dir / "snapshots").glob("step_*.npz"):
                snap.unlink()
            return False
        ck = torch.load(self.ckpt_path, map_location=self.device, weights_only=False)
        self.model.load_state_dict(ck["model"])
        self.optimizer.load_state_dict(ck["optimizer"])
        self.gen.set_state(ck["generator"].cpu())  # generator states are CPU byte tensors
        self.step = int(ck["step"])
        self.state = ck["state"]
        self.grad_ema = ck.get("grad_ema")
        if mpath.exists():
            write_jsonl(mpath, [r for r in read_jsonl(mpath) if r["step"] <= self.step])
        for snap in (self.run_dir / "snapshots").glob("step_*.npz"):
            if int(snap.stem.split("_")[1]) > self.step:
                snap.unlink()
        return True

    # ------------------------------------------------------------------ evaluation
    def weight_norm(self) -> float:
        with torch.no_grad():
            zero = torch.zeros((), device=self.device)
            squares = sum(((p.float() ** 2).sum() for p in self.model.parameters()), zero)
            return float(torch.sqrt(squares))

    @torch.inference_mode()
    def evaluate(self) -> tuple[float, float]:
        self.model.eval()
        with self._autocast():
            logits = self._forward(self.val_x, self.val_inv).float()
        loss = F.cross_entropy(logits, self.val_y).item()
        acc = (logits.argmax(-1) == self.val_y).float().mean().item()
        self.model.train()
        return loss, acc

    @torch.inference_mode()
    def snapshot(self, val_acc: float | None) -> Path:
        """Save the last-position representations of the snapshot pairs at this step."""
        t0 = time.perf_counter()
        model: Any = self.model  # a Decoder: embed, layers and tok are its hook points
        model.eval()
        acts: dict[str, torch.Tensor] = {}
        mods = {"embed": model.embed, "first": model.layers[0], "last": model.layers[-1]}

        def keep(name: str, out: torch.Tensor) -> None:
            # blocks: the last position (where the answer is read); embeddings: the whole input
            # sequence concatenated (the last position alone is the same '=' for every pair)
            rep = out.flatten(1) if name == "embed" else out[:, -1]
            acts[name] = rep.float().cpu()

        hooks = [
            m.register_forward_hook(lambda _m, _i, out, name=name: keep(name, out))
            for name, m in mods.items()
        ]
        ids = torch.from_numpy(self.snapshot_ids).to(self.device)
        try:
            self.model(self.all_x[ids])  # the eager model: hooks do not fire inside compile
        finally:
            for h in hooks:
                h.remove()
        self.model.train()
        is_train = np.isin(self.snapshot_ids, self.split.train)
        emb = model.tok.weight[: self.task.n_classes].detach().float().cpu().numpy()
        path = self.run_dir / "snapshots" / f"step_{self.step:06d}.npz"
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.stem + f".tmp{os.getpid()}.npz")
        arrays: dict[str, Any] = {
            "step": self.step,
            "val_acc": np.nan if val_acc is None else val_acc,
            "ids": self.snapshot_ids,
            "labels": self.all_y[ids].cpu().numpy(),
            "is_train": is_train,
            "token_embeddings": emb,
            **{k: v.numpy().astype(np.float32) for k, v in acts.items()},
        }
        np.savez_compressed(tmp, **arrays)
        os.replace(tmp, path)
        self.state["snapshot_time_s"] += time.perf_counter() - t0
        return path

    # ------------------------------------------------------------------ training
    def fit(self, *, stop_at: int | None = None) -> dict[str, Any]:
        """Train to ``spec.steps`` (or ``stop_after_99`` steps past 99% val accuracy).

        ``stop_at`` halts after that many steps without finishing (used to test resumption).
        Returns the training summary (also written to ``train_summary.json``).
        """
        spec = self.spec
        resumed = self.resume()
        if resumed:
            self.emit({"event": "resumed", "step": self.step})
        mpath = self.run_dir / "metrics.jsonl"
        snaps = set(spec.snapshot_schedule())
        self.model.train()
        if spec.precision == "bf16" and not native_bf16(self.device):
            self.emit({"event": "warning", "text": BF16_EMULATED})
        if spec.batch_size > len(self.train_y):
            self.emit({"event": "warning", "text": self._batch_warning()})
        if not resumed and 0 in snaps:
            _, acc0 = self.evaluate()
            self.snapshot(acc0)
        self.emit({"event": "stage", "stage": "train", "step": self.step, "total": spec.steps})
        n_train = len(self.train_y)
        bs = spec.batch_size
        loss_sum = torch.zeros((), device=self.device)
        correct_sum = torch.zeros((), device=self.device)
        n_batches = 0
        t_last = time.perf_counter()
        end = self._end_step()
        while self.step < end:
            if stop_at is not None and self.step >= stop_at:
                return {}
            self._set_lr(self.step)
            idx = torch.randint(n_train, (bs,), generator=self.gen, device=self.device)
            x, y = self.train_x[idx], self.train_y[idx]
            with self._autocast():
                inv = None if self.train_inv is None else self.train_inv[idx]
                logits = self._forward(x, inv).float()
            loss = F.cross_entropy(logits, y)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if spec.grokfast_alpha is not None:
                self._grokfast_filter()
            self.optimizer.step()
            self.step += 1
            with torch.no_grad():
                loss_sum += loss.detach()
                correct_sum += (logits.detach().argmax(-1) == y).float().mean()
            n_batches += 1
            # the last step is snapshotted too when a run stops early (stop_after_99)
            at_snapshot = self.step in snaps or (bool(snaps) and self.step == end)
            if self.step % spec.eval_every == 0 or self.step == end or at_snapshot:
                now = time.perf_counter()
                self.state["train_time_s"] += now - t_last
                row = self._eval_row(loss_sum.item() / n_batches, correct_sum.item() / n_batches)
                append_jsonl(mpath, row)
                loss_sum.zero_()
                correct_sum.zero_()
                n_batches = 0
                if at_snapshot:
                    self.snapshot(row["val_acc"])
                end = self._end_step()
                if snaps and not at_snapshot and self.step >= end:
                    # stop_after_99 = 0: the run ends at the step that reached 99%, which gets
                    # the last snapshot as any early stop does
                    self.snapshot(row["val_acc"])
                # checkpoints are taken at evaluation steps, where the train accumulators are 0
                if self.step - self.state.get("ckpt_step", 0) >= spec.checkpoint_every or (
                    self.step >= end
                ):
                    self.state["ckpt_step"] = self.step
                    self.save_checkpoint()
                self.emit({"event": "step", "step": self.step, "total": spec.steps, **row})
                t_last = time.perf_counter()
        return self.finish()

    def _batch_warning(self) -> str:
        bs, n = self.spec.batch_size, len(self.train_y)
        return (
            f"batch_size = {bs} is larger than the {n} training pairs of task "
            f"{self.task.name!r}: batches are drawn with replacement, so a step sees each pair "
            f"about {bs / n:.1f} times and costs {bs / n:.1f}x a batch of {n}. Set batch_size "
            f"to at most {n}, or raise p or train_fraction"
        )

    @torch.no_grad()
    def _grokfast_filter(self) -> None:
        """Grokfast-EMA: keep an EMA of the gradients (started at the first gradient, as the
        authors' ``gradfilter_ema``) and add ``lamb`` times it to each gradient."""
        grads = [p.grad for p in self.model.parameters() if p.grad is not None]
        a = float(self.spec.grokfast_alpha or 0.0)
        if self.grad_ema is None:
            self.grad_ema = [g.detach().clone() for g in grads]
        else:
            torch._foreach_mul_(self.grad_ema, a)
            torch._foreach_add_(self.grad_ema, grads, alpha=1.0 - a)
        torch._foreach_add_(grads, self.grad_ema, alpha=self.spec.grokfast_lamb)

    def _forward(self, x: torch.Tensor, inv: torch.Tensor | None) -> torch.Tensor:
        """Logits of ``x``; with ``inv`` (rows' prefix indices) through the shared prefix."""
        if inv is None:
            return self._fwd(x)
        return self._fwd(x, shared_prefix=2, prefixes=(self.prefixes, inv))

    def _autocast(self) -> Any:
        return torch.autocast(
            self.device.type, dtype=torch.bfloat16, enabled=self.spec.precision == "bf16"
        )

    def _end_step(self) -> int:
        g = self.state["step_val_acc_99"]
        if self.spec.stop_after_99 is not None and g is not None:
            return min(self.spec.steps, g + self.spec.stop_after_99)
        return self.spec.steps

    def _eval_row(self, train_loss: float, train_acc: float) -> dict[str, Any]:
        t0 = time.perf_counter()
        val_loss, val_acc = self.evaluate()
        # only the evaluation grid (and the run's last step) can set the 99% steps: an extra row
        # at an explicit snapshot step must not give one condition a finer clock than another
        on_grid = self.step % self.spec.eval_every == 0 or self.step == self.spec.steps
        if on_grid and self.state["step_val_acc_99"] is None and val_acc >= ACC_BAR:
            self.state["step_val_acc_99"] = self.step
        if on_grid and self.state["step_train_acc_99"] is None and train_acc >= ACC_BAR:
            self.state["step_train_acc_99"] = self.step
        self.state["train_time_s"] += time.perf_counter() - t0
        return {
            "step": self.step,
            "train_loss": train_loss,
            "train_acc": train_acc,
            "val_loss": val_loss,
            "val_acc": val_acc,
            "weight_norm": self.weight_norm(),
            "lr": self.optimizer.param_groups[0]["lr"],
            "time_s": round(self.state["train_time_s"] + self.state["snapshot_time_s"], 3),
        }

    def finish(self) -> dict[str, Any]:
        final = self.run_dir / "ckpt" / "final.pt"
        final.parent.mkdir(parents=True, exist_ok=True)
        torch.save(self.model.state_dict(), final)
        rows = read_jsonl(self.run_dir / "metrics.jsonl")
        last = rows[-1]
        g, m = self.state["step_val_acc_99"], self.state["step_train_acc_99"]
        summary = {
            "steps": self.step,
            "planned_steps": self.spec.steps,
            "stopped_early": self.step < self.spec.steps,
            "step_val_acc_99": g,
            "step_train_acc_99": m,
            "memorisation_step": m,
            "generalisation_step": g,
            "grokking_gap": (g - m) if g is not None and m is not None else None,
            "final_train_acc": last["train_acc"],
            "final_val_acc": last["val_acc"],
            "final_val_loss": last["val_loss"],
            "max_val_acc": max(r["val_acc"] for r in rows),
            "final_weight_norm": last["weight_norm"],
            "n_train": int(len(self.split.train)),
            "n_val": int(len(self.split.val)),
            "train_time_s": round(self.state["train_time_s"], 3),
            "snapshot_time_s": round(self.state["snapshot_time_s"], 3),
            "ms_per_step": round(1000 * self.state["train_time_s"] / max(self.step, 1), 3),
            "snapshots": sorted(p.name for p in (self.run_dir / "snapshots").glob("step_*.npz"))
            if (self.run_dir / "snapshots").exists()
            else [],
        }
        atomic_write_json(self.run_dir / "train_summary.json", summary)
        return summary
