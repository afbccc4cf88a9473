"""Batched greedy decoding with a KV cache, for evaluation.

:func:`greedy_generate` is the contract: for each prompt, the greedy continuation up to
``max_new_tokens`` tokens, cut at the first stop string (not included) or EOS. Prompts are sorted
by length and batched with left padding; position ids follow the attention mask, so each row
decodes exactly as it would alone. Finished rows are dropped from the batch (and from the cache)
so that one long answer does not make the whole batch pay.

Three things keep the work per batch down (see ``benchmarks/bench_generate.py``): the tokens that
every prompt of a batch starts with (``Q: What is``, few-shot examples, a chat system prompt) are
run once and their KV cache is shared by all rows; the output projection is applied to the
last position only (``logits_to_keep=1``), not to every prompt token; and the KV cache is
allocated once per batch for the prompt plus ``max_new_tokens`` (:class:`GrowingLayer`), where
transformers' ``DynamicCache`` copies the whole cache into a new tensor at every decoded token.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any

import torch
from transformers.cache_utils import DynamicCache, DynamicLayer

from smollab.errors import ConfigError


class GrowingLayer(DynamicLayer):
    """A ``DynamicLayer`` whose keys and values live in buffers allocated for ``capacity``
    positions: ``update`` writes the new positions in place and ``keys`` / ``values`` are views
    of the filled part, so decoding a token copies one position, not the whole cache (the
    buffers double if a batch outgrows them). The values attention reads are the same tensors
    as with ``DynamicLayer``, so the outputs are identical."""

    def __init__(self, capacity: int = 0) -> None:
        super().__init__()
        self.capacity = capacity
        self.length = 0
        self._k: torch.Tensor | None = None
        self._v: torch.Tensor | None = None

    def _views(self) -> None:
        assert self._k is not None and self._v is not None
        self.keys, self.values = self._k[:, :, : self.length], self._v[:, :, : self.length]

    @staticmethod
    def _alloc(like: torch.Tensor, rows: int, capacity: int) -> torch.Tensor:
        _, heads, _, dim = like.shape
        return like.new_empty((rows, heads, capacity, dim))

    def update(
        self, key_states: torch.Tensor, value_states: torch.Tensor, *args: Any, **kwargs: Any
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        n, new = self.length, key_states.shape[-2]
        if self._k is None or n + new > self._k.shape[2]:
            cap = max(self.capacity, n + new, 2 * (self._k.shape[2] if self._k is not None else 0))
            k = self._alloc(key_states, key_states.shape[0], cap)
            v = self._alloc(value_states, value_states.shape[0], cap)
            if self._k is not None and self._v is not None and n:
                k[:, :, :n] = self._k[:, :, :n]
                v[:, :, :n] = self._v[:, :, :n]
            self._k, self._v = k, v
        assert self._v is not None
        self._k[:, :, n : n + new] = key_states
        self._v[:, :, n : n + new] = value_states
        self.length = n + new
        self._views()
        assert self.keys is not None and self.values is not None
        return self.keys, self.values

    def get_seq_length(self) -> int:
        return self.length

    def crop(self, tokens_to_remove: int) -> None:
        if tokens_to_remove > 0:  # transformers' contract: only negative counts
            raise ValueError("GrowingLayer.crop takes a negative number of tokens to remove.")
        if tokens_to_remove and self._k is not None:
            self.length = max(0, self.length + tokens_to_remove)
            self._views()

    def reset(self) -> None:
        self.length = 0
        self._k = self._v = None
        super().reset()

    def batch_repeat_interleave(self, repeats: int) -> None:
        if self._k is None or self._v is None or not self.length:
            return
        n = self.length
        k = self._alloc(self._k, self._k.shape[0] * repeats, self._k.shape[2])
        v = self._alloc(self._v, self._v.shape[0] * repeats, self._v.shape[2])
        k[:, :, :n] = self._k[:, :, :n].repeat_interleave(repeats, dim=0)
        v[:, :, :n] = self._v[:, :, :n].repeat_interleave(repeats, dim=0)
        self._k, self._v = k, v
        self._views()

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        """Keep the rows ``indices``. Rows kept in their order (the finished rows dropped, as
        generation does) move up within the same buffers; any other selection copies."""
        if self._k is None or self._v is None or not self.length:
            return
        n, idx = self.length, indices.tolist()
        if all(b >= a for a, b in zip(idx, idx[1:], strict=False)) and len(set(idx)) == len(idx):
            # ascending: row idx[i] >= i, so each source is read before anything overwrites it
            for i, r in enumerate(idx):
                if r != i:
                    self._k[i, :, :n] = self._k[r, :, :n]
                    self._v[i, :, :n] = self._v[r, :, :n]
            self._k, self._v = self._k[: len(idx)], self._v[: len(idx)]
        else:
            self._k, self._v = self._k[indices], self._v[indices]
        self._views()


def new_cache(model: Any, capacity: int) -> DynamicCache | None:
    """A ``DynamicCache`` for ``model`` whose full-attention layers are :class:`GrowingLayer` of
    ``capacity`` positions (sliding-window and other special layers stay as transformers makes
    them); ``None`` (transformers' default cache) for a model without a config to read."""
    config = getattr(model, "config", None)
    if config is None or not hasattr(config, "get_text_config"):
        return None
    try:
        cache = DynamicCache(config=config)
    except Exception:  # an unusual config: leave the cache to the model
        return None
    if cache.layers:
        cache.layers = [
            GrowingLayer(capacity) if type(layer) is DynamicLayer else layer
            for layer in cache.layers
        ]
    else:
        cache.layer_class_to_replicate = lambda: GrowingLayer(capacity)  # type: ignore[assignment]
    return cache


def _cache_kwarg(model: Any) -> str:
    """The name forward takes the KV cache under: transformers 5.x renames ``past_key_values``
    to ``cache`` (the old name warns, and goes in 5.40); 4.x and custom models keep the old.
    A peft (LoRA) model passes extra keywords on to its base model, whose name counts."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    try:
        params = inspect.signature(base.forward).parameters
    except (TypeError, ValueError):
        return "past_key_values"
    return "cache" if "cache" in params else "past_key_values"


def _returned_cache(out: Any) -> Any:
    """The KV cache a forward returned, under either name (see :func:`_cache_kwarg`)."""
    cache = getattr(out, "cache", None)
    return cache if cache is not None else out.past_key_values


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
    prompt_ids: Sequence[Sequence[int]] | None = None,
    temperature: float = 0.0,
    top_p: float = 1.0,
    seed: int = 0,
    skip_special_tokens: bool = False,
) -> list[str]:
    """Greedy continuations of ``prompts`` (see module docstring for the exact contract).

    ``prompt_ids`` replaces the tokenizer's encoding of ``prompts`` (callers that truncate or
    encode without special tokens pass their own ids). ``temperature > 0`` samples instead of
    taking the argmax (nucleus ``top_p``), from a generator seeded with ``seed``: the same call
    gives the same samples. ``skip_special_tokens`` leaves special tokens out of the decoded
    text (lm-evaluation-harness decodes that way). ``stop`` may be one string or several.

    Each row's sampler is seeded with ``seed`` alone, so its sample depends on its prompt and
    the seed, not on its batch: the same prompt twice in one call gives the same sample twice.
    Draw n samples of a prompt with n calls (or requests) of different seeds.

    An empty prompt is replaced by the EOS token (as loglikelihood's empty context is).
    """
    from smollab.tasks.requests import check_sampling

    if isinstance(prompts, str):
        raise ConfigError(
            "greedy_generate takes a list of prompts, not one prompt's text: pass [prompt]."
        )
    if isinstance(stop, str):  # one stop string, not its characters
        stop = (stop,)
    if batch_size < 1 or max_new_tokens < 1:
        raise ConfigError(
            f"greedy_generate: batch_size={batch_size} and max_new_tokens={max_new_tokens} "
            "must both be 1 or more."
        )
    check_sampling(temperature, top_p, where="greedy_generate")
    device = next(model.parameters()).device
    encoded = (
        [list(x) for x in prompt_ids] if prompt_ids is not None else _encode(tokenizer, prompts)
    )
    if any(not e for e in encoded):
        start = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else 0
        encoded = [e or [start] for e in encoded]
    if encoded:
        from smollab.eval.lm import model_window

        window = model_window(model, tokenizer)
        longest = max(len(e) for e in encoded)
        if longest + max_new_tokens > window:
            raise ConfigError(
                f"A prompt of {longest} tokens plus max_new_tokens={max_new_tokens} does not "
                f"fit the model's context window of {window} tokens. Use a shorter prompt "
                "format (e.g. 'compact' instead of 'fewshot'), fewer tokens to generate, or a "
                "model with a longer window (for a scratch model, a larger config.block_size)."
            )
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
            # a fresh sampler per batch: its generators are keyed by row in the batch
            _Sampler(temperature, top_p, seed) if temperature > 0 else None,
            skip_special_tokens,
        )
        for i, t in zip(idx, texts, strict=True):
            out[i] = t
        if progress:
            progress(len(idx))
    return out


def _cut(text: str, stop: Sequence[str]) -> tuple[str, bool]:
    cut = min((text.find(s) for s in stop if s and s in text), default=-1)
    return (text[:cut], True) if cut >= 0 else (text, False)


class _Sampler:
    """Temperature / nucleus sampling; each row draws from its own generator seeded with
    ``seed``, so a row's sample depends on its prompt and the seed, not on its batch."""

    def __init__(self, temperature: float, top_p: float, seed: int) -> None:
        self.temperature, self.top_p, self.seed = temperature, top_p, seed
        self.gens: dict[int, torch.Generator] = {}

    def __call__(self, logits: torch.Tensor, rows: Sequence[int]) -> torch.Tensor:
        probs = torch.softmax(logits.float().cpu() / self.temperature, dim=-1)
        if self.top_p < 1.0:
            sorted_p, sorted_i = probs.sort(-1, descending=True)
            # drop tokens once the mass before them already reaches top_p (keep at least one)
            drop = sorted_p.cumsum(-1) - sorted_p >= self.top_p
            sorted_p[drop] = 0.0
            probs = torch.zeros_like(probs).scatter(-1, sorted_i, sorted_p)
        out = []
        for r, row in enumerate(rows):
            gen = self.gens.setdefault(row, torch.Generator().manual_seed(self.seed))
            out.append(torch.multinomial(probs[r], 1, generator=gen))
        return torch.cat(out).to(logits.device)


def _generate_batch(
    model,
    tokenizer,
    seqs,
    max_new_tokens,
    stop,
    eos,
    pad,
    device,
    last=None,
    sampler=None,
    skip_special_tokens=False,
) -> list[str]:
    n = len(seqs)
    last = last or {}
    # the shared prefix: one row through the model, its cache repeated for every row
    p = _common_prefix_len(seqs) if n > 1 else 0
    cache = new_cache(model, max(len(s) for s in seqs) + max_new_tokens)
    kv = _cache_kwarg(model)
    if p:
        prefix = torch.tensor([seqs[0][:p]], dtype=torch.long, device=device)
        cache = _returned_cache(model(input_ids=prefix, **{kv: cache}, use_cache=True, **last))
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
        **{kv: cache},
        use_cache=True,
        **last,
    )
    cache = _returned_cache(out)
    logits = out.logits[:, -1, :]
    generated: list[list[int]] = [[] for _ in range(n)]
    texts = [""] * n
    alive = list(range(n))  # row in the current batch -> original row
    next_pos = pos[:, -1] + 1
    for _step in range(max_new_tokens):
        tok = sampler(logits, alive) if sampler else logits.argmax(-1)
        keep: list[int] = []
        for r, (orig, t) in enumerate(zip(alive, tok.tolist(), strict=True)):
            if eos is not None and t == eos:
                texts[orig] = _cut(
                    tokenizer.decode(generated[orig], skip_special_tokens=skip_special_tokens),
                    stop,
                )[0]
                continue
            generated[orig].append(t)
            text, stopped = _cut(
                tokenizer.decode(generated[orig], skip_special_tokens=skip_special_tokens), stop
            )
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
            **{kv: cache},
            use_cache=True,
        )
        cache = _returned_cache(out)
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
