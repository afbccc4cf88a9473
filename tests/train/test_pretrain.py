"""Pretraining on a corpus: concatenate-and-chunk data, loss on every token, learning, exact
resume, and the context-window check."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from smollab.errors import ConfigError
from smollab.io import read_jsonl
from smollab.study.spec import TrainSpec
from smollab.tasks import build_task
from smollab.tasks.corpus import CorpusTask
from smollab.train import Trainer
from tests.conftest import tiny_lm

DOCS = ["abcabcabcabc abcabc", "abc abc abc abcabcabc", "abcabc abcabcabc abc"] * 4


@pytest.fixture
def task(tmp_path: Path) -> CorpusTask:
    p = tmp_path / "c.txt"
    p.write_text("\n\n".join(DOCS) + "\n")
    t = build_task({"id": "c", "task": "corpus", "path": str(p), "test_fraction": 0.25})
    assert isinstance(t, CorpusTask)
    return t


def spec(**kw: Any) -> TrainSpec:
    base = dict(steps=6, lr=3e-3, warmup_steps=0, batch_size=2, seq_len=16, eval_every=0)
    return TrainSpec(**{**base, **kw})


def make(run_dir: Path, task: CorpusTask, s: TrainSpec, **kw: Any) -> Trainer:
    tr = Trainer(tiny_lm("gpt2"), s, run_dir, task=task, fmt=None, seed=0, **kw)
    tr.setup()
    return tr


def test_chunks_are_documents_joined_with_eos_and_every_token_is_a_target(
    tmp_path: Path, task: CorpusTask
) -> None:
    tr = make(tmp_path, task, spec())
    tok = tr.lm.tokenizer
    assert len(tr.sequences) == 6 * 2
    assert all(len(s.input_ids) == 16 and s.labels == s.input_ids for s in tr.sequences)
    stream = [t for s in tr.sequences for t in s.input_ids]
    # the stream is the training documents in the order used, each followed by EOS
    texts = {d["id"]: d["text"] for d in task.train_documents()}
    expected: list[int] = []
    for e in tr.train_examples:
        expected += tok(texts[e.id], add_special_tokens=False).input_ids + [tok.eos_token_id]
    assert stream == expected[: len(stream)]
    assert tok.eos_token_id in stream
    # every position but the last of a row predicts the next token
    assert tr._n_targets == [2 * 15] * 6
    # the order is a pure function of the seed
    again = make(tmp_path / "b", task, spec())
    assert [s.input_ids for s in again.sequences] == [s.input_ids for s in tr.sequences]


def test_loss_drops_on_a_repetitive_corpus(tmp_path: Path, task: CorpusTask) -> None:
    tr = make(tmp_path, task, spec(steps=30))
    tr.fit()
    losses = [r["loss"] for r in read_jsonl(tmp_path / "metrics.jsonl")]
    assert sum(losses[-5:]) / 5 < 0.5 * sum(losses[:3]) / 3


def test_resume_is_exact(tmp_path: Path, task: CorpusTask) -> None:
    s = spec(steps=6, checkpoint_every=2)
    a = make(tmp_path / "a", task, s)
    a.fit()

    def stop_at_3(e: dict[str, Any]) -> None:
        if e.get("event") == "train_step" and e["step"] == 3:
            raise KeyboardInterrupt

    b = make(tmp_path / "b", task, s, progress=stop_at_3)
    with pytest.raises(KeyboardInterrupt):
        b.fit()
    b2 = make(tmp_path / "b", task, s)
    assert b2.step == 2
    b2.fit()
    rows = lambda d: [(r["step"], r["loss"]) for r in read_jsonl(d / "metrics.jsonl")]  # noqa: E731
    assert rows(tmp_path / "b") == rows(tmp_path / "a")  # exact float equality
    for (n, p), q in zip(a.model.state_dict().items(), b2.model.state_dict().values(), strict=True):
        assert torch.equal(p, q), n


def test_seq_len_longer_than_the_window_is_refused(tmp_path: Path, task: CorpusTask) -> None:
    with pytest.raises(ConfigError, match=r"seq_len = 128 is longer than the model's context"):
        make(tmp_path, task, spec(seq_len=128))  # the tiny model's block_size is 64
