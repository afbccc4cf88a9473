"""The LM interface: every benchmark task reduces to two request types.

``loglikelihood(requests)``
    For each :class:`LoglikelihoodRequest` ``(context, continuation)``: the summed log-probability
    of the continuation's tokens given the context, whether every continuation token is the greedy
    (argmax) choice, and the number of continuation tokens. Tokenisation follows
    lm-evaluation-harness exactly: trailing spaces of the context move to the continuation; the
    continuation's tokens are ``encode(context + continuation)[len(encode(context)):]``; the
    model reads ``encode(context) + continuation_tokens``; an empty context is replaced by the EOS
    token. When context + continuation exceeds the context window, the context is cut from the
    left, request by request, as lm-eval's ``(context + continuation)[-(window + 1):][:-1]``
    (the endings of one context may keep different amounts of it) and the result says
    ``truncated``; the continuation is never cut: one longer than the window raises
    :class:`ContinuationTooLong` (:meth:`HFLM.too_long` finds them without computing).

``loglikelihood_rolling(requests)``
    For each :class:`RollingLoglikelihoodRequest` ``(text)``: the summed log-probability of
    every token of ``encode(text)``, as lm-evaluation-harness's ``loglikelihood_rolling``
    computes it (:func:`rolling_windows`): disjoint windows of up to ``max_length`` predicted
    tokens; the first window's first token is conditioned on the prefix token (the tokenizer's
    BOS, else its EOS: lm-eval's ``prefix_token_id``), each later window on the tokens before
    it, up to a full window of input. ``n_tokens`` is the number of tokens scored (each once).

``generate(requests)``
    For each :class:`GenerateRequest`: the continuation of ``prompt`` up to ``max_tokens`` new
    tokens, cut before the first of the ``stop`` strings, or at EOS (neither included). With
    ``chat=True`` the prompt is a user message, wrapped in the model's chat template. Greedy
    when ``temperature == 0``; otherwise sampled with ``seed``. A prompt longer than
    ``context window - max_tokens`` tokens is cut from the left (as lm-evaluation-harness does);
    a ``max_tokens`` that leaves no room for the prompt is an error.

Speed (see ``benchmarks/bench_eval_parity.py``): requests that share a context (the endings of
a multiple-choice item) are scored in one row, a prefix tree: the context is fed once, each
ending branches off its last token, and tokens that several endings start with are fed once;
a 4D attention mask lets each token see only its own ancestors, and position ids restart at
each branch, so every ending is computed exactly as if it followed the context alone. The
context's keys and values thus serve all its endings within the one forward, with no cache
to copy. Only the positions that predict a continuation token go through the LM head, and
each token's log-probability and greedy flag are picked where the model runs. Rows are
sorted by length and a forward takes rows until it holds ``batch_size`` continuations
(``CONT_ROWS`` x on a GPU). Models that cannot take such a mask (attention other than SDPA or
eager, a sliding window shorter than the rows, custom code; a small probe decides) get one
plain row per request, as lm-evaluation-harness feeds them. Tokenisation is batched; on a
float32 CPU model the linear layers run oneDNN's packed kernels
(:mod:`smollab.models.cpu_kernels`); generation is
:func:`smollab.eval.generate.greedy_generate` (batched, shared-prefix cache, finished rows
dropped, the KV cache allocated once per batch). Results are cached in an optional
:class:`RequestCache` keyed by a hash of (model fingerprint, request).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch

from smollab.errors import ConfigError
from smollab.eval.generate import _last_logits_kwargs, greedy_generate
from smollab.models.cpu_kernels import packed_linears
from smollab.models.loader import WINDOW_ATTRS
from smollab.tasks.requests import (
    GenerateRequest,
    Loglikelihood,
    LoglikelihoodRequest,
    RollingLoglikelihoodRequest,
)

__all__ = [
    "HFLM",
    "ContinuationTooLong",
    "GenerateRequest",
    "Loglikelihood",
    "LoglikelihoodRequest",
    "RequestCache",
    "RollingLoglikelihoodRequest",
    "model_window",
    "rolling_windows",
]


class ContinuationTooLong(ConfigError):
    """A loglikelihood request whose continuation alone is longer than the context window.
    lm-evaluation-harness cuts only the context (and asserts the continuation fits), so such a
    request has no score there either. ``index``: the request's position in the call;
    ``n_tokens``: its continuation's tokens; ``window``: the context window."""

    def __init__(self, index: int, n_tokens: int, window: int, continuation: str) -> None:
        self.index, self.n_tokens, self.window = index, n_tokens, window
        head = continuation if len(continuation) <= 60 else continuation[:57] + "..."
        super().__init__(
            f"Request {index}: its continuation {head!r} is {n_tokens} tokens, longer than the "
            f"model's context window of {window} tokens. The context is cut from the left to "
            "make room (as lm-evaluation-harness does), but the continuation is scored whole, "
            "so it cannot fit: use a model with a longer window, or leave this request out."
        )


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


def _slices_by_mask() -> bool:
    """Whether this transformers version takes ``logits_to_keep`` as a boolean (rows, positions)
    mask of the positions whose logits are computed."""
    import transformers.modeling_utils as mu

    return hasattr(mu, "slice_logits_to_keep")


def model_window(model: Any, tokenizer: Any, default: int = 2048) -> int:
    """The context window in tokens: the model config's position limit, else the tokenizer's
    ``model_max_length`` when it is a real number, else ``default`` (lm-eval's rule)."""
    cfg = model.config
    for attr in WINDOW_ATTRS:
        v = getattr(cfg, attr, None)
        if isinstance(v, int) and v > 0:
            return v
    v = getattr(tokenizer, "model_max_length", None)
    if isinstance(v, int) and 0 < v < 10**9:
        return v
    return default


#: on an accelerator a loglikelihood forward holds up to this many times ``batch_size``
#: continuations (fewer, larger forwards are what a GPU's time goes to; the logits stay no larger
#: than lm-eval's forward over ``batch_size`` whole sequences). On the CPU the factor is 1
CONT_ROWS = 4
#: a rolling loglikelihood forward scores at most this many positions (more when one window
#: is longer): each needs a vocabulary-wide row of logits
ROLLING_TOKENS = 4096
#: a prefix tree row holds its context and continuations up to this many tokens (more
#: continuations go to further rows, each with its own copy of the context)
ROW_TOKENS = 1024


@dataclass
class _Row:
    """One row of a loglikelihood forward: a context and one or more continuations.

    ``tokens[j]`` sits at position ``pos[j]`` and attends to itself and its ancestors (``parent``
    links; the context is a chain). In a prefix tree the continuations of one context branch off
    its last token and share their common prefixes; in a chain row (one request, or a model
    that cannot take a tree mask) ``parent[j] == j - 1``. ``need``: (node, request index,
    token) for every continuation token, predicted by the logits at that node."""

    tokens: list[int]
    pos: list[int]
    parent: list[int]
    need: list[tuple[int, int, int]]
    n_requests: int
    truncated: bool


def _prefix_rows(
    ctx: list[int], members: list[tuple[int, list[int]]], truncated: bool, tree: bool
) -> list[_Row]:
    """The rows scoring ``members`` (request index, continuation tokens) after ``ctx``: prefix
    trees of at most ``ROW_TOKENS`` tokens (at least one continuation each), or one chain row
    per continuation when ``tree`` is false."""
    rows: list[_Row] = []
    row: _Row | None = None
    children: dict[tuple[int, int], int] = {}
    for i, cont in members:
        grow = len(cont) - 1
        if row is None or not tree or len(row.tokens) + grow > ROW_TOKENS:
            row = _Row(
                list(ctx), list(range(len(ctx))), list(range(-1, len(ctx) - 1)), [], 0, truncated
            )
            rows.append(row)
            children = {}
        row.n_requests += 1
        node = len(ctx) - 1
        for k, t in enumerate(cont):
            row.need.append((node, i, t))
            if k == len(cont) - 1:
                break
            nxt = children.get((node, t))
            if nxt is None:
                nxt = children[(node, t)] = len(row.tokens)
                row.tokens.append(t)
                row.pos.append(row.pos[node] + 1)
                row.parent.append(node)
            node = nxt
    return rows


def _target_logprobs(
    logits: torch.Tensor, at: torch.Tensor, target: torch.Tensor, block_bytes: int = 8 << 20
) -> tuple[list[float], list[bool]]:
    """``log_softmax(logits)[at, target]`` and whether ``target`` is each row's argmax, as
    lm-eval computes them (log_softmax, then the entry and the argmax; target logit minus
    ``torch.logsumexp`` measured 5x further from it on the CPU). On the CPU in blocks of
    ``block_bytes`` of log-probabilities, which stay in cache for the gather and the argmax (row
    for row the same numbers, a third less time than one pass over every row)."""
    n, vocab = logits.shape
    step = n if logits.device.type != "cpu" else max(1, block_bytes // (4 * vocab))
    lp = torch.empty(at.shape, dtype=torch.float32, device=at.device)
    ok = torch.empty(at.shape, dtype=torch.bool, device=at.device)
    for s in range(0, n, step):
        logp = torch.log_softmax(logits[s : s + step].float(), -1)
        sel = ((at >= s) & (at < s + step)).nonzero()[:, 0]
        rows, tgt = at[sel] - s, target[sel]
        lp[sel] = logp[rows, tgt]
        ok[sel] = logp.argmax(-1)[rows] == tgt
    return lp.tolist(), ok.tolist()


def _tree_mask(rows: list[_Row], width: int) -> torch.Tensor:
    """(rows, 1, width, width) boolean attention mask: each node sees itself and its ancestors;
    a padding position sees only itself (so no softmax row is empty)."""
    out = np.zeros((len(rows), 1, width, width), dtype=bool)
    pad = np.arange(width)
    out[:, 0, pad, pad] = True
    for r, row in enumerate(rows):
        anc = out[r, 0]
        # a chain as long as each node follows its parent (the context, the first continuation),
        # then each node sees what its parent sees, and itself
        chain = next((j for j, p in enumerate(row.parent) if p != j - 1), len(row.parent))
        anc[:chain, :chain] = np.tril(np.ones((chain, chain), dtype=bool))
        for j in range(chain, len(row.parent)):
            anc[j] = anc[row.parent[j]]
            anc[j, j] = True
    return torch.from_numpy(out)


def rolling_windows(
    tokens: Sequence[int], prefix_token: int, max_length: int
) -> list[tuple[list[int], list[int]]]:
    """(context, continuation) token pairs that score every token of ``tokens`` exactly once,
    in order: lm-eval's ``get_rolling_token_windows(..., context_len=1)`` followed by
    ``make_disjoint_window``. The first continuation is the first ``max_length`` tokens after
    ``[prefix_token]``; each later one the next ``max_length`` tokens (fewer at the end), its
    context the tokens before it such that context + continuation fill ``max_length + 1``
    tokens (the model reads all but the last)."""
    if max_length < 1:
        raise ValueError(f"max_length must be >= 1, got {max_length}")
    toks = list(tokens)
    if not toks:
        return []
    first = min(max_length, len(toks))
    out = [([prefix_token], toks[:first])]
    done = first
    while done < len(toks):
        n = min(len(toks) - done, max_length)
        end = done + n
        out.append((toks[end - max_length - 1 : end - n], toks[done:end]))
        done = end
    return out


def weights_fingerprint(model: Any) -> str:
    """A SHA-256 over every parameter's name, dtype, shape and bytes: any change to the weights
    (an ablation, an adapter, one more training step) gives another fingerprint. About 0.4 s
    for SmolLM2-135M on a CPU. Changes made by hooks rather than weights are not seen."""
    h = hashlib.sha256()
    with torch.no_grad():
        for name, p in model.named_parameters():
            t = p.detach().reshape(-1).contiguous()
            h.update(f"{name}|{t.dtype}|{tuple(p.shape)}".encode())
            h.update(memoryview(t.view(torch.uint8).cpu().numpy()))
    return h.hexdigest()


def tokenizer_fingerprint(tokenizer: Any) -> str:
    """A SHA-256 of what a tokenizer does to text: a fast tokenizer's whole definition
    (``backend_tokenizer.to_str()``: vocabulary, merges, normalizer, pre-tokenizer, added
    tokens), else its class and vocabulary; plus its special tokens, chat template and
    ``model_max_length``. Two tokenizers with one fingerprint encode every request alike."""
    h = hashlib.sha256(type(tokenizer).__name__.encode())
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        h.update(backend.to_str().encode())
    else:
        h.update(json.dumps(sorted(tokenizer.get_vocab().items())).encode())
    extra = {
        "special": {k: str(v) for k, v in (tokenizer.special_tokens_map or {}).items()},
        "chat_template": getattr(tokenizer, "chat_template", None),
        "model_max_length": str(getattr(tokenizer, "model_max_length", None)),
    }
    h.update(json.dumps(extra, sort_keys=True).encode())
    return h.hexdigest()


class HFLM:
    """The LM interface over any Hugging Face causal LM (see the module docstring).

    ``model_key`` names the weights for the request cache and the samples files; left out, it
    is :func:`weights_fingerprint` of the model, taken at first use (make a new HFLM after
    changing the weights). Leave ``cache`` unset to disable the cache.
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
        model_key: str | None = None,
        onednn: bool = True,
    ) -> None:
        self.model = model
        self.onednn = onednn
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.max_length = max_length or model_window(model, tokenizer)
        self.cache = cache
        self._model_key = model_key
        self.device = next(model.parameters()).device
        self.cont_rows = 1 if self.device.type == "cpu" else CONT_ROWS
        eos = tokenizer.eos_token_id
        self.eos_id = eos if eos is not None else 0
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else self.eos_id
        self._tree: bool | None = None  # prefix trees work for this model (see _tree_ok)
        self._keep_ok = bool(_last_logits_kwargs(model)) and _slices_by_mask()

    @property
    def model_key(self) -> str:
        """The key of these weights in the request cache (see the class docstring)."""
        if self._model_key is None:
            h = hashlib.sha256(weights_fingerprint(self.model).encode())
            h.update(tokenizer_fingerprint(self.tokenizer).encode())
            self._model_key = h.hexdigest()[:24]
        return self._model_key

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

    def loglikelihood_rolling(
        self,
        requests: Sequence[RollingLoglikelihoodRequest],
        progress: Callable[[int], None] | None = None,
    ) -> list[Loglikelihood]:
        """One :class:`Loglikelihood` per request (the whole text's), in request order."""
        return self._cached(requests, self._loglikelihood_rolling, Loglikelihood, progress)

    @property
    def prefix_token_id(self) -> int:
        """The token the first token of a rolling loglikelihood is conditioned on: BOS, else
        EOS (lm-eval's ``prefix_token_id`` for HF models)."""
        bos = getattr(self.tokenizer, "bos_token_id", None)
        return bos if bos is not None else self.eos_id

    def _loglikelihood_rolling(self, requests, progress) -> list[Loglikelihood]:
        # every window of every text as a chain row (context + continuation, continuation
        # positions scored), the longest rows first, batch_size rows per forward
        rows: list[_Row] = []
        owner: list[int] = []
        for i, text in enumerate(self.encode_many([r.text for r in requests])):
            for ctx, cont in rolling_windows(text, self.prefix_token_id, self.max_length):
                rows += _prefix_rows(ctx, [(len(owner), cont)], False, False)
                owner.append(i)
        order = sorted(range(len(rows)), key=lambda k: -len(rows[k].tokens))
        got: list[Any] = [None] * len(rows)
        # every position of a row is scored: a forward takes up to batch_size rows and
        # ROLLING_TOKENS scored positions (their logits are rows x vocabulary floats)
        most = self.cont_rows * self.batch_size
        start = 0
        while start < len(order):
            stop, held = start + 1, len(rows[order[start]].need)
            while (
                stop < len(order)
                and stop - start < most
                and held + len(rows[order[stop]].need) <= ROLLING_TOKENS
            ):
                held += len(rows[order[stop]].need)
                stop += 1
            self._score_rows([rows[k] for k in order[start:stop]], False, got)
            start = stop
        total = [0.0] * len(requests)
        greedy = [True] * len(requests)
        count = [0] * len(requests)
        for w, ll in enumerate(got):
            total[owner[w]] += ll.logprob
            greedy[owner[w]] = greedy[owner[w]] and ll.is_greedy
            count[owner[w]] += ll.n_tokens
        if progress:
            progress(len(requests))
        return [Loglikelihood(t, g, n) for t, g, n in zip(total, greedy, count, strict=True)]

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

    def too_long(
        self, requests: Sequence[LoglikelihoodRequest] | Sequence[tuple[list[int], list[int]]]
    ) -> list[tuple[int, int]]:
        """(index, continuation tokens) of each request whose continuation alone is longer
        than the context window (:meth:`loglikelihood` refuses them with
        :class:`ContinuationTooLong`). Takes requests, or their encoded (context,
        continuation) token pairs. Tokenises only, computes nothing."""
        if requests and isinstance(requests[0], LoglikelihoodRequest):
            reqs = cast(Sequence[LoglikelihoodRequest], requests)
            pairs = self._encode_pairs([(r.context, r.continuation) for r in reqs])
        else:
            pairs = cast(list[tuple[list[int], list[int]]], list(requests))
        return [(i, len(x)) for i, (_, x) in enumerate(pairs) if len(x) > self.max_length]

    def _loglikelihood(self, requests, progress) -> list[Loglikelihood]:
        if not requests:
            return []
        window = self.max_length
        pairs = self._encode_pairs([(r.context, r.continuation) for r in requests])
        for i, (r, (_, cont)) in enumerate(zip(requests, pairs, strict=True)):
            if not cont:
                raise ConfigError(
                    f"Request {i}: the continuation {r.continuation!r} encodes to no tokens; "
                    "a loglikelihood needs at least one continuation token."
                )
        too_long = self.too_long(pairs)
        if too_long:
            i, n = too_long[0]
            raise ContinuationTooLong(i, n, window, requests[i].continuation)
        # lm-eval feeds (context + continuation)[-(window + 1):][:-1]: each request keeps the
        # last window + 1 - len(continuation) context tokens (all of them when they fit), so
        # the endings of one context may keep different amounts of it. Requests are grouped
        # by the context they keep: each kept context is fed once, with all its continuations
        groups: dict[tuple[tuple[int, ...], bool], list[tuple[int, list[int]]]] = {}
        for i, (ctx, cont) in enumerate(pairs):
            keep = min(len(ctx), window + 1 - len(cont))
            groups.setdefault((tuple(ctx[len(ctx) - keep :]), keep < len(ctx)), []).append(
                (i, cont)
            )
        # a tree's mask replaces a sliding window's: only where no row reaches past it
        span = max(len(c) + max(len(x) for _, x in m) - 1 for (c, _), m in groups.items())
        slide = getattr(self.model.config, "sliding_window", None)
        (ctx0, _), members0 = next(iter(groups.items()))
        tree = self._tree_ok((ctx0, members0)) and not (slide and span > slide)
        rows: list[_Row] = []
        for (context, truncated), members in groups.items():
            rows += _prefix_rows(list(context), members, truncated, tree)
        # longest rows first (a batch that does not fit in memory fails at once, not at the
        # end); a forward takes rows until it holds batch_size continuations (CONT_ROWS x on
        # an accelerator)
        rows.sort(key=lambda r: -len(r.tokens))
        out: list[Loglikelihood | None] = [None] * len(requests)
        per_forward = self.cont_rows * self.batch_size
        start = 0
        while start < len(rows):
            stop, held = start + 1, rows[start].n_requests
            while stop < len(rows) and held + rows[stop].n_requests <= per_forward:
                held += rows[stop].n_requests
                stop += 1
            self._score_rows(rows[start:stop], tree, out)
            if progress:
                progress(held)
            start = stop
        return [o for o in out if o is not None]

    @torch.inference_mode()
    def _score_rows(self, rows: list[_Row], tree: bool, out: list[Any]) -> None:
        """One forward over ``rows`` (right-padded): the summed log-probability and greedy flag
        of each of their continuations, written to ``out``. Only the positions that predict a
        continuation token go through the LM head; per-token log-probabilities and greedy flags
        are picked where the model runs, so only a few numbers per row leave it."""
        dev = self.device
        width = max(len(r.tokens) for r in rows)
        ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        pos = torch.zeros((len(rows), width), dtype=torch.long)
        keep = torch.zeros((len(rows), width), dtype=torch.bool)
        for r, row in enumerate(rows):
            ids[r, : len(row.tokens)] = torch.tensor(row.tokens)
            pos[r, : len(row.tokens)] = torch.tensor(row.pos)
            keep[r, [node for node, _, _ in row.need]] = True
        kwargs: dict[str, Any] = {"input_ids": ids.to(dev), "use_cache": False}
        if tree:
            kwargs["position_ids"] = pos.to(dev)
            kwargs["attention_mask"] = self._mask(_tree_mask(rows, width)).to(dev)
        else:  # right padding: a causal model's real tokens never see it
            kwargs["attention_mask"] = (
                (torch.arange(width) < torch.tensor([len(r.tokens) for r in rows])[:, None])
                .long()
                .to(dev)
            )
        kept = keep.to(dev)
        logits = self.model(**kwargs, **({"logits_to_keep": kept} if self._keep_ok else {})).logits
        if logits.dim() == 3:  # a model that computed every position's logits
            logits = logits[kept]
        # logits holds the kept positions in row-major order: a position's index there is the
        # number of kept positions before it
        rank = keep.flatten().cumsum(0) - 1
        at = rank[[r * width + node for r, row in enumerate(rows) for node, _, _ in row.need]]
        target = torch.tensor([t for row in rows for _, _, t in row.need], device=dev)
        lp, ok = _target_logprobs(logits, at.to(dev), target)
        del logits
        # a request's tokens all sit in one row, in order
        k = 0
        for row in rows:
            sums: dict[int, list[Any]] = {}
            for _, i, _ in row.need:
                acc = sums.setdefault(i, [0.0, True, 0])
                acc[0] += lp[k]
                acc[1] = acc[1] and ok[k]
                acc[2] += 1
                k += 1
            for i, (total, greedy, n) in sums.items():
                out[i] = Loglikelihood(total, bool(greedy), n, row.truncated)

    def _mask(self, allowed: torch.Tensor) -> torch.Tensor:
        """A boolean (rows, 1, q, k) mask as the model's attention takes it: as it is for SDPA,
        additive (0 or the dtype's minimum) for eager attention."""
        if getattr(self.model.config, "_attn_implementation", "sdpa") == "sdpa":
            return allowed
        dtype = next(self.model.parameters()).dtype
        return torch.zeros(allowed.shape, dtype=dtype).masked_fill(~allowed, torch.finfo(dtype).min)

    def _tree_ok(self, sample: tuple[tuple[int, ...], list[tuple[int, list[int]]]]) -> bool:
        """Whether this model scores prefix trees (one row per context, its continuations
        sharing their prefixes under a custom 4D attention mask and position ids): a plain
        causal LM with SDPA or eager attention that gives the same log-probabilities as chain
        rows on a small probe built from ``sample`` (a context and its continuations). Decided
        once per model; otherwise every request gets a chain row. (A sliding-window model takes
        trees only for rows shorter than its window: see ``_loglikelihood``.)"""
        if self._tree is not None:
            return self._tree
        cfg = self.model.config
        self._tree = False
        if getattr(cfg, "_attn_implementation", None) not in ("sdpa", "eager"):
            return False
        # continuations that share a first token and then branch: a tree row differs from
        # chain rows if the model ignores the mask or the position ids
        ctx = list(sample[0][-8:])
        a = ctx[-1]
        b = (a + 1) % self.model.get_input_embeddings().num_embeddings
        conts = [(0, [a, a, b]), (1, [a, b, a]), (2, [b, a, a])]
        got: list[list[Any]] = [[None] * 3, [None] * 3]
        try:
            for slot, tree in enumerate((True, False)):
                rows = _prefix_rows(ctx, conts, False, tree)
                self._score_rows(rows, tree, got[slot])
        except Exception:  # noqa: BLE001 - any failure means: use chain rows
            return False
        fp32 = next(self.model.parameters()).dtype == torch.float32
        tol = 1e-3 if fp32 else 0.1
        self._tree = all(
            abs(x.logprob - y.logprob) <= tol * (1 + abs(y.logprob))
            for x, y in zip(got[0], got[1], strict=True)
        )
        return self._tree

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
                    f"below {self.max_length} (e.g. smollab eval --max-tokens "
                    f"{max(1, self.max_length // 4)}; max_tokens in a study's [[tasks]] table) "
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
