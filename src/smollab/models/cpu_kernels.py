"""Faster CPU inference: a model's linear layers through oneDNN with pre-packed weights.

PyTorch's ``F.linear`` on CPU calls MKL's sgemm. On this project's machine (AMD EPYC, AVX-512,
one core) oneDNN with the weight packed once into its blocked layout is faster at a 135M
model's shapes, most of all at the small row counts of decoding and for a large LM head
(``benchmarks/bench_linear_kernels.py``; figures in BENCHMARKS.md). Results differ from MKL's by
rounding only (about 1e-6 relative).

:func:`packed_linears` swaps the ``forward`` of every ``nn.Linear`` (and transformers' GPT-2
``Conv1D``) of a float32 CPU model for the packed kernel inside a ``with`` block, and restores it
on exit. Only inference is affected: when autograd is recording, the layer runs ``F.linear`` as
before. Set ``SMOLLAB_ONEDNN=0`` to keep PyTorch's default kernels.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

import torch
import torch.nn.functional as F

__all__ = ["onednn_available", "packed_linears", "usable"]


def onednn_available() -> bool:
    """True when this PyTorch build has oneDNN and its packed-linear ops (and the environment
    does not turn them off with ``SMOLLAB_ONEDNN=0``)."""
    if os.environ.get("SMOLLAB_ONEDNN", "1") == "0":
        return False
    ops = getattr(torch.ops, "mkldnn", None)
    try:
        return bool(
            torch.backends.mkldnn.is_available()
            and ops is not None
            and hasattr(ops, "_reorder_linear_weight")
            and hasattr(ops, "_linear_pointwise")
        )
    except (AttributeError, RuntimeError):  # pragma: no cover - exotic builds
        return False


def _linear_layers(model: torch.nn.Module) -> Iterator[tuple[Any, bool]]:
    """(module, transposed) for every linear layer: ``nn.Linear`` stores ``[out, in]``,
    transformers' ``Conv1D`` ``[in, out]``."""
    conv1d: Any = None
    with contextlib.suppress(ImportError):
        from transformers.pytorch_utils import Conv1D as conv1d
    for mod in model.modules():
        if isinstance(mod, torch.nn.Linear):
            yield mod, False
        elif conv1d is not None and isinstance(mod, conv1d):
            yield mod, True


def usable(model: torch.nn.Module) -> bool:
    """oneDNN is available and ``model`` is float32 on the CPU."""
    try:
        p = next(model.parameters())
    except StopIteration:
        return False
    return p.device.type == "cpu" and p.dtype == torch.float32 and onednn_available()


@contextlib.contextmanager
def packed_linears(model: torch.nn.Module) -> Iterator[None]:
    """Within the block, ``model``'s linear layers run oneDNN's packed kernel (a no-op when
    :func:`usable` is false). Weights are packed on entry (about 0.3 s for a 135M model) and
    the packed copies dropped on exit, so the model's current weights are always the ones
    used and no memory is held between blocks."""
    if not usable(model):
        yield
        return
    swapped: list[Any] = []
    try:
        with torch.no_grad():
            for mod, transposed in _linear_layers(model):
                if "forward" in mod.__dict__:  # already swapped (nested use) or user-patched
                    continue
                dense = (mod.weight.t() if transposed else mod.weight).detach().contiguous()
                packed = torch.ops.mkldnn._reorder_linear_weight(dense)
                mod.forward = _packed_forward(mod, transposed, packed)
                swapped.append(mod)
        yield
    finally:
        for mod in swapped:
            del mod.forward


def _packed_forward(mod: Any, transposed: bool, packed: torch.Tensor) -> Any:
    weight, bias = mod.weight, mod.bias
    pointwise = torch.ops.mkldnn._linear_pointwise

    def forward(x: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled() or x.dtype != torch.float32:
            return F.linear(x, weight.t() if transposed else weight, bias)
        return pointwise(x, packed, bias, "none", [], "")

    return forward
