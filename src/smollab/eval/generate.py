"""Batched greedy decoding with a KV cache, for evaluation.

:func:`greedy_generate` is the contract: for each prompt, the greedy continuation up to
``max_new_tokens`` tokens, cut at the first stop string (not included) or EOS. Prompts are sorted
by length and batched with left padding; position ids follow the attention mask, so each row
decodes exactly as it would alone. Finished rows are dropped from the batch (and from the cache)
so that one long answer does not make the whole batch pay.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch


def _encode(tokenizer: Any, prompts: Sequence[str]) -> list[list[int]]:
    return [tokenizer(p).input_ids for p in prompts]


@torch.inference_mode()
def greedy_generate(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[str],
    *,
    max_new_tokens: int = 16,
    stop: Sequence[str] = ("\n",),
    batch_size: int = 64,
    progress: Callable[[int], None] | None = None,
) -> list[str]:
    """Greedy continuations of ``prompts`` (see module docstring for the exact contract)."""
    device = next(model.parameters()).device
    encoded = _encode(tokenizer, prompts)
    order = sorted(range(len(prompts)), key=lambda i: len(encoded[i]))
    out: list[str] = [""] * len(prompts)
    eos = tokenizer.eos_token_id
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (eos or 0)
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        texts = _generate_batch(
            model, tokenizer, [encoded[i] for i in idx], max_new_tokens, stop, eos, pad, device
        )
        for i, t in zip(idx, texts, strict=True):
            out[i] = t
        if progress:
            progress(len(idx))
    return out


def _cut(text: str, stop: Sequence[str]) -> tuple[str, bool]:
    cut = min((text.find(s) for s in stop if s and s in text), default=-1)
    return (text[:cut], True) if cut >= 0 else (text, False)


def _generate_batch(model, tokenizer, seqs, max_new_tokens, stop, eos, pad, device) -> list[str]:
    n = len(seqs)
    width = max(len(s) for s in seqs)
    ids = torch.full((n, width), pad, dtype=torch.long)
    mask = torch.zeros((n, width), dtype=torch.long)
    for r, s in enumerate(seqs):
        ids[r, width - len(s) :] = torch.tensor(s)
        mask[r, width - len(s) :] = 1
    ids, mask = ids.to(device), mask.to(device)
    pos = (mask.cumsum(-1) - 1).clamp(min=0)
    out = model(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=True)
    cache = out.past_key_values
    logits = out.logits[:, -1, :]
    generated: list[list[int]] = [[] for _ in range(n)]
    texts = [""] * n
    alive = list(range(n))  # row in the current batch -> original row
    next_pos = pos[:, -1] + 1
    for _step in range(max_new_tokens):
        tok = logits.argmax(-1)
        keep: list[int] = []
        for r, orig in enumerate(alive):
            t = int(tok[r])
            if eos is not None and t == eos:
                texts[orig] = _cut(tokenizer.decode(generated[orig]), stop)[0]
                continue
            generated[orig].append(t)
            text, stopped = _cut(tokenizer.decode(generated[orig]), stop)
            texts[orig] = text
            if not stopped:
                keep.append(r)
        if not keep or _step == max_new_tokens - 1:
            break
        if len(keep) < len(alive):
            sel = torch.tensor(keep, device=device)
            cache.batch_select_indices(sel)
            tok, mask, next_pos = tok[sel], mask[sel], next_pos[sel]
            alive = [alive[r] for r in keep]
        mask = torch.cat([mask, mask.new_ones((len(alive), 1))], dim=1)
        out = model(
            input_ids=tok[:, None],
            attention_mask=mask,
            position_ids=next_pos[:, None],
            past_key_values=cache,
            use_cache=True,
        )
        cache = out.past_key_values
        logits = out.logits[:, -1, :]
        next_pos = next_pos + 1
    return texts


@torch.inference_mode()
def sequential_generate(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[str],
    *,
    max_new_tokens: int = 16,
    stop: Sequence[str] = ("\n",),
) -> list[str]:
    """One-at-a-time ``model.generate`` (the reference that batched decoding must match)."""
    device = next(model.parameters()).device
    outs = []
    for p in prompts:
        enc = tokenizer(p, return_tensors="pt").to(device)
        g = model.generate(
            **enc,
            max_new_tokens=max_new_tokens,
            do_sample=False,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
        )
        new = g[0, enc.input_ids.shape[1] :].tolist()
        if tokenizer.eos_token_id in new:
            new = new[: new.index(tokenizer.eos_token_id)]
        outs.append(_cut(tokenizer.decode(new), stop)[0])
    return outs
