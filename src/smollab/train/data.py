"""Training data: examples -> token sequences with a loss mask on answer tokens only.

With ``pack=True`` several examples share one sequence of ``seq_len`` tokens (no example is split
across sequences); earlier examples then act as context for later ones. Every sequence starts
with the prompt tokenized exactly as evaluation tokenizes it, without solved examples before
it: a format with shots (``fewshot``) trains on its zero-shot prompt (``Q: ... A:``, the
``plain`` text) and is evaluated with its shots; packing gives the trained model its own
earlier examples as context instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from smollab.errors import ConfigError
from smollab.tasks import Example, PromptFormat

IGNORE = -100


class OutOfExamples(Exception):
    """``pack_examples`` needed more examples than it was given (the caller draws more)."""


@dataclass
class PackedSequence:
    input_ids: list[int]
    labels: list[int]  # IGNORE except on target tokens
    n_examples: int


def encode_example(
    tokenizer: Any, fmt: PromptFormat, ex: Example, first: bool
) -> tuple[list[int], list[int]]:
    """(prompt ids, target ids). ``first``: tokenize the prompt as evaluation does."""
    prompt = fmt.prompt(ex, tokenizer)
    target = fmt.target(ex, tokenizer)
    p = tokenizer(prompt, add_special_tokens=first).input_ids
    t = tokenizer(target, add_special_tokens=False).input_ids
    return p, t


def pack_examples(
    examples: Sequence[Example],
    tokenizer: Any,
    fmt: PromptFormat,
    seq_len: int,
    n_sequences: int,
    pack: bool = True,
) -> tuple[list[PackedSequence], int]:
    """Build ``n_sequences`` sequences from ``examples`` in order; returns (sequences, n used)."""
    seqs: list[PackedSequence] = []
    i = 0
    while len(seqs) < n_sequences:
        ids: list[int] = []
        labels: list[int] = []
        n = 0
        while i < len(examples):
            p, t = encode_example(tokenizer, fmt, examples[i], first=not ids)
            if len(p) + len(t) > seq_len:
                raise ConfigError(
                    f"One training example is {len(p) + len(t)} tokens, longer than "
                    f"seq_len={seq_len}. Increase [conditions.train].seq_len or use a shorter "
                    f"prompt format."
                )
            if ids and len(ids) + len(p) + len(t) > seq_len:
                break
            ids += p + t
            labels += [IGNORE] * len(p) + t
            n += 1
            i += 1
            if not pack:
                break
        if n == 0:
            raise OutOfExamples(f"ran out of training examples after {len(seqs)} sequences")
        seqs.append(PackedSequence(ids, labels, n))
    return seqs, i


def collate(seqs: Sequence[PackedSequence], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-pad to the longest sequence; ``loss_positions`` marks inputs whose next token
    counts in the loss."""
    width = max(len(s.input_ids) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    labels = torch.full((len(seqs), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for r, s in enumerate(seqs):
        ids[r, : len(s.input_ids)] = torch.tensor(s.input_ids)
        labels[r, : len(s.labels)] = torch.tensor(s.labels)
        mask[r, : len(s.input_ids)] = 1
    # position t predicts token t+1
    targets = torch.full_like(labels, IGNORE)
    targets[:, :-1] = labels[:, 1:]
    return {
        "input_ids": ids,
        "attention_mask": mask,
        "targets": targets,
        "loss_positions": targets != IGNORE,
    }
