"""The small decoder: last-position-only last layer equals the full computation."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from smollab.errors import ConfigError
from smollab.models import build_small_model
from smollab.models.small import Decoder


def full_forward(m: Decoder, tokens: torch.Tensor) -> torch.Tensor:
    """The whole sequence through every block (the plain model), read at the last position."""
    x = m.tok(tokens) + m.pos(torch.arange(tokens.shape[1]))
    for layer in m.layers:
        x = layer(x)
    return m.head(m.ln_f(x[:, -1]))


@pytest.mark.parametrize("norm", ["post", "pre"])
def test_last_only_matches_full_sequence(norm: str) -> None:
    torch.manual_seed(0)
    m = build_small_model(
        "decoder", {"d_model": 32, "n_head": 4, "norm": norm}, vocab_size=13, n_out=11, seq_len=4
    )
    tokens = torch.randint(0, 13, (16, 4))
    torch.testing.assert_close(m(tokens), full_forward(m, tokens), rtol=1e-5, atol=1e-5)


def test_matches_manual_causal_attention() -> None:
    """SDPA with is_causal is the masked softmax attention of the reference model."""
    torch.manual_seed(1)
    m = build_small_model("decoder", {"d_model": 16, "n_head": 2}, vocab_size=7, n_out=5, seq_len=4)
    blk = m.layers[0]
    x = torch.randn(3, 4, 16)
    q, k, v = blk.qkv(x).split(16, dim=2)
    heads = [t.view(3, 4, 2, 8).transpose(1, 2) for t in (q, k, v)]
    att = heads[0] @ heads[1].transpose(-1, -2) / 8**0.5
    att = att.masked_fill(torch.ones(4, 4, dtype=torch.bool).triu(1), float("-inf"))
    out = (F.softmax(att, -1) @ heads[2]).transpose(1, 2).reshape(3, 4, 16)
    h = blk.ln1(x + blk.proj(out))
    want = blk.ln2(h + blk.mlp(h))
    torch.testing.assert_close(blk(x), want, rtol=1e-5, atol=1e-5)


def test_param_groups_cover_every_parameter() -> None:
    m = build_small_model("decoder", {}, vocab_size=99, n_out=97, seq_len=4)
    groups = m.param_groups()
    assert {id(p) for ps in groups.values() for p in ps} == {id(p) for p in m.parameters()}
    assert len(groups["embed"]) == 2


def test_bad_config() -> None:
    with pytest.raises(ValueError, match="divisible"):
        build_small_model("decoder", {"d_model": 30, "n_head": 4}, vocab_size=5, n_out=3, seq_len=4)
    with pytest.raises(ConfigError, match="Unknown small model"):
        build_small_model("lstm", {}, vocab_size=5, n_out=3, seq_len=4)


@pytest.mark.parametrize("norm", ["post", "pre"])
@pytest.mark.parametrize("n_layer", [1, 2, 3])
def test_shared_prefix_is_the_same_function(norm: str, n_layer: int) -> None:
    torch.manual_seed(2)
    m = build_small_model(
        "decoder",
        {"d_model": 32, "n_head": 4, "norm": norm, "n_layer": n_layer},
        vocab_size=13,
        n_out=11,
        seq_len=4,
    )
    tokens = torch.stack(
        [
            torch.randint(0, 5, (64,)),
            torch.full((64,), 11),
            torch.randint(0, 11, (64,)),
            torch.full((64,), 12),
        ],
        dim=1,
    )
    want = full_forward(m, tokens)
    torch.testing.assert_close(m(tokens, shared_prefix=2), want, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(m(tokens, shared_prefix=1), want, rtol=1e-5, atol=1e-5)
    # prefixes found once for a larger set (as the grokking trainer does), then indexed
    uniq, inv = m.prefix_index(torch.cat([tokens, tokens.flip(0)]), 2)
    assert len(uniq) == len(torch.unique(tokens[:, :2], dim=0))
    got = m(tokens, shared_prefix=2, prefixes=(uniq, inv[: len(tokens)]))
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    # a batch too small for the per-token table of the first block's in-projection
    torch.testing.assert_close(m(tokens[:3], shared_prefix=2), want[:3], rtol=1e-5, atol=1e-5)
    # gradients agree too (training uses this path)
    g1 = torch.autograd.grad(m(tokens, shared_prefix=2).square().sum(), list(m.parameters()))
    g2 = torch.autograd.grad(want.square().sum(), list(m.parameters()))
    for a, b in zip(g1, g2, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_mha_init_is_nn_multihead_attention_init() -> None:
    """init = "mha": the attention parameters drawn as nn.MultiheadAttention draws them."""
    torch.manual_seed(0)
    m = build_small_model("decoder", {"init": "mha"}, vocab_size=99, n_out=97, seq_len=4)
    torch.manual_seed(0)
    plain = build_small_model("decoder", {}, vocab_size=99, n_out=97, seq_len=4)
    ref = torch.nn.MultiheadAttention(128, 4)
    for blk, pblk in zip(m.layers, plain.layers, strict=True):
        assert blk.qkv.weight.shape == ref.in_proj_weight.shape
        assert torch.count_nonzero(blk.qkv.bias) == 0 == torch.count_nonzero(blk.proj.bias)
        bound = (6 / (128 + 3 * 128)) ** 0.5  # Xavier-uniform over the (3d, d) in-projection
        w = blk.qkv.weight.detach().abs()
        assert w.max() <= bound and w.max() > 0.95 * bound
        assert torch.count_nonzero(pblk.qkv.bias) > 0  # the default keeps nn.Linear's init
        # the same distribution as the reference layer's in-projection
        assert abs(float(w.mean()) - float(ref.in_proj_weight.detach().abs().mean())) < 2e-3
    # everything else is the default model's
    torch.testing.assert_close(m.tok.weight, plain.tok.weight)
