"""Models: one loader for hub ids, local dirs, GGUF files and from-scratch configs."""

from __future__ import annotations

from smollab.models.loader import LoadedModel, load_model, resolve_device, resolve_source
from smollab.models.small import SMALL_MODELS, build_small_model
from smollab.models.tokenizers import char_tokenizer

__all__ = [
    "SMALL_MODELS",
    "LoadedModel",
    "build_small_model",
    "char_tokenizer",
    "load_model",
    "resolve_device",
    "resolve_source",
]
