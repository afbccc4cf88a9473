"""Training data: answer-only loss mask, packing without splitting, length checks."""

from __future__ import annotations

import pytest
import torch

from smollab.errors import ConfigError
from smollab.models import char_tokenizer
from smollab.tasks import PROMPT_FORMATS, build_task, validate_task_config
from smollab.train.data import IGNORE, collate, encode_example, pack_examples


@pytest.fixture(scope="module")
def tok():
    return char_tokenizer()


@pytest.fixture(scope="module")
def task():
    return build_task(
        validate_task_config(
            {"id": "add", "task": "arith.add", "strata": ["1x1", "2x2"], "n_test": 10}
        )
    )


@pytest.mark.parametrize("fmt_name", ["compact", "plain", "compact_rev", "compact_pp"])
def test_targets_only_on_answer_tokens(tok, task, fmt_name: str) -> None:
    fmt = PROMPT_FORMATS.get(fmt_name)
    examples = task.train_examples(40, seed=0)
    seqs, used = pack_examples(examples, tok, fmt, seq_len=64, n_sequences=3)
    batch = collate(seqs, tok.pad_token_id)
    ids, targets, pos = batch["input_ids"], batch["targets"], batch["loss_positions"]
    assert torch.equal(pos, targets != IGNORE)
    start = 0
    for r, s in enumerate(seqs):
        exs = examples[start : start + s.n_examples]
        start += s.n_examples
        # the expected mask, rebuilt independently from the texts
        expected = []
        for ex in exs:
            p = fmt.prompt(ex, tok)
            t = fmt.target(ex, tok)
            expected += [False] * len(p) + [True] * len(t)  # char tokenizer: 1 token per char
        width = ids.shape[1]
        next_is_answer = (expected[1:] + [False] * width)[:width]
        assert pos[r].tolist() == next_is_answer
        # position t predicts token t+1, and the predicted tokens spell out exactly the answers
        where = pos[r].nonzero().flatten()
        assert torch.equal(targets[r, where], ids[r, where + 1])
        assert tok.decode(targets[r, where].tolist()) == "".join(fmt.target(e) for e in exs)
        # everything else (prompts, padding) is ignored
        assert (targets[r, ~pos[r]] == IGNORE).all()
    assert start == used


def test_collate_pads_right_with_mask(tok, task) -> None:
    fmt = PROMPT_FORMATS.get("compact")
    seqs, _ = pack_examples(
        task.train_examples(6, seed=1), tok, fmt, seq_len=64, n_sequences=3, pack=False
    )
    batch = collate(seqs, tok.pad_token_id)
    for r, s in enumerate(seqs):
        n = len(s.input_ids)
        assert batch["attention_mask"][r].tolist() == [1] * n + [0] * (
            batch["input_ids"].shape[1] - n
        )
        assert (batch["input_ids"][r, n:] == tok.pad_token_id).all()
        assert not batch["loss_positions"][r, n - 1 :].any()  # nothing predicted from the last/pad


def test_packing_never_splits_and_respects_seq_len(tok, task) -> None:
    fmt = PROMPT_FORMATS.get("plain")
    examples = task.train_examples(200, seed=2)
    seq_len = 48
    seqs, used = pack_examples(examples, tok, fmt, seq_len=seq_len, n_sequences=20)
    assert len(seqs) == 20
    assert sum(s.n_examples for s in seqs) == used
    assert any(s.n_examples > 1 for s in seqs)
    i = 0
    for s in seqs:
        assert len(s.input_ids) == len(s.labels) <= seq_len
        text = "".join(fmt.prompt(e) + fmt.target(e) for e in examples[i : i + s.n_examples])
        assert tok.decode(s.input_ids) == text  # whole examples, in order
        i += s.n_examples
        # greedy packing: the next example would not have fit
        nxt = sum(map(len, encode_example(tok, fmt, examples[i], first=False)))
        assert len(s.input_ids) + nxt > seq_len


def test_no_packing_one_example_per_sequence(tok, task) -> None:
    fmt = PROMPT_FORMATS.get("compact")
    seqs, used = pack_examples(task.train_examples(20, seed=3), tok, fmt, 64, 10, pack=False)
    assert used == 10 and all(s.n_examples == 1 for s in seqs)


def test_too_long_example_is_config_error(tok, task) -> None:
    fmt = PROMPT_FORMATS.get("plain")
    with pytest.raises(ConfigError) as e:
        pack_examples(task.train_examples(4, seed=0), tok, fmt, seq_len=12, n_sequences=2)
    assert "seq_len=12" in str(e.value)
    assert "longer than" in str(e.value)


def test_running_out_of_examples_is_reported(tok, task) -> None:
    fmt = PROMPT_FORMATS.get("compact")
    from smollab.train.data import OutOfExamples

    # its own exception type, so the trainer draws more examples only for this and never
    # swallows a real error (e.g. a too-long example)
    with pytest.raises(OutOfExamples, match="ran out of training examples after 2 sequences"):
        pack_examples(task.train_examples(2, seed=0), tok, fmt, 64, 5, pack=False)
