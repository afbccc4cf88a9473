"""Tokenizers for from-scratch models, as ordinary HF fast tokenizers (one code path).

``char_tokenizer()``: one token per printable ASCII character plus newline; ``<pad>`` and
``<eos>`` specials. Decoding is lossless for that alphabet.
"""

from __future__ import annotations

import string

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

CHARS = [c for c in string.printable if c not in "\t\r\x0b\x0c"]


def char_tokenizer() -> PreTrainedTokenizerFast:
    vocab = {"<pad>": 0, "<eos>": 1, "<unk>": 2}
    for c in CHARS:
        vocab.setdefault(c, len(vocab))
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    # [\s\S], not ".": "." skips newlines, which merged "\n\n" into one <unk> piece
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    tok.decoder = decoders.Fuse()
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", eos_token="<eos>", unk_token="<unk>"
    )


def verify_single_tokens(tokenizer, texts: list[str]) -> dict[str, list[int]]:
    """Map each text to its ids; callers check that new tokens encode to exactly one id."""
    return {t: tokenizer(t, add_special_tokens=False).input_ids for t in texts}
