"""Small from-scratch classifiers that read the answer at the last position.

``SMALL_MODELS`` is the registry of such architectures (one, ``"decoder"``, so far): a
token + position embedding, ``n_layer`` causal decoder blocks (fused
``scaled_dot_product_attention``; post- or pre-LayerNorm), a final LayerNorm and a linear head
over ``n_out`` classes. Only the last position reaches the head, so the last block computes its
query, attention output and MLP for that position alone (keys and values still cover every
position): the same function as the full-sequence model, about a third less work.

Representation hooks: ``model.embed`` (embedding output), ``model.layers[i]`` (block outputs).
"""

from __future__ import annotations

from typing import Any, Literal, cast

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field, model_validator
from torch import nn

from smollab.registry import Registry


class DecoderConfig(BaseModel):
    """The reference grokking model: 2 layers, d_model 128, 4 heads, post-LayerNorm."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    n_layer: int = Field(2, ge=1)
    d_model: int = Field(128, ge=8)
    n_head: int = Field(4, ge=1)
    mlp_ratio: int = Field(4, ge=1)
    norm: Literal["post", "pre"] = "post"
    dropout: float = Field(0.0, ge=0, lt=1)
    init: Literal["torch", "mha"] = Field(
        "torch",
        description="'torch': nn.Linear defaults everywhere; 'mha': the attention initialised "
        "as nn.MultiheadAttention (the reference template's layer) does it: Xavier-uniform "
        "in-projection, zero in- and out-projection biases",
    )

    @model_validator(mode="after")
    def _heads(self) -> DecoderConfig:
        if self.d_model % self.n_head:
            raise ValueError(f"d_model={self.d_model} must be divisible by n_head={self.n_head}")
        return self


class Block(nn.Module):
    def __init__(self, c: DecoderConfig) -> None:
        super().__init__()
        self.n_head = c.n_head
        self.post = c.norm == "post"
        self.qkv = nn.Linear(c.d_model, 3 * c.d_model)
        self.proj = nn.Linear(c.d_model, c.d_model)
        self.ln1 = nn.LayerNorm(c.d_model)
        self.ln2 = nn.LayerNorm(c.d_model)
        self.mlp = nn.Sequential(
            nn.Linear(c.d_model, c.mlp_ratio * c.d_model),
            nn.GELU(),
            nn.Linear(c.mlp_ratio * c.d_model, c.d_model),
        )
        self.drop = nn.Dropout(c.dropout)

    def forward(self, x: torch.Tensor, last_only: bool = False) -> torch.Tensor:
        """``x``: (B, T, D). With ``last_only`` the output is (B, 1, D): the last position."""
        b, t, d = x.shape
        h = self.n_head
        a_in = x if self.post else self.ln1(x)
        q, k, v = self.qkv(a_in).split(d, dim=2)
        k = k.view(b, t, h, d // h).transpose(1, 2)
        v = v.view(b, t, h, d // h).transpose(1, 2)
        if last_only:
            # the last query attends to every key: no mask needed
            q = q[:, -1:].view(b, 1, h, d // h).transpose(1, 2)
            att = F.scaled_dot_product_attention(q, k, v)
            x = x[:, -1:]
            t = 1
        else:
            q = q.view(b, t, h, d // h).transpose(1, 2)
            att = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        att = self.drop(self.proj(att.transpose(1, 2).reshape(b, t, d)))
        if self.post:
            x = self.ln1(x + att)
            return self.ln2(x + self.drop(self.mlp(x)))
        x = x + att
        return x + self.drop(self.mlp(self.ln2(x)))

    def _out(self, x: torch.Tensor, att: torch.Tensor) -> torch.Tensor:
        """Residuals, norms and MLP after attention (``att`` already projected)."""
        att = self.drop(att)
        if self.post:
            x = self.ln1(x + att)
            return self.ln2(x + self.drop(self.mlp(x)))
        x = x + att
        return x + self.drop(self.mlp(self.ln2(x)))

    def _heads(self, t: torch.Tensor) -> torch.Tensor:
        b, n, d = t.shape
        return t.view(b, n, self.n_head, d // self.n_head).transpose(1, 2)

    def _split_heads(self, t: torch.Tensor, d: int) -> list[torch.Tensor]:
        """A concatenated projection (B, N, k*d) as k tensors (B, H, N, d/H)."""
        return [self._heads(x) for x in t.split(d, 2)]

    def forward_split(
        self,
        p: torch.Tensor,
        s: torch.Tensor,
        inv: torch.Tensor,
        last_only: bool = False,
        qkv: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor | None, torch.Tensor]:
        """The block on a sequence split into a shared prefix and a per-row suffix.

        ``p`` (U, P, D) holds the distinct prefixes, ``inv`` (B,) maps each row to its prefix,
        ``s`` (B, S, D) the rest. Causal attention makes a prefix position depend on the prefix
        alone, so it is computed once per distinct prefix; suffix queries attend to the gathered
        prefix keys and values. ``qkv``: the in-projections of ``p`` and ``s`` when the caller
        has them already (the first block's, from a per-token table). Returns the new
        ``(p, s)`` (``p`` is None with ``last_only``, and ``s`` is then the last position only).
        """
        d = s.shape[2]
        n_pre, n_suf = p.shape[1], s.shape[1]
        first = n_suf - 1 if last_only else 0
        qp: torch.Tensor | None
        if qkv is not None:
            qp, kp, vp = self._split_heads(qkv[0], d)
            qs, ks, vs = self._split_heads(qkv[1], d)
            qs = qs[:, :, first:]
        elif last_only:
            # only the last query is read: the other positions need keys and values alone
            w, b = self.qkv.weight, self.qkv.bias
            a_p = p if self.post else self.ln1(p)
            a_s = s if self.post else self.ln1(s)
            kp, vp = self._split_heads(F.linear(a_p, w[d:], b[d:]), d)
            ks, vs = self._split_heads(F.linear(a_s, w[d:], b[d:]), d)
            qs = self._heads(F.linear(a_s[:, first:], w[:d], b[:d]))
            qp = None
        else:
            qp, kp, vp = self._split_heads(self.qkv(p if self.post else self.ln1(p)), d)
            qs, ks, vs = self._split_heads(self.qkv(s if self.post else self.ln1(s)), d)
        k = torch.cat([kp.index_select(0, inv), ks], dim=2)
        v = torch.cat([vp.index_select(0, inv), vs], dim=2)
        att_s = _small_attention(qs, k, v, n_pre + first).transpose(1, 2).flatten(2)
        s_out = self._out(s[:, first:], self.proj(att_s))
        if last_only:
            return None, s_out
        assert qp is not None
        att_p = _small_attention(qp, kp, vp, 0)
        return self._out(p, self.proj(att_p.transpose(1, 2).flatten(2))), s_out


def _small_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, q0: int) -> torch.Tensor:
    """Causal attention of queries at positions ``q0, q0+1, ...`` over keys ``0..T-1``.

    ``q`` (B, H, Q, dh), ``k`` and ``v`` (B, H, T, dh). Written out with broadcasting: at these
    sizes (a few positions, B*H in the thousands) one call here is cheaper on a CPU than a
    ``scaled_dot_product_attention`` call per query position (part of the 1.13-1.18x of
    commit 6c3b5c9, BENCHMARKS.md), and it is one graph for ``torch.compile``.
    """
    n_q, t = q.shape[2], k.shape[2]
    scores = (q.unsqueeze(3) * k.unsqueeze(2)).sum(-1) * q.shape[-1] ** -0.5  # (B, H, Q, T)
    if q0 + n_q < t or n_q > 1:
        q_pos = torch.arange(q0, q0 + n_q, device=q.device)
        hidden = torch.arange(t, device=q.device)[None, :] > q_pos[:, None]
        scores = scores.masked_fill(hidden, float("-inf"))
    return (scores.softmax(-1).unsqueeze(-1) * v.unsqueeze(2)).sum(3)


class Decoder(nn.Module):
    """``forward(tokens (B, T)) -> logits (B, n_out)`` read at the last position."""

    def __init__(self, c: DecoderConfig, vocab_size: int, n_out: int, seq_len: int) -> None:
        super().__init__()
        self.config = c
        self.tok = nn.Embedding(vocab_size, c.d_model)
        self.pos = nn.Embedding(seq_len, c.d_model)
        self.embed = nn.Identity()  # hook point: the summed embeddings
        blocks = [Block(c) for _ in range(c.n_layer)]
        self.layers = nn.ModuleList(blocks)
        self.ln_f = nn.LayerNorm(c.d_model)
        self.head = nn.Linear(c.d_model, n_out)
        if c.init == "mha":
            for blk in blocks:
                nn.init.xavier_uniform_(blk.qkv.weight)
                nn.init.zeros_(blk.qkv.bias)
                nn.init.zeros_(blk.proj.bias)

    def forward(
        self,
        tokens: torch.Tensor,
        shared_prefix: int = 0,
        prefixes: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """Logits at the last position. ``shared_prefix=P`` computes the first P positions once
        per distinct prefix (:meth:`Block.forward_split`): the same function, with less work
        when prefixes repeat (``x op`` in ``x op y =``: 97 distinct rows in a batch of 512).
        ``prefixes``: ``(distinct prefixes (U, P), each row's index into them (B,))`` from
        :meth:`prefix_index`, computed once for a whole dataset; without it they are found in
        this batch. Forward hooks on the blocks fire only without ``shared_prefix``."""
        if shared_prefix:
            return self._forward_split(tokens, shared_prefix, prefixes)
        pos = torch.arange(tokens.shape[1], device=tokens.device)
        x = self.embed(self.tok(tokens) + self.pos(pos))
        last = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            x = layer(x, last_only=i == last)
        return self.head(self.ln_f(x[:, -1]))

    def prefix_index(self, tokens: torch.Tensor, n_pre: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The distinct ``n_pre``-token prefixes of ``tokens`` (U, n_pre), sorted, and each row's
        index into them (B,)."""
        v = self.tok.num_embeddings
        if v**n_pre < 2**62:  # one integer key per row: 1-D unique is far faster than dim=0
            weights = v ** torch.arange(n_pre, device=tokens.device)
            keys, inv = torch.unique((tokens[:, :n_pre] * weights).sum(1), return_inverse=True)
            return (keys[:, None] // weights) % v, inv
        uniq, inv = torch.unique(tokens[:, :n_pre], dim=0, return_inverse=True)
        return uniq, inv

    def _forward_split(
        self,
        tokens: torch.Tensor,
        n_pre: int,
        prefixes: tuple[torch.Tensor, torch.Tensor] | None,
    ) -> torch.Tensor:
        uniq, inv = prefixes if prefixes is not None else self.prefix_index(tokens, n_pre)
        (b, t), u, d = tokens.shape, uniq.shape[0], self.config.d_model
        n_suf = t - n_pre
        # the input of every position is token + position embedding: one row per (token,
        # position) of a (vocab x positions) table
        table = (self.tok.weight[:, None] + self.pos.weight[None, :t]).flatten(0, 1)
        ar = torch.arange(t, device=tokens.device)
        ip = (uniq * t + ar[:n_pre]).flatten()
        is_ = (tokens[:, n_pre:] * t + ar[n_pre:]).flatten()
        p: torch.Tensor | None = table.index_select(0, ip).view(u, n_pre, d)
        s = table.index_select(0, is_).view(b, n_suf, d)
        qkv: tuple[torch.Tensor, torch.Tensor] | None = None
        first = cast(Block, self.layers[0])
        if len(table) <= u * n_pre + b * n_suf:
            # so the first block's in-projection is a table too, when that is less work
            proj = first.qkv(table if first.post else first.ln1(table))
            qkv = (
                proj.index_select(0, ip).view(u, n_pre, 3 * d),
                proj.index_select(0, is_).view(b, n_suf, 3 * d),
            )
        last = len(self.layers) - 1
        for i, layer in enumerate(cast(list[Block], list(self.layers))):
            assert p is not None
            p, s = layer.forward_split(p, s, inv, last_only=i == last, qkv=qkv if i == 0 else None)
        return self.head(self.ln_f(s[:, -1]))

    def param_groups(self) -> dict[str, list[nn.Parameter]]:
        """Parameters by part, for per-part learning rates: embed, layers, head."""
        groups: dict[str, list[nn.Parameter]] = {"embed": [], "layers": [], "head": []}
        for name, prm in self.named_parameters():
            part = (
                "embed"
                if name.startswith(("tok.", "pos."))
                else ("layers" if name.startswith("layers.") else "head")
            )
            groups[part].append(prm)
        return groups


#: architecture name -> (config class, constructor(config, vocab_size, n_out, seq_len))
SMALL_MODELS: Registry[Any] = Registry("small model")
SMALL_MODELS.register("decoder")((DecoderConfig, Decoder))


def build_small_model(
    arch: str, config: dict[str, Any], *, vocab_size: int, n_out: int, seq_len: int
) -> nn.Module:
    """Build a registered small model; ``config`` is validated by its config class."""
    config_cls, ctor = SMALL_MODELS.get(arch, where="model source")
    return ctor(config_cls(**config), vocab_size, n_out, seq_len)
