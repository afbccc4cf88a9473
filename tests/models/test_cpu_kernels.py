"""oneDNN packed linears: same outputs up to rounding, inference only, always restored."""

from __future__ import annotations

import pytest
import torch

from smollab.models.cpu_kernels import onednn_available, packed_linears, usable

pytestmark = pytest.mark.skipif(not onednn_available(), reason="this torch build has no oneDNN")


def _gpt2():
    """A tiny GPT-2: its attention and MLP are transformers' Conv1D, its head an nn.Linear."""
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    cfg = GPT2Config(n_layer=2, n_head=2, n_embd=32, n_positions=32, vocab_size=101)
    return GPT2LMHeadModel(cfg).eval()


def _swapped(model: torch.nn.Module) -> int:
    return sum("forward" in m.__dict__ for m in model.modules())


def test_same_logits_up_to_rounding_and_forwards_restored():
    model = _gpt2()
    ids = torch.randint(0, 101, (3, 17))
    with torch.inference_mode():
        ref = model(ids).logits
        with packed_linears(model):
            assert _swapped(model) == 2 * 4 + 1  # c_attn, c_proj, c_fc, mlp c_proj per layer; head
            got = model(ids).logits
    assert _swapped(model) == 0
    torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-5)


def test_nn_linear_with_bias_and_3d_noncontiguous_input():
    torch.manual_seed(1)
    lin = torch.nn.Linear(24, 40)
    x = torch.randn(4, 9, 24)[:, ::2, :]  # not contiguous
    with torch.no_grad():
        ref = lin(x)
        with packed_linears(lin):
            got = lin(x)
    torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-5)


def test_training_inside_the_block_uses_autograd_and_current_weights():
    torch.manual_seed(2)
    lin = torch.nn.Linear(8, 3)
    x = torch.randn(5, 8)
    with packed_linears(lin):
        y = lin(x).sum()  # grad enabled: plain F.linear, differentiable
        y.backward()
    assert lin.weight.grad is not None
    torch.testing.assert_close(lin.weight.grad, x.sum(0).expand(3, 8))


def test_weights_changed_between_blocks_are_repacked():
    lin = torch.nn.Linear(8, 3)
    x = torch.randn(2, 8)
    with torch.no_grad():
        with packed_linears(lin):
            before = lin(x)
        lin.weight.add_(1.0)
        with packed_linears(lin):
            after = lin(x)
        torch.testing.assert_close(after, before + x.sum(-1, keepdim=True).expand(2, 3))


def test_restored_when_the_block_raises():
    model = _gpt2()
    with pytest.raises(RuntimeError, match="boom"), packed_linears(model):
        raise RuntimeError("boom")
    assert _swapped(model) == 0


def test_not_used_for_bf16_models_or_when_turned_off(monkeypatch):
    model = _gpt2()
    assert usable(model)
    monkeypatch.setenv("SMOLLAB_ONEDNN", "0")
    assert not usable(model)
    with packed_linears(model):
        assert _swapped(model) == 0
    monkeypatch.delenv("SMOLLAB_ONEDNN")
    model = model.to(torch.bfloat16)
    assert not usable(model)
    with packed_linears(model):
        assert _swapped(model) == 0
