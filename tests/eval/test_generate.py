"""Batched greedy decoding must equal one-at-a-time ``model.generate``, row for row."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from smollab.errors import ConfigError
from smollab.eval import evaluate_items, greedy_generate, sequential_generate
from smollab.eval.evaluator import accuracy_by_stratum, fewshot_examples
from smollab.tasks import PROMPT_FORMATS, build_task, validate_task_config
from tests.conftest import tiny_lm

PROMPTS = [
    "1+2=",
    "12+34=",
    "Q: What is 7 * 8? A:",
    "9+9=",
    "123+4=",
    "5=",
    "77*3=",
    "0+0=",
    "Q: What is 12 * 3? A:",
    "abc",
    "8*8=",
    "31+4=",
    "Q: What is 456 + 789? A:",
]


def diverse(arch: str) -> Any:
    """A tiny random model whose greedy outputs vary: larger weights, and boosted newline and EOS
    embeddings so that rows stop (at newline, at EOS, or at the length limit) at different steps."""
    lm = tiny_lm(arch)
    tok = lm.tokenizer
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in lm.model.parameters():
            if p.ndim >= 2:
                p.copy_(torch.randn(p.shape, generator=g) * 0.3)
        emb = lm.model.get_input_embeddings().weight
        emb[tok.convert_tokens_to_ids("\n")] *= 1.5
        emb[tok.eos_token_id] *= 1.5
    return lm


@pytest.fixture(scope="module", params=["gpt2", "llama"])
def lm(request: pytest.FixtureRequest) -> Any:
    return diverse(request.param)


def test_outputs_are_diverse(lm: Any) -> None:
    """Guard for the test below: rows must end at different steps and for different reasons,
    otherwise the cache-row dropping would not be exercised."""
    raw = greedy_generate(lm.model, lm.tokenizer, PROMPTS, max_new_tokens=12, stop=())
    lengths = {len(lm.tokenizer(t, add_special_tokens=False).input_ids) for t in raw}
    assert len(lengths) >= 4, raw
    assert any(len(t) < 12 for t in raw), "some row should end at EOS before the limit"
    assert any("\n" in t for t in raw), "some row should produce a newline"
    cut = greedy_generate(lm.model, lm.tokenizer, PROMPTS, max_new_tokens=12, stop=("\n",))
    assert len({len(t) for t in cut}) >= 4
    assert all("\n" not in t for t in cut)
    assert [r.split("\n")[0] for r in raw] == cut


@pytest.mark.parametrize("batch_size", [1, 4, 64])
def test_batched_equals_sequential(lm: Any, batch_size: int) -> None:
    ref = sequential_generate(lm.model, lm.tokenizer, PROMPTS, max_new_tokens=12, stop=("\n",))
    got = greedy_generate(
        lm.model, lm.tokenizer, PROMPTS, max_new_tokens=12, stop=("\n",), batch_size=batch_size
    )
    assert got == ref


def test_batched_equals_sequential_without_stop(lm: Any) -> None:
    ref = sequential_generate(lm.model, lm.tokenizer, PROMPTS, max_new_tokens=9, stop=())
    got = greedy_generate(lm.model, lm.tokenizer, PROMPTS, max_new_tokens=9, stop=(), batch_size=5)
    assert got == ref


def test_max_new_tokens_respected(lm: Any) -> None:
    got = greedy_generate(lm.model, lm.tokenizer, PROMPTS, max_new_tokens=3, stop=(), batch_size=4)
    assert all(len(lm.tokenizer(t, add_special_tokens=False).input_ids) <= 3 for t in got)


def test_output_order_and_progress(lm: Any) -> None:
    seen: list[int] = []
    prompts = list(reversed(PROMPTS))
    got = greedy_generate(
        lm.model, lm.tokenizer, prompts, max_new_tokens=6, batch_size=4, progress=seen.append
    )
    ref = greedy_generate(lm.model, lm.tokenizer, PROMPTS, max_new_tokens=6, batch_size=4)
    assert got == list(reversed(ref))  # results come back in the caller's order
    assert sum(seen) == len(PROMPTS) and max(seen) <= 4


def test_evaluate_items_records() -> None:
    lm = diverse("gpt2")
    task = build_task(
        validate_task_config(
            {"id": "add", "task": "arith.add", "strata": ["1x1", "1x2"], "n_test": 6}
        )
    )
    fmt = PROMPT_FORMATS.get("compact")
    items = task.test_set()
    recs = evaluate_items(lm.model, lm.tokenizer, task, fmt, items, batch_size=5, max_new_tokens=6)
    assert [r["id"] for r in recs] == [e.id for e in items]
    ref = sequential_generate(
        lm.model, lm.tokenizer, [fmt.prompt(e) for e in items], max_new_tokens=6
    )
    for r, e, c in zip(recs, items, ref, strict=True):
        assert r["prompt"] == fmt.prompt(e)
        assert r["target"] == e.answer
        assert r["completion"] == c
        assert r["correct"] == (r["prediction"] == e.answer)
        assert r["error_type"] in task.error_types
        assert 0.0 <= r["digit_accuracy"] <= 1.0
    acc = accuracy_by_stratum(recs)
    assert set(acc) == {"1x1", "1x2"}
    # a random model gets nothing right; fake two hits to check the arithmetic
    recs[0]["correct"] = True
    recs[-1]["correct"] = True
    acc = accuracy_by_stratum(recs)
    assert acc == {"1x1": pytest.approx(1 / 6), "1x2": pytest.approx(1 / 6)}


def test_evaluate_items_takes_a_format_name_and_no_items() -> None:
    """The library call a researcher writes by hand: a task table, a format by name, and an
    empty selection (e.g. a stratum filtered away) give records, not AttributeError/ValueError."""
    lm = diverse("gpt2")
    task = build_task({"id": "add", "task": "arith.add", "strata": ["1x1"], "n_test": 3})
    items = task.test_set()
    by_name = evaluate_items(lm.model, lm.tokenizer, task, "compact", items, max_new_tokens=4)
    fmt = PROMPT_FORMATS.get("compact")
    assert by_name == evaluate_items(lm.model, lm.tokenizer, task, fmt, items, max_new_tokens=4)
    assert evaluate_items(lm.model, lm.tokenizer, task, fmt, []) == []
    with pytest.raises(ConfigError, match=r"Unknown prompt format 'compcat' in evaluate_items"):
        evaluate_items(lm.model, lm.tokenizer, task, "compcat", items)


def test_build_task_refuses_what_is_not_a_task_table() -> None:
    with pytest.raises(ConfigError, match=r"build_task: expected a task table .* got str"):
        build_task("arith.add")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"build_task: field 'task' is missing"):
        build_task({"id": "add"})


def test_fewshot_examples_are_not_test_items() -> None:
    task = build_task(
        validate_task_config({"id": "mul", "task": "arith.mul", "strata": ["1x1"], "n_test": 50})
    )
    shots = fewshot_examples(task, PROMPT_FORMATS.get("fewshot"))
    assert len(shots) == 3
    test_pairs = {(e.question["a"], e.question["b"]) for e in task.test_set()}
    assert not {(s.question["a"], s.question["b"]) for s in shots} & test_pairs
    assert fewshot_examples(task, PROMPT_FORMATS.get("plain")) == []


def _kv(rows: int, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(rows, 3, n, 4, generator=g), torch.randn(rows, 3, n, 4, generator=g)


@pytest.mark.parametrize("capacity", [0, 5, 64])
def test_growing_layer_holds_what_dynamic_layer_holds(capacity: int) -> None:
    """The preallocated cache layer returns the same keys and values as transformers'
    DynamicLayer through prefill, decoding, overflowing its capacity (0 and 5 force the buffers
    to grow), dropping rows, selecting rows out of order, repeating rows and cropping."""
    from transformers.cache_utils import DynamicLayer

    from smollab.eval.generate import GrowingLayer

    ref, got = DynamicLayer(), GrowingLayer(capacity)

    def same() -> None:
        assert got.get_seq_length() == ref.get_seq_length()
        assert torch.equal(got.keys, ref.keys) and torch.equal(got.values, ref.values)

    def update(k: torch.Tensor, v: torch.Tensor) -> None:
        rk, rv = ref.update(k, v)
        gk, gv = got.update(k, v)
        assert torch.equal(gk, rk) and torch.equal(gv, rv)
        same()

    update(*_kv(1, 4, 0))  # a shared prefix, then repeated for 6 rows
    for layer in (ref, got):
        layer.batch_repeat_interleave(6)
    same()
    update(*_kv(6, 3, 1))  # the rows' own prompt tokens
    for step in range(8):  # decoding, one position at a time
        update(*_kv(6 if step < 3 else 4 if step < 6 else 2, 1, 10 + step))
        if step == 2:  # rows 1 and 4 finish
            for layer in (ref, got):
                layer.batch_select_indices(torch.tensor([0, 2, 3, 5]))
            same()
        if step == 5:  # any other selection (reordered, repeated) copies
            for layer in (ref, got):
                layer.batch_select_indices(torch.tensor([3, 0]))
            same()
    for layer in (ref, got):
        layer.crop(-3)
    same()
    update(*_kv(2, 2, 99))


def test_new_cache_uses_growing_layers() -> None:
    from smollab.eval.generate import GrowingLayer, _cache_kwarg, _returned_cache, new_cache

    lm = tiny_lm("llama")
    cache = new_cache(lm.model, 32)
    assert cache is not None
    kv = _cache_kwarg(lm.model)
    out = lm.model(input_ids=torch.tensor([[1, 2, 3]]), **{kv: cache}, use_cache=True)
    layers = _returned_cache(out).layers
    assert layers and all(isinstance(x, GrowingLayer) for x in layers)
    assert layers[0].get_seq_length() == 3 and layers[0]._k.shape[2] == 32
    assert new_cache(object(), 8) is None  # no config: the model makes its own cache


def test_chat_formats_give_a_local_model_room_to_restate_the_question(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The default budget was the answer's tokens + 2, which cut an untrained instruct model's
    reply ("To calculate 8 * ") before its answer; chat formats now get API_MAX_NEW_TOKENS."""
    import smollab.eval.evaluator as ev

    lm = diverse("gpt2")
    lm.tokenizer.chat_template = (
        "{% for m in messages %}<{{ m.role }}>{{ m.content }}\n{% endfor %}"
        "{% if add_generation_prompt %}<assistant>{% endif %}"
    )
    budgets = []

    def fake(model: Any, tok: Any, prompts: list[str], **kw: Any) -> list[str]:
        budgets.append(kw["max_new_tokens"])
        return ["8 * 7 = 56"] * len(prompts)

    monkeypatch.setattr(ev, "greedy_generate", fake)
    task = build_task({"id": "m", "task": "arith.mul", "strata": ["1x1"], "n_test": 3})
    items = task.test_set()
    for name in ("chat", "chat_answer"):
        recs = evaluate_items(lm.model, lm.tokenizer, task, name, items)
        assert [r["prediction"] for r in recs] == ["56"] * 3  # the reply's last integer
    evaluate_items(lm.model, lm.tokenizer, task, "compact", items)
    assert budgets[0] == budgets[1] == ev.API_MAX_NEW_TOKENS and budgets[2] < 10


def test_a_stop_string_is_one_stop_and_bad_arguments_are_named() -> None:
    """QA: stop="Question:" was read as the stops "Q", "u", "e", ... and cut at the first 'e';
    an empty prompt, top_p=0 and batch_size=0 raised raw torch / Python errors."""
    from smollab.tasks.requests import GenerateRequest

    lm = diverse("gpt2")
    (free,) = greedy_generate(lm.model, lm.tokenizer, ["ab"], max_new_tokens=12, stop=())
    assert free
    # a stop that starts with the text's first character but never occurs whole: read as
    # characters it cut everything
    stop = free[0] + "\x00"
    assert greedy_generate(lm.model, lm.tokenizer, ["ab"], max_new_tokens=12, stop=stop) == [free]
    assert GenerateRequest("p", stop="Question:").stop == ("Question:",)
    assert GenerateRequest("p", stop=["a", "b"]).stop == ("a", "b")  # type: ignore[arg-type]
    # an empty prompt starts from EOS, like loglikelihood's empty context
    (text,) = greedy_generate(lm.model, lm.tokenizer, [""], max_new_tokens=3, stop=())
    assert isinstance(text, str)
    for kw, match in (
        ({"top_p": 0.0, "temperature": 1.0}, "top_p=0.0 is outside"),
        ({"temperature": -1.0}, "temperature=-1.0 is negative"),
        ({"batch_size": 0}, "batch_size=0"),
    ):
        with pytest.raises(ConfigError, match=match):
            greedy_generate(lm.model, lm.tokenizer, ["ab"], **kw)
    with pytest.raises(ConfigError, match="top_p=0 is outside"):
        GenerateRequest("p", temperature=1.0, top_p=0)
    with pytest.raises(ConfigError, match="a list of prompts"):
        greedy_generate(lm.model, lm.tokenizer, "Hi")  # type: ignore[arg-type]


def test_evaluate_items_names_a_loaded_model_and_a_benchmark_task() -> None:
    from smollab.eval.harness import make_task

    lm = diverse("gpt2")
    task = build_task({"id": "add", "task": "arith.add", "strata": ["1x1"], "n_test": 3})
    with pytest.raises(ConfigError, match="pass loaded.model, loaded.tokenizer"):
        evaluate_items(lm, lm.tokenizer, task, "compact", task.test_set())
    bench = make_task("arith_probe", limit=1)
    with pytest.raises(ConfigError, match="arith_probe is a benchmark task: evaluate it with"):
        evaluate_items(lm.model, lm.tokenizer, bench, "compact", task.test_set())


def test_a_lora_model_gets_the_cache_under_its_base_models_name():
    """QA: sampling a LoRA run warned that past_key_values is deprecated: the peft wrapper's
    forward takes **kwargs, so its own signature named neither keyword."""
    import warnings

    from peft import LoraConfig, get_peft_model

    from smollab.eval.generate import _cache_kwarg, greedy_generate
    from tests.conftest import tiny_lm

    lm = tiny_lm("llama")
    kv = _cache_kwarg(lm.model)
    peft_model = get_peft_model(lm.model, LoraConfig(r=2, target_modules=["q_proj", "v_proj"]))
    assert _cache_kwarg(peft_model) == kv
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        out = greedy_generate(peft_model, lm.tokenizer, ["1+1=", "2+2="], max_new_tokens=3)
    assert len(out) == 2
