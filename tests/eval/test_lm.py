"""The LM interface: loglikelihood and generate against one-at-a-time references."""

from __future__ import annotations

import pytest
import torch

from smollab.errors import ConfigError
from smollab.eval.generate import sequential_generate
from smollab.eval.lm import (
    HFLM,
    GenerateRequest,
    LoglikelihoodRequest,
    RequestCache,
)
from tests.conftest import SHARED, needs_data

GPT2_TOK = SHARED / "gpt2-tokenizer"
needs_tok = needs_data


@pytest.fixture(scope="module")
def gpt2_bpe():
    """A tiny random GPT-2 with the real GPT-2 BPE tokenizer (window 64)."""
    from smollab.models import load_model

    return load_model(
        "scratch:gpt2",
        tokenizer=str(GPT2_TOK),
        config={"n_layer": 2, "n_head": 2, "n_embd": 32, "block_size": 64},
        seed=3,
    )


def reference_ll(lm: HFLM, context: str, continuation: str) -> tuple[float, bool, int]:
    """lm-eval's computation, one request at a time: one full forward, no cache, no padding."""
    ctx, cont = lm._encode_pair(context, continuation)
    inp = (ctx + cont)[-(lm.max_length + 1) :][:-1]
    with torch.no_grad():
        logits = lm.model(torch.tensor([inp])).logits[0].float()
    logp = torch.log_softmax(logits[-len(cont) :], -1)
    tgt = torch.tensor(cont)
    return (
        logp.gather(1, tgt[:, None]).sum().item(),
        bool((logp.argmax(-1) == tgt).all()),
        len(cont),
    )


ROOF = "Roof shingle removal: A man is sitting on a roof. he"
REQS = [
    LoglikelihoodRequest(ROOF, " is using wrap."),
    LoglikelihoodRequest(ROOF, " starts pulling."),
    LoglikelihoodRequest(ROOF, " x"),
    LoglikelihoodRequest("Question: What is 2 plus 2?\nAnswer:", " 4"),
    LoglikelihoodRequest("Trailing space ", "moves to the continuation"),
    LoglikelihoodRequest("", "empty context uses EOS"),
]


@needs_tok
@pytest.mark.parametrize("batch_size", [1, 3, 64])
def test_loglikelihood_matches_one_at_a_time_reference(gpt2_bpe, batch_size):
    lm = HFLM(gpt2_bpe.model, gpt2_bpe.tokenizer, batch_size=batch_size)
    got = lm.loglikelihood(REQS)
    for r, g in zip(REQS, got, strict=True):
        lp, greedy, n = reference_ll(lm, r.context, r.continuation)
        assert g.logprob == pytest.approx(lp, abs=1e-4)
        assert (g.is_greedy, g.n_tokens) == (greedy, n)
        assert not g.truncated


MANY = [
    LoglikelihoodRequest(f"Item {k}: " + "a long context " * (k % 5) + "then", f" end{j}" * (1 + j))
    for k in range(9)
    for j in range(3)
]


@needs_tok
@pytest.mark.parametrize("mode", ["merged", "one_pass_at_a_time", "kv_budget", "unmergeable"])
def test_continuations_of_several_context_passes_share_batches(gpt2_bpe, monkeypatch, mode):
    """Continuations from context passes of different widths are batched together (each
    context's cache right-aligned to the widest); flushing per pass, on the KV budget, or for
    caches that cannot be merged gives the same results."""
    import smollab.eval.lm as lm_mod

    lm = HFLM(gpt2_bpe.model, gpt2_bpe.tokenizer, batch_size=2)
    if mode == "one_pass_at_a_time":
        monkeypatch.setattr(lm_mod, "CONTEXT_PASSES", 1)
    elif mode == "kv_budget":
        monkeypatch.setattr(lm_mod, "KV_BUDGET", 1)
    elif mode == "unmergeable":
        run = lm._run_contexts

        def unmergeable(batch):
            part = run(batch)
            part.mergeable = False
            return part

        monkeypatch.setattr(lm, "_run_contexts", unmergeable)
    passes: list[int] = []
    score = lm._score_continuations
    monkeypatch.setattr(
        lm, "_score_continuations", lambda parts, *a: (passes.append(len(parts)), score(parts, *a))
    )
    got = lm.loglikelihood(MANY)
    # 9 distinct contexts in passes of 2: merged into one group, else one pass per group
    assert passes == ([5] if mode == "merged" else [1] * 5)
    for r, g in zip(MANY, got, strict=True):
        lp, greedy, n = reference_ll(lm, r.context, r.continuation)
        assert g.logprob == pytest.approx(lp, abs=1e-4)
        assert (g.is_greedy, g.n_tokens) == (greedy, n)


@needs_tok
def test_continuation_batches_take_more_rows_within_the_position_budget(gpt2_bpe):
    """On an accelerator a continuation forward takes more than batch_size rows (up to
    CONT_ROWS x) only while they hold no more positions than a context forward (batch_size x
    context width); on the CPU it takes batch_size rows. Results are unchanged."""
    from smollab.eval.lm import CONT_ROWS

    lm = HFLM(gpt2_bpe.model, gpt2_bpe.tokenizer, batch_size=2)
    assert lm.cont_rows == 1  # a CPU model
    lm.cont_rows = CONT_ROWS  # what a GPU model gets
    shapes: list[tuple[str, int, int]] = []

    def record(_mod, args, kwargs):
        kind = "cont" if kwargs.get("past_key_values") is not None else "ctx"
        shapes.append((kind, *kwargs["input_ids"].shape))

    handle = gpt2_bpe.model.register_forward_pre_hook(record, with_kwargs=True)
    try:
        got = lm.loglikelihood(MANY)
    finally:
        handle.remove()
    ctx_width = max(w for kind, _, w in shapes if kind == "ctx")
    cont = [(m, w) for kind, m, w in shapes if kind == "cont"]
    assert max(m for m, _ in cont) > lm.batch_size  # more rows than a context pass
    assert all(m <= CONT_ROWS * lm.batch_size for m, _ in cont)
    assert all(m * w <= lm.batch_size * ctx_width or m <= lm.batch_size for m, w in cont)
    for r, g in zip(MANY, got, strict=True):
        lp, greedy, n = reference_ll(lm, r.context, r.continuation)
        assert g.logprob == pytest.approx(lp, abs=1e-4)
        assert (g.is_greedy, g.n_tokens) == (greedy, n)
    # empty contexts (one EOS token) with long continuations still take batch_size rows
    lm.cont_rows, shapes[:] = 1, []
    handle = gpt2_bpe.model.register_forward_pre_hook(record, with_kwargs=True)
    try:
        lm.loglikelihood([LoglikelihoodRequest("", f" word{k}" * 6) for k in range(7)])
    finally:
        handle.remove()
    assert [m for kind, m, _ in shapes if kind == "cont"] == [2, 2, 2, 1]


@needs_tok
def test_encode_many_is_encode_of_each(gpt2_bpe):
    lm = HFLM(gpt2_bpe.model, gpt2_bpe.tokenizer)
    texts = ["a b c", "", " leading space", "<|endoftext|>starts with the BOS", "x" * 50]
    assert lm.encode_many(texts) == [lm.encode(t) for t in texts]
    pairs = [("a b ", "c"), ("", "empty"), ("a b ", "d"), ("q:", " 4")]
    assert lm._encode_pairs(pairs) == [lm._encode_pair(c, x) for c, x in pairs]


@needs_tok
def test_trailing_space_moves_to_continuation(gpt2_bpe):
    lm = HFLM(gpt2_bpe.model, gpt2_bpe.tokenizer)
    ctx, cont = lm._encode_pair("a b ", "c")
    assert ctx == lm.encode("a b") and cont == lm.encode("a b c")[len(ctx) :]


@needs_tok
def test_long_context_is_cut_from_the_left_like_lm_eval(gpt2_bpe):
    lm = HFLM(gpt2_bpe.model, gpt2_bpe.tokenizer)
    long_ctx = "word " * 200  # ~200 tokens > window 64
    req = LoglikelihoodRequest(long_ctx + "end", " of it")
    (g,) = lm.loglikelihood([req])
    lp, greedy, n = reference_ll(lm, req.context, req.continuation)
    assert g.truncated and g.logprob == pytest.approx(lp, abs=1e-4) and g.n_tokens == n


@needs_tok
def test_continuation_longer_than_window_is_a_clear_error(gpt2_bpe):
    lm = HFLM(gpt2_bpe.model, gpt2_bpe.tokenizer)
    with pytest.raises(ConfigError, match="context window of 64 tokens"):
        lm.loglikelihood([LoglikelihoodRequest("x", " y" * 100)])


@needs_tok
def test_generate_matches_hf_generate_and_cuts_prompt_from_left(gpt2_bpe):
    lm = HFLM(gpt2_bpe.model, gpt2_bpe.tokenizer, batch_size=4)
    prompts = ["Question: What is 2 plus 2?\nAnswer:", "Hello", "The cat sat on the"]
    got = lm.generate([GenerateRequest(p, ("\n",), 6) for p in prompts])
    want = sequential_generate(gpt2_bpe.model, gpt2_bpe.tokenizer, prompts, max_new_tokens=6)
    assert got == want
    # a prompt longer than window - max_tokens keeps its last tokens, as lm-eval does
    long = "word " * 100 + "The cat sat on the"
    req = GenerateRequest(long, ("\n",), 6)
    assert lm.truncated(req)
    kept = lm.tokenizer.decode(lm.encode(long)[-(64 - 6) :])
    assert lm.generate([req]) == sequential_generate(
        gpt2_bpe.model, gpt2_bpe.tokenizer, [kept], max_new_tokens=6
    )


@needs_tok
def test_generate_budget_larger_than_window_is_a_clear_error(gpt2_bpe):
    lm = HFLM(gpt2_bpe.model, gpt2_bpe.tokenizer)
    with pytest.raises(ConfigError, match="max_tokens=64 leaves no room"):
        lm.generate([GenerateRequest("Hi", (), 64)])


@needs_tok
def test_sampling_is_seeded_and_differs_from_greedy(gpt2_bpe):
    lm = HFLM(gpt2_bpe.model, gpt2_bpe.tokenizer)
    reqs = [GenerateRequest("Hello", (), 8, temperature=1.0, seed=s) for s in (1, 1, 2)]
    a, b, c = lm.generate(reqs)
    assert a == b and a != c


@needs_tok
def test_results_are_cached_by_request_hash(gpt2_bpe, tmp_path, monkeypatch):
    cache = RequestCache(tmp_path / "c.sqlite")
    lm = HFLM(gpt2_bpe.model, gpt2_bpe.tokenizer, cache=cache, model_key="m1")
    first = lm.loglikelihood(REQS[:3])
    gen = lm.generate([GenerateRequest("Hello", ("\n",), 4)])
    calls = []
    monkeypatch.setattr(lm, "_run_contexts", lambda *a: calls.append(a))
    monkeypatch.setattr(lm, "_generate", lambda *a: calls.append(a))
    assert lm.loglikelihood(REQS[:3]) == first
    assert lm.generate([GenerateRequest("Hello", ("\n",), 4)]) == gen
    assert calls == []  # nothing recomputed
    # another model key misses the cache
    other = HFLM(gpt2_bpe.model, gpt2_bpe.tokenizer, cache=cache, model_key="m2")
    monkeypatch.setattr(other, "_generate", lambda reqs, p: ["fresh"] * len(reqs))
    assert other.generate([GenerateRequest("Hello", ("\n",), 4)]) == ["fresh"]
