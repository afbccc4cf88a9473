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

from typing import Any, Literal

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field, model_validator
from torch import nn

from smollab.registry import Registry


class DecoderConfig(BaseModel):
    """The reference grokking model: 2 layers, d_model 128, 4 heads, post-LayerNorm."""

    model_config = ConfigDict(extra="forbid", frozen=True)

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

    def forward_split(
        self, p: torch.Tensor, s: torch.Tensor, inv: torch.Tensor, last_only: bool = False
    ) -> tuple[torch.Tensor | None, torch.Tensor]:
        """The block on a sequence split into a shared prefix and a per-row suffix.

        ``p`` (U, P, D) holds the distinct prefixes, ``inv`` (B,) maps each row to its prefix,
        ``s`` (B, S, D) the rest. Causal attention makes a prefix position depend on the prefix
        alone, so it is computed once per distinct prefix; suffix queries attend to the gathered
        prefix keys and values. Returns the new ``(p, s)`` (``p`` is None with ``last_only``,
        and ``s`` is then the last position only).
        """
        d = s.shape[2]
        qp, kp, vp = (self._heads(t) for t in self.qkv(p if self.post else self.ln1(p)).split(d, 2))
        qs, ks, vs = (self._heads(t) for t in self.qkv(s if self.post else self.ln1(s)).split(d, 2))
        k = torch.cat([kp[inv], ks], dim=2)
        v = torch.cat([vp[inv], vs], dim=2)
        n_pre, n_suf = p.shape[1], s.shape[1]
        first = n_suf - 1 if last_only else 0
        # query j of the suffix sees every prefix key and suffix keys 0..j: no mask needed
        atts = [
            F.scaled_dot_product_attention(
                qs[:, :, j : j + 1], k[:, :, : n_pre + j + 1], v[:, :, : n_pre + j + 1]
            )
            for j in range(first, n_suf)
        ]
        att_s = torch.cat(atts, dim=2).transpose(1, 2).flatten(2)
        s_out = self._out(s[:, first:], self.proj(att_s))
        if last_only:
            return None, s_out
        att_p = F.scaled_dot_product_attention(qp, kp, vp, is_causal=True)
        return self._out(p, self.proj(att_p.transpose(1, 2).flatten(2))), s_out


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

    def forward(self, tokens: torch.Tensor, shared_prefix: int = 0) -> torch.Tensor:
        """Logits at the last position. ``shared_prefix=P`` computes the first P positions once
        per distinct prefix in the batch (:meth:`Block.forward_split`): the same function, with
        less work when prefixes repeat (``x op`` in ``x op y =``: 97 distinct rows in a batch of
        512). Forward hooks on the blocks fire only without it."""
        if shared_prefix:
            return self._forward_split(tokens, shared_prefix)
        pos = torch.arange(tokens.shape[1], device=tokens.device)
        x = self.embed(self.tok(tokens) + self.pos(pos))
        last = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            x = layer(x, last_only=i == last)
        return self.head(self.ln_f(x[:, -1]))

    def _forward_split(self, tokens: torch.Tensor, n_pre: int) -> torch.Tensor:
        pos = self.pos(torch.arange(tokens.shape[1], device=tokens.device))
        # distinct prefixes via one integer key per row (1-D unique is far faster than dim=0)
        v = self.tok.num_embeddings
        if v**n_pre < 2**62:
            weights = v ** torch.arange(n_pre, device=tokens.device)
            keys, inv = torch.unique((tokens[:, :n_pre] * weights).sum(1), return_inverse=True)
            uniq = (keys[:, None] // weights) % v
        else:  # keys would overflow int64
            uniq, inv = torch.unique(tokens[:, :n_pre], dim=0, return_inverse=True)
        p: torch.Tensor | None = self.tok(uniq) + pos[:n_pre]
        s = self.tok(tokens[:, n_pre:]) + pos[n_pre:]
        last = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            assert p is not None
            p, s = layer.forward_split(p, s, inv, last_only=i == last)
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
