"""The LM interface: loglikelihood and generate against one-at-a-time references."""

from __future__ import annotations

import pytest
import torch

from smollab.errors import ConfigError
from smollab.eval.generate import sequential_generate
from smollab.eval.lm import (
    HFLM,
    ContinuationTooLong,
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


def assert_matches_reference(lm: HFLM, reqs, got) -> None:
    for r, g in zip(reqs, got, strict=True):
        lp, greedy, n = reference_ll(lm, r.context, r.continuation)
        assert g.logprob == pytest.approx(lp, abs=1e-4)
        assert (g.is_greedy, g.n_tokens) == (greedy, n)


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
    assert_matches_reference(lm, REQS, got)
    assert not any(g.truncated for g in got)


MANY = [
    LoglikelihoodRequest(f"Item {k}: " + "a long context " * (k % 5) + "then", f" end{j}" * (1 + j))
    for k in range(9)
    for j in range(3)
]


def scored_with_forwards(lm: HFLM, reqs) -> tuple[list, list[tuple[int, int, bool]]]:
    """``lm.loglikelihood(reqs)`` and (rows, width, tree mask or not) of each model forward."""
    shapes: list[tuple[int, int, bool]] = []

    def record(_mod, args, kwargs):
        mask = kwargs.get("attention_mask")
        shapes.append((*kwargs["input_ids"].shape, mask is not None and mask.dim() == 4))

    handle = lm.model.register_forward_pre_hook(record, with_kwargs=True)
    try:
        return lm.loglikelihood(reqs), shapes
    finally:
        handle.remove()


@needs_tok
@pytest.mark.parametrize("tree", [True, False])
def test_prefix_trees_feed_each_context_and_shared_prefix_once(gpt2_bpe, tree):
    """A context's continuations share one row (a prefix tree under a 4D mask): the context and
    the prefixes the continuations share are fed once. Chain rows (one request per row, for
    models that cannot take a tree mask) give the same results with more tokens."""
    lm = HFLM(gpt2_bpe.model, gpt2_bpe.tokenizer, batch_size=6)
    lm._tree = tree  # decided (not probed)
    got, shapes = scored_with_forwards(lm, MANY)
    assert_matches_reference(lm, MANY, got)
    fed = sum(rows * width for rows, width, _ in shapes)
    assert all(is_tree == tree for _, _, is_tree in shapes)
    # 9 contexts, 3 continuations each (" end0", " end1 end1", ...): each continuation is
    # fed but its last token; a tree feeds its context, and each prefix its continuations
    # share (here " end"), once
    pairs = [lm._encode_pair(r.context, r.continuation) for r in MANY]
    if tree:
        contexts = {tuple(c) for c, _ in pairs}
        nodes = {(tuple(c), tuple(x[:k])) for c, x in pairs for k in range(1, len(x))}
        real = sum(len(c) for c in contexts) + len(nodes)
    else:
        real = sum(len(c) + len(x) - 1 for c, x in pairs)
    assert real <= fed < real * 1.5  # rows sorted by length: little padding
    # a forward holds batch_size continuations: 2 trees of 3, or 6 chains
    assert [rows for rows, _, _ in shapes] == ([2, 2, 2, 2, 1] if tree else [6] * 4 + [3])


def test_target_logprobs_in_blocks_are_those_of_one_pass():
    """Log-probabilities taken block by block (in cache) are the one-pass ones, in the order
    asked, with repeats."""
    from smollab.eval.lm import _target_logprobs

    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(50, 300, generator=gen) * 3
    at = torch.randint(0, 50, (80,), generator=gen)
    target = torch.randint(0, 300, (80,), generator=gen)
    target[:10] = logits[at[:10]].argmax(-1)  # some greedy tokens
    logp = torch.log_softmax(logits, -1)
    want_lp = logp[at, target].tolist()
    want_ok = (logp.argmax(-1)[at] == target).tolist()
    for block in (1, 4 * 300 * 7, 1 << 30):  # 1 row, 7 rows, all rows per block
        lp, ok = _target_logprobs(logits, at, target, block_bytes=block)
        assert lp == want_lp and ok == want_ok
    assert sum(want_ok) >= 10


@needs_tok
def test_many_continuations_of_one_context_split_into_rows(gpt2_bpe, monkeypatch):
    """A tree row holds at most ROW_TOKENS tokens; more continuations go to further rows,
    each with its own copy of the context. Results are unchanged."""
    import smollab.eval.lm as lm_mod

    monkeypatch.setattr(lm_mod, "ROW_TOKENS", 20)
    reqs = [LoglikelihoodRequest(ROOF, f" word{k} and more{k}") for k in range(6)]
    lm = HFLM(gpt2_bpe.model, gpt2_bpe.tokenizer, batch_size=64)
    got, shapes = scored_with_forwards(lm, reqs)
    assert_matches_reference(lm, reqs, got)
    ((rows, width, tree),) = shapes[-1:]  # after the probe's two forwards
    ctx = len(lm._encode_pair(ROOF, " x")[0])
    assert tree and rows > 1 and ctx < width <= 20


@needs_tok
def test_continuation_forwards_take_more_rows_on_an_accelerator(gpt2_bpe):
    """On an accelerator a forward holds up to CONT_ROWS x batch_size continuations; on the
    CPU batch_size. Results are unchanged."""
    from smollab.eval.lm import CONT_ROWS

    lm = HFLM(gpt2_bpe.model, gpt2_bpe.tokenizer, batch_size=2)
    lm._tree = False
    assert lm.cont_rows == 1  # a CPU model
    lm.cont_rows = CONT_ROWS  # what a GPU model gets
    got, shapes = scored_with_forwards(lm, MANY)
    assert [rows for rows, _, _ in shapes] == [8, 8, 8, 3]
    assert_matches_reference(lm, MANY, got)


@needs_tok
def test_a_sliding_window_shorter_than_the_rows_gets_chain_rows(gpt2_bpe):
    """A tree's mask replaces a sliding window's mask, so a sliding-window model takes trees
    only while no row reaches past its window."""
    lm = HFLM(gpt2_bpe.model, gpt2_bpe.tokenizer, batch_size=4)
    cfg = gpt2_bpe.model.config
    lm.loglikelihood(MANY[:1])  # the probe's forwards
    for window, want_tree in ((8, False), (64, True)):
        cfg.sliding_window = window  # read by the LM interface (GPT-2 itself has none)
        try:
            got, shapes = scored_with_forwards(lm, MANY)
        finally:
            del cfg.sliding_window
        assert {tree for _, _, tree in shapes} == {want_tree}
        assert_matches_reference(lm, MANY, got)
    assert lm.loglikelihood([]) == []


@needs_tok
def test_eager_attention_takes_an_additive_tree_mask(gpt2_bpe):
    lm = HFLM(gpt2_bpe.model, gpt2_bpe.tokenizer, batch_size=4)
    cfg = gpt2_bpe.model.config
    before = cfg._attn_implementation
    cfg._attn_implementation = "eager"
    try:
        got = lm.loglikelihood(MANY)
        assert lm._tree is True  # the probe passed with eager attention
        assert_matches_reference(lm, MANY, got)
    finally:
        cfg._attn_implementation = before


@needs_tok
def test_a_model_that_ignores_the_tree_mask_gets_chain_rows(gpt2_bpe, monkeypatch):
    """The probe compares a small tree row with chain rows: a model whose forward drops a 4D
    mask (custom code that builds its own causal mask) fails it and is scored with chains,
    correctly."""
    model = gpt2_bpe.model
    forward = model.forward

    def ignores_4d_masks(*args, **kwargs):
        mask = kwargs.get("attention_mask")
        if mask is not None and mask.dim() == 4:
            kwargs["attention_mask"] = None
        return forward(*args, **kwargs)

    monkeypatch.setattr(model, "forward", ignores_4d_masks)
    lm = HFLM(model, gpt2_bpe.tokenizer, batch_size=4)
    got = lm.loglikelihood(MANY)
    assert lm._tree is False
    assert_matches_reference(lm, MANY, got)


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
    reqs = [LoglikelihoodRequest("x", " y"), LoglikelihoodRequest("x", " y" * 100)]
    with pytest.raises(ContinuationTooLong, match="context window of 64 tokens") as e:
        lm.loglikelihood(reqs)
    assert (e.value.index, e.value.n_tokens, e.value.window) == (1, 100, 64)
    assert isinstance(e.value, ConfigError)  # the CLI prints it as one paragraph
    assert lm.too_long(reqs) == [(1, 100)]


@needs_tok
@pytest.mark.parametrize("tree", [True, False])
@pytest.mark.parametrize("window", [22, 40])
def test_truncated_hellaswag_contexts_are_scored_as_lm_eval_scores_each_request(
    gpt2_bpe, tree, window
):
    """QA: the endings of one context were all given the context the longest ending left
    room for, so a shorter ending lost context tokens that lm-eval keeps (24 of 80 requests
    scored differently at window 48) and was flagged truncated when it was not. Each request
    keeps (context + continuation)[-(window + 1):][:-1], in prefix trees and in chain rows;
    window 22 is exactly the longest ending (item 2's fourth: one context token kept)."""
    from smollab.eval.harness import make_task

    task = make_task("hellaswag", limit=8, data_dir=str(SHARED))
    reqs = [r for d in task.docs() for r in task.requests(d)]
    lm = HFLM(gpt2_bpe.model, gpt2_bpe.tokenizer, max_length=window, batch_size=5)
    lm._tree = tree
    got = lm.loglikelihood(reqs)
    assert_matches_reference(lm, reqs, got)
    pairs = [lm._encode_pair(r.context, r.continuation) for r in reqs]
    cut = [len(c) + len(x) > window + 1 for c, x in pairs]
    assert [g.truncated for g in got] == cut
    # the case at issue is there: an item whose endings are cut by different amounts (or
    # some cut and some not)
    kept = [(c, max(0, len(c) + len(x) - window - 1)) for c, x in pairs]
    by_item = [{k for _, k in kept[i : i + 4]} for i in range(0, len(kept), 4)]
    assert any(len(ks) > 1 for ks in by_item)
    assert max(len(x) for _, x in pairs) == 22


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
def test_a_model_changed_in_memory_misses_the_cache(tmp_path):
    """QA: the key hashed 256 values of the first 4 tensors, so ablating the last MLP (or an
    adapter on down_proj) returned the unchanged model's cached log-probabilities."""
    import torch

    from smollab.eval.harness import model_key
    from smollab.models import load_model

    cfg = {"n_layer": 2, "n_head": 2, "n_embd": 32, "block_size": 64}
    loaded = load_model("scratch:gpt2", tokenizer=str(GPT2_TOK), config=cfg, seed=3)
    cache = RequestCache(tmp_path / "c.sqlite")
    reqs = REQS[:2]
    before = HFLM(loaded.model, loaded.tokenizer, cache=cache).loglikelihood(reqs)
    key = model_key(loaded)
    with torch.no_grad():
        loaded.model.transformer.h[-1].mlp.c_proj.weight.zero_()
    assert model_key(loaded) != key
    # no model_key given: the weights' fingerprint is the key, not "" for every model
    after = HFLM(loaded.model, loaded.tokenizer, cache=cache).loglikelihood(reqs)
    fresh = HFLM(loaded.model, loaded.tokenizer).loglikelihood(reqs)
    assert [r.logprob for r in after] == [r.logprob for r in fresh]
    assert [r.logprob for r in after] != [r.logprob for r in before]


@needs_tok
def test_results_are_cached_by_request_hash(gpt2_bpe, tmp_path, monkeypatch):
    cache = RequestCache(tmp_path / "c.sqlite")
    lm = HFLM(gpt2_bpe.model, gpt2_bpe.tokenizer, cache=cache, model_key="m1")
    first = lm.loglikelihood(REQS[:3])
    gen = lm.generate([GenerateRequest("Hello", ("\n",), 4)])
    calls = []
    monkeypatch.setattr(lm, "_score_rows", lambda *a: calls.append(a))
    monkeypatch.setattr(lm, "_generate", lambda *a: calls.append(a))
    assert lm.loglikelihood(REQS[:3]) == first
    assert lm.generate([GenerateRequest("Hello", ("\n",), 4)]) == gen
    assert calls == []  # nothing recomputed
    # another model key misses the cache
    other = HFLM(gpt2_bpe.model, gpt2_bpe.tokenizer, cache=cache, model_key="m2")
    monkeypatch.setattr(other, "_generate", lambda reqs, p: ["fresh"] * len(reqs))
    assert other.generate([GenerateRequest("Hello", ("\n",), 4)]) == ["fresh"]
