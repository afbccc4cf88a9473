"""The LM interface: every benchmark task reduces to two request types.

``loglikelihood(requests)``
    For each :class:`LoglikelihoodRequest` ``(context, continuation)``: the summed log-probability
    of the continuation's tokens given the context, whether every continuation token is the greedy
    (argmax) choice, and the number of continuation tokens. Tokenisation follows
    lm-evaluation-harness exactly: trailing spaces of the context move to the continuation; the
    continuation's tokens are ``encode(context + continuation)[len(encode(context)):]``; the
    model reads ``encode(context) + continuation_tokens``; an empty context is replaced by the EOS
    token. When context + continuation exceeds the context window, the context is cut from the
    left (the continuation is never cut: a continuation longer than the window is an error).

``generate(requests)``
    For each :class:`GenerateRequest`: the continuation of ``prompt`` up to ``max_tokens`` new
    tokens, cut before the first of the ``stop`` strings, or at EOS (neither included). With
    ``chat=True`` the prompt is a user message, wrapped in the model's chat template. Greedy
    when ``temperature == 0``; otherwise sampled with ``seed``. A prompt longer than
    ``context window - max_tokens`` tokens is cut from the left (as lm-evaluation-harness does);
    a ``max_tokens`` that leaves no room for the prompt is an error.

Speed (see ``benchmarks/bench_eval_parity.py``): requests are sorted by length and batched;
requests that share a context (the endings of a multiple-choice item) run the context once and
reuse its KV cache for all continuations, which are sorted by length across up to
``CONTEXT_PASSES`` context batches so that their own batches carry little padding (a batch of
continuations takes, on a GPU, up to ``CONT_ROWS`` x ``batch_size`` rows but no more positions
than a batch of contexts; each continuation token's log-probability and greedy flag are reduced
where the model runs, so a GPU is not stalled by per-request copies); tokenisation is batched;
on a float32 CPU model the linear layers run oneDNN's packed kernels
(:mod:`smollab.models.cpu_kernels`); generation is
:func:`smollab.eval.generate.greedy_generate` (batched, shared-prefix cache, finished rows
dropped, the KV cache allocated once per batch). Results are cached in an optional
:class:`RequestCache` keyed by a hash of (model fingerprint, request).
"""

from __future__ import annotations

import copy
import hashlib
import json
import sqlite3
import threading
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from smollab.errors import ConfigError
from smollab.eval.generate import _last_logits_kwargs, greedy_generate
from smollab.models.cpu_kernels import packed_linears
from smollab.tasks.requests import GenerateRequest, Loglikelihood, LoglikelihoodRequest

__all__ = [
    "HFLM",
    "GenerateRequest",
    "Loglikelihood",
    "LoglikelihoodRequest",
    "RequestCache",
    "model_window",
]


class RequestCache:
    """A persistent request -> result map (SQLite), keyed by sha256 of model key + request.

    Safe to share between the threads of one process, and between processes (``smollab eval
    --procs``: SQLite locks the file; a writer waits up to a minute); a crash loses at most the
    last batch.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, timeout=60, check_same_thread=False)
        self._db.execute("CREATE TABLE IF NOT EXISTS results (key TEXT PRIMARY KEY, value TEXT)")
        self._db.commit()

    @staticmethod
    def key(model_key: str, request: Any) -> str:
        payload = json.dumps([model_key, type(request).__name__, asdict(request)], sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()

    def get_many(self, keys: Sequence[str]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        with self._lock:
            for i in range(0, len(keys), 500):
                chunk = list(keys[i : i + 500])
                marks = ",".join("?" * len(chunk))
                rows = self._db.execute(
                    f"SELECT key, value FROM results WHERE key IN ({marks})", chunk
                ).fetchall()
                out.update({k: json.loads(v) for k, v in rows})
        return out

    def put_many(self, items: dict[str, Any]) -> None:
        with self._lock:
            self._db.executemany(
                "INSERT OR REPLACE INTO results VALUES (?, ?)",
                [(k, json.dumps(v)) for k, v in items.items()],
            )
            self._db.commit()

    def close(self) -> None:
        self._db.close()


def cached_requests(
    cache: RequestCache | None,
    model_key: str,
    requests: Sequence[Any],
    compute: Callable[[list[Any], Any], list[Any]],
    result_type: Any,
    progress: Callable[[int], None] | None,
    *,
    compute_stores: bool = False,
) -> list[Any]:
    """``compute`` the requests that ``cache`` does not hold (all of them without a cache), store
    them, and return every result in request order (``result_type``: the dataclass results are
    rebuilt as, or None for plain JSON values). ``compute_stores``: ``compute`` puts each result
    in the cache itself as it arrives (API calls), so they are not written a second time."""
    if cache is None:
        return compute(list(requests), progress)
    keys = [RequestCache.key(model_key, r) for r in requests]
    hits = cache.get_many(keys)
    todo = [i for i, k in enumerate(keys) if k not in hits]
    if progress and len(todo) < len(requests):
        progress(len(requests) - len(todo))
    fresh = compute([requests[i] for i in todo], progress) if todo else []
    new = {keys[i]: (asdict(v) if result_type else v) for i, v in zip(todo, fresh, strict=True)}
    if new and not compute_stores:
        cache.put_many(new)
    hits.update(new)
    return [result_type(**hits[k]) if result_type else hits[k] for k in keys]


def _plain_layers(cache: Any) -> list[Any] | None:
    """The layers of a plain ``DynamicCache`` (whole key/value tensors, rows free to select and
    stack), or None for sliding-window and other cache types."""
    from transformers.cache_utils import DynamicLayer

    layers = getattr(cache, "layers", None)
    if layers and all(type(x) is DynamicLayer for x in layers):
        return list(layers)
    return None


def _select_cache(cache: Any, sel: torch.Tensor) -> Any:
    """A new cache holding rows ``sel`` (repeats allowed) of ``cache``, which stays intact."""
    from transformers.cache_utils import DynamicCache

    layers = _plain_layers(cache)
    if layers:
        return DynamicCache(ddp_cache_data=[(x.keys[sel], x.values[sel]) for x in layers])
    other = copy.deepcopy(cache)  # sliding-window and other cache types
    other.batch_select_indices(sel)
    return other


def model_window(model: Any, tokenizer: Any, default: int = 2048) -> int:
    """The context window in tokens: the model config's position limit, else the tokenizer's
    ``model_max_length`` when it is a real number, else ``default`` (lm-eval's rule)."""
    cfg = model.config
    for attr in ("n_positions", "max_position_embeddings", "n_ctx"):
        v = getattr(cfg, attr, None)
        if isinstance(v, int) and v > 0:
            return v
    v = getattr(tokenizer, "model_max_length", None)
    if isinstance(v, int) and 0 < v < 10**9:
        return v
    return default


#: context passes whose continuations are batched together (see ``HFLM._loglikelihood``)
CONTEXT_PASSES = 8
#: ... unless their KV caches reach this many bytes first
KV_BUDGET = 1 << 30
#: on an accelerator, a continuation forward takes more than ``batch_size`` rows (up to this
#: many times) as long as it holds no more positions than a context forward (``batch_size`` x
#: the context width): continuations are short, so this means fewer forwards (what a GPU's time
#: goes to) with no larger logits than lm-eval's own forward at the same batch size. On the CPU
#: the factor is 1: there the larger batches measured about 5% slower (HellaSwag, SmolLM2)
CONT_ROWS = 4


@dataclass
class _Contexts:
    """One forward pass over a batch of contexts, kept until their continuations are scored."""

    members: list[list[tuple[int, list[int]]]]  # per context row: (request index, tokens)
    cache: Any
    mask: torch.Tensor  # (rows, width), left-padded
    last_pos: torch.Tensor  # (rows,) position id of each context's last token
    first_logp: torch.Tensor  # (rows, vocab) log-probs of the first continuation token
    truncated: list[bool]
    mergeable: bool  # a plain DynamicCache: rows of several passes can share a batch
    kv_bytes: int


class HFLM:
    """The LM interface over any Hugging Face causal LM (see the module docstring).

    ``model_key`` names the weights for the request cache; leave ``cache`` unset to disable it.
    ``onednn``: on a float32 CPU model, run the linear layers through oneDNN's packed kernels
    while requests are computed (:func:`smollab.models.cpu_kernels.packed_linears`; same results
    up to rounding, 1.2-2x faster matrix products).
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        batch_size: int = 32,
        max_length: int | None = None,
        cache: RequestCache | None = None,
        model_key: str = "",
        onednn: bool = True,
    ) -> None:
        self.model = model
        self.onednn = onednn
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.max_length = max_length or model_window(model, tokenizer)
        self.cache = cache
        self.model_key = model_key
        self.device = next(model.parameters()).device
        self.cont_rows = 1 if self.device.type == "cpu" else CONT_ROWS
        eos = tokenizer.eos_token_id
        self.eos_id = eos if eos is not None else 0
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else self.eos_id
        self._last = _last_logits_kwargs(model)

    # ------------------------------------------------------------------ public API

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` as lm-eval 0.4.13's ``tok_encode`` makes them: with the
        tokenizer's own special tokens (a BOS for tokenizers that add one; none for GPT-2 or
        SmolLM2), except when the text already starts with the BOS token."""
        bos = getattr(self.tokenizer, "bos_token", None)
        special = not (bos and text.startswith(bos))
        return list(self.tokenizer(text, add_special_tokens=special).input_ids)

    def loglikelihood(
        self,
        requests: Sequence[LoglikelihoodRequest],
        progress: Callable[[int], None] | None = None,
    ) -> list[Loglikelihood]:
        """One :class:`Loglikelihood` per request, in request order."""
        return self._cached(requests, self._loglikelihood, Loglikelihood, progress)

    def generate(
        self,
        requests: Sequence[GenerateRequest],
        progress: Callable[[int], None] | None = None,
    ) -> list[str]:
        """One completion per request, in request order."""
        return self._cached(requests, self._generate, None, progress)

    # ------------------------------------------------------------------ caching

    def _cached(self, requests, compute, result_type, progress) -> list[Any]:
        def run(todo: list[Any], prog: Any) -> list[Any]:
            if not self.onednn:
                return compute(todo, prog)
            with packed_linears(self.model):
                return compute(todo, prog)

        return cached_requests(self.cache, self.model_key, requests, run, result_type, progress)

    # ------------------------------------------------------------------ loglikelihood

    def encode_many(self, texts: Sequence[str]) -> list[list[int]]:
        """:meth:`encode` of each text, in one batched tokenizer call per special-token mode."""
        bos = getattr(self.tokenizer, "bos_token", None)
        out: list[list[int]] = [[] for _ in texts]
        for special in (True, False):
            idx = [i for i, t in enumerate(texts) if (not (bos and t.startswith(bos))) == special]
            if idx:
                enc = self.tokenizer([texts[i] for i in idx], add_special_tokens=special)
                for i, ids in zip(idx, enc.input_ids, strict=True):
                    out[i] = list(ids)
        return out

    def _encode_pairs(self, pairs: Sequence[tuple[str, str]]) -> list[tuple[list[int], list[int]]]:
        """(context tokens, continuation tokens) of each (context, continuation), as lm-eval's
        ``_encode_pair``; each distinct context is encoded once."""
        moved = []
        for context, continuation in pairs:
            n_spaces = len(context) - len(context.rstrip())
            if n_spaces:
                continuation = context[-n_spaces:] + continuation
                context = context[:-n_spaces]
            moved.append((context, continuation))
        contexts = list(dict.fromkeys(c for c, _ in moved if c))
        ctx_ids = dict(zip(contexts, self.encode_many(contexts), strict=True))
        wholes = self.encode_many([c + x if c else x for c, x in moved])
        out = []
        for (context, _), whole in zip(moved, wholes, strict=True):
            if not context:
                out.append(([self.eos_id], whole))
            else:
                ctx = ctx_ids[context]
                out.append((ctx, whole[len(ctx) :]))
        return out

    def _encode_pair(self, context: str, continuation: str) -> tuple[list[int], list[int]]:
        return self._encode_pairs([(context, continuation)])[0]

    def _loglikelihood(self, requests, progress) -> list[Loglikelihood]:
        # group requests by context: each context runs once, its cache serves every ending
        groups: dict[tuple[int, ...], list[tuple[int, list[int]]]] = {}
        window = self.max_length
        pairs = self._encode_pairs([(r.context, r.continuation) for r in requests])
        for i, (r, (ctx, cont)) in enumerate(zip(requests, pairs, strict=True)):
            if not cont:
                raise ConfigError(
                    f"Request {i}: the continuation {r.continuation!r} encodes to no tokens; "
                    "a loglikelihood needs at least one continuation token."
                )
            if len(cont) > window:
                raise ConfigError(
                    f"A continuation of {len(cont)} tokens does not fit the model's context "
                    f"window of {window} tokens; use a model with a longer window."
                )
            groups.setdefault(tuple(ctx), []).append((i, cont))
        out: list[Loglikelihood | None] = [None] * len(requests)
        # contexts longest first (a batch that does not fit in memory fails at once, not at
        # the end), batch_size contexts per pass; the continuations of up to CONTEXT_PASSES
        # passes (within KV_BUDGET bytes of cache) are then sorted by length together, so
        # their batches carry little padding
        order = sorted(groups, key=lambda c: -len(c))
        pending: list[_Contexts] = []
        for start in range(0, len(order), self.batch_size):
            batch = [(ctx, groups[ctx]) for ctx in order[start : start + self.batch_size]]
            part = self._run_contexts(batch)
            if pending and not part.mergeable:  # such a cache is scored on its own
                self._score_continuations(pending, out, progress)
                pending = []
            pending.append(part)
            full = (
                len(pending) >= CONTEXT_PASSES
                or sum(p.kv_bytes for p in pending) >= KV_BUDGET
                or not part.mergeable
            )
            if full or start + self.batch_size >= len(order):
                self._score_continuations(pending, out, progress)
                pending = []
        return [o for o in out if o is not None]

    @torch.inference_mode()
    def _run_contexts(self, batch) -> _Contexts:
        """One forward pass over several contexts (left-padded, one row each): their KV cache
        and the log-probabilities of the first continuation token."""
        window = self.max_length
        ctxs: list[list[int]] = []
        truncated: list[bool] = []
        for ctx, members in batch:
            longest = max(len(c) for _, c in members)
            # lm-eval keeps the last window+1 tokens of context+continuation and feeds all but
            # the last: at most window+1-longest context tokens (and at least one)
            keep = max(1, window + 1 - longest)
            ctxs.append(list(ctx[-keep:]))
            truncated.append(len(ctx) > keep)
        n = len(ctxs)
        width = max(len(c) for c in ctxs)
        ids = torch.full((n, width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((n, width), dtype=torch.long)
        for r, c in enumerate(ctxs):
            ids[r, width - len(c) :] = torch.tensor(c)
            mask[r, width - len(c) :] = 1
        ids, mask = ids.to(self.device), mask.to(self.device)
        pos = (mask.cumsum(-1) - 1).clamp(min=0)
        # only the last context position's logits are needed (the LM head is ~20% of the FLOPs
        # of a 135M model, and its output the biggest tensor)
        res = self.model(
            input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=True, **self._last
        )
        cache = res.past_key_values
        layers = _plain_layers(cache)
        mergeable = layers is not None
        kv_bytes = sum(x.keys.nbytes + x.values.nbytes for x in layers or [])
        return _Contexts(
            members=[m for _, m in batch],
            cache=cache,
            mask=mask,
            last_pos=pos[:, -1],
            first_logp=torch.log_softmax(res.logits[:, -1, :].float(), dim=-1),
            truncated=truncated,
            mergeable=mergeable,
            kv_bytes=kv_bytes,
        )

    @staticmethod
    def _merge(parts: list[_Contexts]) -> _Contexts:
        """Several context passes as one: each pass's cache and mask left-padded to the widest
        and stacked (an unmergeable cache always comes alone and is returned as it is). The
        passes' own caches are released layer by layer, so the copy costs little extra memory."""
        if len(parts) == 1:
            return parts[0]
        from transformers.cache_utils import DynamicCache

        width = max(p.mask.shape[1] for p in parts)

        def padded(t: torch.Tensor, dim: int) -> torch.Tensor:
            extra = width - t.shape[dim]
            if not extra:
                return t
            pad = [0, 0] * (t.dim() - 1 - dim) + [extra, 0]
            return torch.nn.functional.pad(t, pad)

        data = []
        for li in range(len(parts[0].cache.layers)):
            layers = [p.cache.layers[li] for p in parts]
            data.append(
                (
                    torch.cat([padded(x.keys, 2) for x in layers]),
                    torch.cat([padded(x.values, 2) for x in layers]),
                )
            )
            for x in layers:
                x.keys = x.values = None
        return _Contexts(
            members=[m for p in parts for m in p.members],
            cache=DynamicCache(ddp_cache_data=data),
            mask=torch.cat([padded(p.mask, 1) for p in parts]),
            last_pos=torch.cat([p.last_pos for p in parts]),
            first_logp=torch.cat([p.first_logp for p in parts]),
            truncated=[t for p in parts for t in p.truncated],
            mergeable=True,
            kv_bytes=sum(p.kv_bytes for p in parts),
        )

    @torch.inference_mode()
    def _score_continuations(self, parts: list[_Contexts], out, progress) -> None:
        """Score the continuations of the contexts in ``parts`` (merged into one): sorted by
        length into batches (see ``CONT_ROWS``; little padding), each row on a copy of its
        context's KV cache. Per-token log-probabilities and greedy flags are reduced on the
        device, so only a few numbers per row leave it."""
        ctxs = self._merge(parts)
        rows = [(g, i, cont) for g, members in enumerate(ctxs.members) for i, cont in members]
        dev = ctxs.first_logp.device
        # the first continuation token: from the context pass, for every row at once
        g_t = torch.tensor([g for g, _, _ in rows], device=dev)
        t0 = torch.tensor([c[0] for _, _, c in rows], device=dev)
        first_lp = ctxs.first_logp[g_t, t0]
        first_greedy = ctxs.first_logp.argmax(-1)[g_t] == t0
        total = dict(zip((i for _, i, _ in rows), first_lp.tolist(), strict=True))
        greedy = dict(zip((i for _, i, _ in rows), first_greedy.tolist(), strict=True))
        # the other tokens: one forward per batch of rows over copies of their contexts' caches
        multi = sorted((r for r in rows if len(r[2]) > 1), key=lambda r: -len(r[2]))
        positions = self.batch_size * ctxs.mask.shape[1]
        start = 0
        while start < len(multi):
            cwidth = len(multi[start][2]) - 1  # the longest row of the batch
            # batch_size rows, or more (up to cont_rows x) while they fit a context pass's size
            m = min(self.cont_rows * self.batch_size, max(self.batch_size, positions // cwidth))
            part_rows = multi[start : start + m]
            start += m
            m = len(part_rows)
            sel = torch.tensor([g for g, _, _ in part_rows], device=self.device)
            cache, ctx_mask = _select_cache(ctxs.cache, sel), ctxs.mask[sel]
            # each row's continuation, right-padded: the model reads tokens 1..n-1 of it and
            # scores tokens 2..n (the padding sits after a row's last input, masked)
            conts = torch.tensor(
                [c + [self.pad_id] * (cwidth + 1 - len(c)) for _, _, c in part_rows],
                device=self.device,
            )
            cids, target = conts[:, :-1], conts[:, 1:]
            lens = torch.tensor([len(c) - 1 for _, _, c in part_rows], device=self.device)
            cmask = (torch.arange(cwidth, device=self.device) < lens[:, None]).long()
            cpos = ctxs.last_pos[sel][:, None] + 1 + torch.arange(cwidth, device=self.device)
            logits = self.model(
                input_ids=cids,
                attention_mask=torch.cat([ctx_mask, cmask], dim=1),
                position_ids=cpos,
                past_key_values=cache,
                use_cache=True,
            ).logits.float()
            # lm-eval's arithmetic: log_softmax, then the target's entry and the argmax
            # (target logit minus torch.logsumexp measured 5x further from it on the CPU)
            logp = torch.log_softmax(logits, -1)
            del logits
            lp = logp.gather(-1, target[..., None])[..., 0]
            ok = logp.argmax(-1) == target
            valid = cmask.bool()
            sums = lp.masked_fill(~valid, 0.0).sum(1).tolist()
            alls = (ok | ~valid).all(1).tolist()
            del logp, lp, ok, cache
            for (_, i, _), lp_sum, all_ok in zip(part_rows, sums, alls, strict=True):
                total[i] += lp_sum
                greedy[i] = greedy[i] and all_ok
        for g, i, cont in rows:
            out[i] = Loglikelihood(total[i], bool(greedy[i]), len(cont), ctxs.truncated[g])
        if progress:
            progress(len(rows))

    # ------------------------------------------------------------------ generation

    def _generate(self, requests, progress) -> list[str]:
        out: list[str] = [""] * len(requests)
        # greedy_generate takes one stop list / budget / sampler per call: group by them
        groups: dict[tuple[Any, ...], list[int]] = {}
        for i, r in enumerate(requests):
            key = (r.stop, r.max_tokens, r.temperature, r.top_p, r.seed)
            groups.setdefault(key, []).append(i)
        for (stop, max_tokens, temperature, top_p, seed), idx in groups.items():
            room = self.max_length - max_tokens
            if room < 1:
                raise ConfigError(
                    f"max_tokens={max_tokens} leaves no room for the prompt in the model's "
                    f"context window of {self.max_length} tokens; lower the generation budget "
                    "or use a model with a longer window."
                )
            # lm-eval's rule: keep the last (window - max_tokens) prompt tokens
            ids = [self.encode(self.render(requests[i]))[-room:] for i in idx]
            texts = greedy_generate(
                self.model,
                self.tokenizer,
                [requests[i].prompt for i in idx],
                prompt_ids=ids,
                max_new_tokens=max_tokens,
                stop=stop,
                batch_size=self.batch_size,
                temperature=temperature,
                top_p=top_p,
                seed=seed,
                progress=progress,
                skip_special_tokens=True,  # as lm-eval decodes
            )
            for i, t in zip(idx, texts, strict=True):
                out[i] = t
        return out

    def render(self, request: GenerateRequest) -> str:
        """The exact text the model continues: the prompt, or its chat-template rendering."""
        if not request.chat:
            return request.prompt
        if not getattr(self.tokenizer, "chat_template", None):
            raise ConfigError(
                "A chat task needs a model with a chat template, and this tokenizer has none; "
                "use the few-shot variant of the task (e.g. gsm8k instead of gsm8k_chat) or an "
                "instruct model."
            )
        return self.tokenizer.apply_chat_template(
            [{"role": "user", "content": request.prompt}],
            tokenize=False,
            add_generation_prompt=True,
        )

    def truncated(self, request: GenerateRequest) -> bool:
        """Whether the prompt is cut from the left to fit the context window."""
        return len(self.encode(self.render(request))) > self.max_length - request.max_tokens
