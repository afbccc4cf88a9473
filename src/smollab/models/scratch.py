"""From-scratch model configs: tiny GPT-2 and Llama, sized by a few overrides.

``source = "scratch:gpt2"`` or ``"scratch:llama"``; ``config`` overrides the defaults below
(``n_layer``, ``n_head``, ``n_embd``, ``block_size``, ``dropout``). The vocabulary size comes from
the tokenizer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from smollab.errors import ConfigError

if TYPE_CHECKING:
    from transformers import PretrainedConfig

DEFAULTS: dict[str, Any] = {
    "n_layer": 4,
    "n_head": 4,
    "n_embd": 128,
    "block_size": 256,
    "dropout": 0.0,
}
ARCHS = ("gpt2", "llama")


class _Sizes(BaseModel):
    """The types and ranges of :data:`DEFAULTS` (whole numbers stay whole: no 1.5 layers)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    n_layer: int = Field(ge=1)
    n_head: int = Field(ge=1)
    n_embd: int = Field(ge=1)
    block_size: int = Field(ge=2)
    dropout: float = Field(ge=0, lt=1)


def check_scratch(arch: str, overrides: dict[str, Any]) -> dict[str, Any]:
    """The scratch architecture and config overrides, checked (a ConfigError naming the bad
    value); returns the full config. Needs no tokenizer, so a study spec is checked up front."""
    if arch not in ARCHS:
        raise ConfigError(
            f"Unknown scratch architecture {arch!r}; use "
            f"{' or '.join(repr('scratch:' + a) for a in ARCHS)}."
        )
    unknown = set(overrides) - set(DEFAULTS)
    if unknown:
        raise ConfigError(
            f"Unknown scratch-model config keys {sorted(unknown)}; valid keys: "
            f"{', '.join(DEFAULTS)}."
        )
    c = {**DEFAULTS, **overrides}
    if isinstance(c["dropout"], int) and not isinstance(c["dropout"], bool):
        c["dropout"] = float(c["dropout"])
    try:
        _Sizes(**c)
    except ValidationError as e:
        bad = "; ".join(
            f"{'.'.join(map(str, x['loc']))} = {x['input']!r}: {x['msg'].lower()}"
            for x in e.errors()
        )
        raise ConfigError(
            f"Scratch-model config: {bad}. Layers, heads, width and block size are whole "
            "numbers of at least 1 (block size 2); dropout is in [0, 1)."
        ) from None
    if c["n_embd"] % c["n_head"]:
        raise ConfigError(
            f"Scratch model: n_embd={c['n_embd']} must be divisible by n_head={c['n_head']}."
        )
    return c


def scratch_config(
    arch: str, vocab_size: int, overrides: dict[str, Any], pad_id: int, eos_id: int
) -> PretrainedConfig:
    from transformers import GPT2Config, LlamaConfig  # here: spec checks need only check_scratch

    c = check_scratch(arch, overrides)
    if arch == "gpt2":
        return GPT2Config(
            vocab_size=vocab_size,
            n_positions=c["block_size"],
            n_embd=c["n_embd"],
            n_layer=c["n_layer"],
            n_head=c["n_head"],
            resid_pdrop=c["dropout"],
            embd_pdrop=c["dropout"],
            attn_pdrop=c["dropout"],
            bos_token_id=eos_id,
            eos_token_id=eos_id,
            pad_token_id=pad_id,
        )
    if arch == "llama":
        return LlamaConfig(
            vocab_size=vocab_size,
            hidden_size=c["n_embd"],
            intermediate_size=4 * c["n_embd"],
            num_hidden_layers=c["n_layer"],
            num_attention_heads=c["n_head"],
            num_key_value_heads=c["n_head"],
            max_position_embeddings=c["block_size"],
            attention_dropout=c["dropout"],
            tie_word_embeddings=True,
            bos_token_id=eos_id,
            eos_token_id=eos_id,
            pad_token_id=pad_id,
        )
    raise AssertionError(arch)  # check_scratch accepts only ARCHS
