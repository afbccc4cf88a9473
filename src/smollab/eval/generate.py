"""Batched greedy decoding with a KV cache, for evaluation.

:func:`greedy_generate` is the contract: for each prompt, the greedy continuation up to
``max_new_tokens`` tokens, cut at the first stop string (not included) or EOS. Prompts are sorted
by length and batched with left padding; position ids follow the attention mask, so each row
decodes exactly as it would alone. Finished rows are dropped from the batch (and from the cache)
so that one long answer does not make the whole batch pay.

Two things keep the work per batch down (see ``benchmarks/bench_generate.py``): the tokens that
every prompt of a batch starts with (``Q: What is``, few-shot examples, a chat system prompt) are
run once and their KV cache is shared by all rows; and the output projection is applied to the
last position only (``logits_to_keep=1``), not to every prompt token.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any

import torch


def _encode(tokenizer: Any, prompts: Sequence[str]) -> list[list[int]]:
    return [tokenizer(p).input_ids for p in prompts]


def _last_logits_kwargs(model: Any) -> dict[str, int]:
    """``{"logits_to_keep": 1}`` if the (base) model's forward accepts it, else nothing."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    try:
        params = inspect.signature(base.forward).parameters
    except (TypeError, ValueError):
        return {}
    return {"logits_to_keep": 1} if "logits_to_keep" in params else {}


def _common_prefix_len(seqs: Sequence[Sequence[int]]) -> int:
    """Length of the token prefix shared by all ``seqs``, leaving every row at least one token."""
    first, limit = seqs[0], min(len(s) for s in seqs) - 1
    n = 0
    while n < limit and all(s[n] == first[n] for s in seqs):
        n += 1
    return n


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
    # by length, then by tokens: batches get little padding and long shared prefixes
    order = sorted(range(len(prompts)), key=lambda i: (len(encoded[i]), encoded[i]))
    out: list[str] = [""] * len(prompts)
    eos = tokenizer.eos_token_id
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (eos or 0)
    last = _last_logits_kwargs(model)
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        texts = _generate_batch(
            model,
            tokenizer,
            [encoded[i] for i in idx],
            max_new_tokens,
            stop,
            eos,
            pad,
            device,
            last,
        )
        for i, t in zip(idx, texts, strict=True):
            out[i] = t
        if progress:
            progress(len(idx))
    return out


def _cut(text: str, stop: Sequence[str]) -> tuple[str, bool]:
    cut = min((text.find(s) for s in stop if s and s in text), default=-1)
    return (text[:cut], True) if cut >= 0 else (text, False)


def _generate_batch(
    model, tokenizer, seqs, max_new_tokens, stop, eos, pad, device, last=None
) -> list[str]:
    n = len(seqs)
    last = last or {}
    # the shared prefix: one row through the model, its cache repeated for every row
    p = _common_prefix_len(seqs) if n > 1 else 0
    cache = None
    if p:
        prefix = torch.tensor([seqs[0][:p]], dtype=torch.long, device=device)
        cache = model(input_ids=prefix, use_cache=True, **last).past_key_values
        cache.batch_repeat_interleave(n)
        seqs = [s[p:] for s in seqs]
    width = max(len(s) for s in seqs)
    ids = torch.full((n, width), pad, dtype=torch.long)
    mask = torch.zeros((n, p + width), dtype=torch.long)
    mask[:, :p] = 1
    for r, s in enumerate(seqs):
        ids[r, width - len(s) :] = torch.tensor(s)
        mask[r, p + width - len(s) :] = 1
    ids, mask = ids.to(device), mask.to(device)
    pos = (mask.cumsum(-1) - 1).clamp(min=0)[:, p:]
    out = model(
        input_ids=ids,
        attention_mask=mask,
        position_ids=pos,
        past_key_values=cache,
        use_cache=True,
        **last,
    )
    cache = out.past_key_values
    logits = out.logits[:, -1, :]
    generated: list[list[int]] = [[] for _ in range(n)]
    texts = [""] * n
    alive = list(range(n))  # row in the current batch -> original row
    next_pos = pos[:, -1] + 1
    for _step in range(max_new_tokens):
        tok = logits.argmax(-1)
        keep: list[int] = []
        for r, (orig, t) in enumerate(zip(alive, tok.tolist(), strict=True)):
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
