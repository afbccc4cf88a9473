"""Models: one loader for hub ids, local dirs, GGUF files and from-scratch configs.

The names below are loaded on first use, so that ``smollab.models.scratch`` (what a study
spec's checks need) imports without torch and transformers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from smollab.lazy import lazy_exports

if TYPE_CHECKING:
    from smollab.models.loader import LoadedModel, load_model, resolve_device, resolve_source
    from smollab.models.small import SMALL_MODELS, build_small_model
    from smollab.models.tokenizers import char_tokenizer

_WHERE = {
    "LoadedModel": "loader",
    "load_model": "loader",
    "resolve_device": "loader",
    "resolve_source": "loader",
    "SMALL_MODELS": "small",
    "build_small_model": "small",
    "char_tokenizer": "tokenizers",
}

__all__ = [
    "SMALL_MODELS",
    "LoadedModel",
    "build_small_model",
    "char_tokenizer",
    "load_model",
    "resolve_device",
    "resolve_source",
]


__getattr__ = lazy_exports(__name__, _WHERE)
