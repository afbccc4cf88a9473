"""The corpus task: reading documents, the held-out split, rolling loglikelihood windows,
perplexity metrics, and the refusals of bad input."""

from __future__ import annotations

import bz2
import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from smollab.analysis.stats import ratio_bootstrap_interval
from smollab.errors import ConfigError
from smollab.eval.lm import HFLM, RollingLoglikelihoodRequest, rolling_windows
from smollab.tasks import build_task
from smollab.tasks.corpus import CorpusTask, corpus_metrics, held_out_count, word_count
from tests.conftest import tiny_lm

DOCS = [f"document {i}: " + "the cat sat on the mat. " * (1 + i % 3) for i in range(10)]


def write_txt(path: Path, docs: list[str] = DOCS) -> Path:
    path.write_text("\n\n".join(docs) + "\n")
    return path


def corpus(path: Path, **kw: Any) -> CorpusTask:
    task = build_task({"id": "c", "task": "corpus", "path": str(path), **kw})
    assert isinstance(task, CorpusTask)
    return task


# ---------------------------------------------------------------- reading and splitting


def test_txt_documents_are_separated_by_blank_lines(tmp_path: Path) -> None:
    p = tmp_path / "c.txt"
    p.write_text("first line\nsame doc\n\n  \n\nsecond doc\n\n\n third  \n")
    t = corpus(p, test_fraction=0.34)
    texts = sorted(d["text"] for d in t.docs() + t.train_documents())
    assert texts == sorted(["first line\nsame doc", "second doc", "third"])


def test_jsonl_and_compressed_files_read_the_same_documents(tmp_path: Path) -> None:
    rows = "".join(json.dumps({"body": d, "n": i}) + "\n" for i, d in enumerate(DOCS))
    (tmp_path / "c.jsonl").write_text(rows)
    (tmp_path / "c.jsonl.bz2").write_bytes(bz2.compress(rows.encode()))
    a = corpus(tmp_path / "c.jsonl", text_field="body")
    b = corpus(tmp_path / "c.jsonl.bz2", text_field="body")
    assert [d["text"] for d in a.docs()] == [d["text"] for d in b.docs()]
    assert a.docs()[0]["id"].startswith("line")


def test_split_is_seeded_deterministic_and_disjoint(tmp_path: Path) -> None:
    p = write_txt(tmp_path / "c.txt")
    a, b = corpus(p, test_fraction=0.3), corpus(p, test_fraction=0.3)
    test_ids = [d["id"] for d in a.docs()]
    assert test_ids == [d["id"] for d in b.docs()]  # same seed, same split
    assert len(test_ids) == 3
    train_ids = [d["id"] for d in a.train_documents()]
    assert not set(test_ids) & set(train_ids)
    assert sorted(test_ids + train_ids) == [f"doc{i:06d}" for i in range(1, 11)]
    other = corpus(p, test_fraction=0.3, data_seed=7)
    assert [d["id"] for d in other.docs()] != test_ids
    info = a.data_info()
    assert info is not None and info["test_ids"] == test_ids and info["n_train"] == 7


def test_file_content_enters_the_run_hash(tmp_path: Path) -> None:
    from smollab.study.runspec import _with_version

    p = write_txt(tmp_path / "c.txt")
    table = {"id": "c", "task": "corpus", "path": str(p)}
    before = _with_version(table)["data_sha256"]
    write_txt(p, DOCS + ["one more document"])
    assert _with_version(table)["data_sha256"] != before


# ---------------------------------------------------------------- bad input


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"corpus file .*nope.txt does not exist"):
        corpus(tmp_path / "nope.txt")


def test_empty_corpus(tmp_path: Path) -> None:
    p = tmp_path / "c.txt"
    p.write_text("\n  \n\n")
    with pytest.raises(ConfigError, match=r"holds no text"):
        corpus(p)


def test_jsonl_line_without_the_text_field_names_file_and_line(tmp_path: Path) -> None:
    p = tmp_path / "c.jsonl"
    p.write_text('{"text": "fine"}\n\n{"body": "no text field"}\n')
    with pytest.raises(ConfigError) as e:
        corpus(p)
    msg = e.value.message
    assert f"{p}, line 3" in msg and "field 'text' is missing" in msg and "['body']" in msg


def test_test_path_documents_also_in_path_are_left_out_of_training(tmp_path: Path) -> None:
    """A document of path that is also in test_path (whitespace aside) would be scored on text
    the model trained on: it is left out of training and said, as the text task does."""
    train = write_txt(tmp_path / "train.txt")
    test = write_txt(tmp_path / "test.txt", ["a new document", f"  {DOCS[3]}  "])
    t = corpus(train, test_path=str(test))
    assert [d["id"] for d in t.docs()] == ["test-doc000001", "test-doc000002"]
    assert DOCS[3] not in [d["text"] for d in t.train_documents()]
    assert len(t.train_documents()) == 9 and t.removed == ["doc000004"]
    info = t.data_info()
    assert info is not None
    assert info["n_train"] == 9 and info["n_train_removed"] == 1
    assert info["train_removed_ids"] == ["doc000004"]
    (note,) = t.data_notes()
    assert f"1 training document of {train} left out because its text is a document of " in note
    assert f"test_path ({test})" in note and "9 training documents remain" in note
    assert "data/c_split.json lists them" in note
    assert t.version == 2  # runs that trained on it are not reused
    other = write_txt(tmp_path / "other.txt", ["a new document", "another one"])
    clean = corpus(train, test_path=str(other))
    assert len(clean.docs()) == 2 and clean.data_notes() == [] and clean.version == 1


def test_repeated_document_held_out_is_not_trained_on(tmp_path: Path) -> None:
    """Within path, a document held out by the random split is dropped from training where it
    occurs again."""
    p = write_txt(tmp_path / "c.txt", DOCS + DOCS)  # every document twice
    t = corpus(p, test_fraction=0.3)
    tested = {d["text"] for d in t.docs()}
    assert not tested & {d["text"] for d in t.train_documents()}
    # each held-out document's twin, unless both copies were held out
    assert len(t.removed) == 2 * len(tested) - len(t.docs()) > 0
    assert "left out because their text is a held-out test document" in t.data_notes()[0]


def test_every_training_document_a_test_document_is_refused(tmp_path: Path) -> None:
    train = write_txt(tmp_path / "train.txt", DOCS[:2])
    test = write_txt(tmp_path / "test.txt", DOCS[:3])
    with pytest.raises(ConfigError) as e:
        corpus(train, test_path=str(test))
    msg = e.value.message
    assert f"every training document of {train} (2) is also a test document ({test}" in msg
    assert "none is left to train on" in msg


def test_empty_jsonl_records_are_skipped_and_counted(tmp_path: Path) -> None:
    p = tmp_path / "c.jsonl"
    rows = [{"text": d} for d in DOCS[:4]] + [{"text": "  \n "}, {"text": ""}]
    p.write_text("".join(json.dumps(r) + "\n" for r in rows))
    t = corpus(p, test_fraction=0.5)
    assert len(t.docs()) + len(t.train_documents()) == 4
    info = t.data_info()
    assert info is not None
    assert info["n_empty"] == 2 and info["empty_ids"] == {"path": ["line000005", "line000006"]}
    (note,) = t.data_notes()
    assert f"2 records of {p} skipped because their 'text' is empty or only whitespace" in note
    only_empty = tmp_path / "e.jsonl"
    only_empty.write_text('{"text": " "}\n')
    with pytest.raises(ConfigError, match=r"holds no text \(its 1 record\(s\) have an empty"):
        corpus(only_empty)
    bad = tmp_path / "b.jsonl"
    bad.write_text('{"text": "fine"}\n{"text": 3}\n')
    with pytest.raises(ConfigError, match=rf"{bad}, line 2: field 'text' is 3, not a string"):
        corpus(bad)


def test_repeated_id_in_a_file_of_id_text_records_is_refused(tmp_path: Path) -> None:
    """A file of {"id", "text"} records keeps its ids (a session's held-out documents), so two
    records with one id are refused, naming the id and both lines."""
    p = tmp_path / "c.jsonl"
    rows = [{"id": "a", "text": "x y"}, {"id": "b", "text": "z"}, {"id": "a", "text": "w"}]
    p.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(ConfigError) as e:
        corpus(p, test_fraction=0.5)
    assert f"corpus file {p}, lines 1 and 3 both hold document 'a'" in e.value.message


def test_tokens_per_epoch_counts_every_training_token_and_eos(tmp_path: Path) -> None:
    from smollab.models.tokenizers import char_tokenizer

    p = write_txt(tmp_path / "c.txt", ["abc", "de", "fghij"])
    t = corpus(p, test_fraction=0.34)
    tok = char_tokenizer()
    train = t.train_documents()
    assert t.tokens_per_epoch(tok) == sum(len(d["text"]) + 1 for d in train)


def test_text_field_with_only_txt_files_is_refused(tmp_path: Path) -> None:
    """text_field names a .jsonl record's field; a .txt corpus has none, so setting it there
    is a mistake, not a setting to ignore."""
    p = write_txt(tmp_path / "c.txt")
    with pytest.raises(ConfigError, match=r"text_field is 'body', but path .* is a \.txt file"):
        corpus(p, text_field="body")
    from smollab.tasks.corpus import CorpusEvalConfig, CorpusFileTask

    with pytest.raises(ConfigError, match=r"--text-field body names a field .* \.txt file"):
        CorpusFileTask(CorpusEvalConfig(id="corpus", task="corpus", path=str(p), text_field="body"))


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.5, 1.5])
def test_test_fraction_outside_0_1(tmp_path: Path, fraction: float) -> None:
    p = write_txt(tmp_path / "c.txt")
    with pytest.raises(ConfigError, match=rf"test_fraction is {fraction}, outside \(0, 1\)"):
        corpus(p, test_fraction=fraction)


def test_split_with_zero_test_documents(tmp_path: Path) -> None:
    p = write_txt(tmp_path / "c.txt", DOCS[:3])
    with pytest.raises(ConfigError, match=r"rounds to 0 held out, leaving no test document"):
        corpus(p, test_fraction=0.1)


def test_single_document_cannot_be_split(tmp_path: Path) -> None:
    p = write_txt(tmp_path / "c.txt", DOCS[:1])
    with pytest.raises(ConfigError, match=r"has 1 document: .*Add documents"):
        corpus(p, test_fraction=0.5)


@pytest.mark.parametrize(
    ("fraction", "n", "held_out"),
    [(0.1, 25, 3), (0.1, 15, 2), (0.1, 5, 1), (0.1, 4, 0), (0.3, 10, 3), (0.5, 2, 1), (0.9, 10, 9)],
)
def test_held_out_count_rounds_halves_up(fraction: float, n: int, held_out: int) -> None:
    # Python's round() would give 2 for 2.5 and 0 for 0.5 (halves to even)
    assert held_out_count(fraction, n) == held_out


def test_two_documents_message_gives_a_fraction_that_works(tmp_path: Path) -> None:
    p = write_txt(tmp_path / "c.txt", DOCS[:2])
    with pytest.raises(ConfigError) as e:
        corpus(p, test_fraction=0.1)
    msg = e.value.message
    assert "has 2 documents, and test_fraction = 0.1 of them (0.2) rounds to 0 held out" in msg
    assert "with 2 documents test_fraction must be at least 0.25 and below 0.75" in msg
    assert "set e.g. test_fraction = 0.5 (holds out 1)" in msg
    with pytest.raises(ConfigError, match=r"rounds to 2 held out, leaving none to train on"):
        corpus(p, test_fraction=0.8)
    t = corpus(p, test_fraction=0.5)  # the suggestion
    assert len(t.docs()) == 1 and len(t.train_documents()) == 1


@pytest.mark.parametrize(("n", "fraction"), [(3, 0.1), (7, 0.05), (7, 0.95), (30, 0.01)])
def test_split_message_range_and_example_are_right(tmp_path: Path, n: int, fraction: float) -> None:
    p = write_txt(tmp_path / "c.txt", [f"doc {i}" for i in range(n)])
    with pytest.raises(ConfigError) as e:
        corpus(p, test_fraction=fraction)
    m = re.search(r"at least ([\d.e-]+) and below ([\d.e-]+): set e\.g\. test_fraction = "
                  r"([\d.e-]+) \(holds out (\d+)\)", e.value.message)  # fmt: skip
    assert m, e.value.message
    low, high, example, k = float(m[1]), float(m[2]), float(m[3]), int(m[4])
    assert held_out_count(low, n) == 1 and held_out_count(high * (1 - 1e-9), n) == n - 1
    assert held_out_count(example, n) == k and 1 <= k <= n - 1
    assert len(corpus(p, test_fraction=example).docs()) == k


# ---------------------------------------------------------------- rolling windows


@pytest.mark.parametrize("n", [1, 7, 8, 9, 16, 17, 30])
def test_rolling_windows_score_every_token_once(n: int) -> None:
    tokens = list(range(100, 100 + n))
    windows = rolling_windows(tokens, prefix_token=0, max_length=8)
    scored = [t for _, cont in windows for t in cont]
    assert scored == tokens  # every token once, in order
    assert windows[0][0] == [0]  # the first token is conditioned on the prefix token
    for ctx, cont in windows:
        assert 1 <= len(cont) <= 8
        assert len(ctx) + len(cont) - 1 <= 8  # the model reads at most a window
    for (ctx, cont), (_, prev) in zip(windows[1:], windows, strict=False):
        # a later window is conditioned on the tokens right before it, a full window's worth
        start = tokens.index(cont[0])
        assert ctx == tokens[start - len(ctx) : start]
        assert len(ctx) + len(cont) == 9 and prev


def test_rolling_loglikelihood_is_the_hand_computed_nll() -> None:
    """A text longer than the window: the sum of log p(token | up to a window before it)."""
    lm = tiny_lm("gpt2")
    window = 16
    hf = HFLM(lm.model, lm.tokenizer, max_length=window, onednn=False)
    text = "the cat sat on the mat, then the dog"
    ids = hf.encode(text)
    assert len(ids) > 2 * window
    (got,) = hf.loglikelihood_rolling([RollingLoglikelihoodRequest(text)])
    assert got.n_tokens == len(ids)
    expected = 0.0
    with torch.no_grad():
        for ctx, cont in rolling_windows(ids, hf.prefix_token_id, window):
            seq = torch.tensor([ctx + cont[:-1]])
            logp = torch.log_softmax(lm.model(seq).logits[0].float(), -1)
            for k, t in enumerate(cont):
                expected += float(logp[len(ctx) - 1 + k, t])
    assert got.logprob == pytest.approx(expected, rel=1e-5)
    # the first window by itself: log p(t_0 | EOS) + ... from one plain forward
    first = ids[:window]
    with torch.no_grad():
        seq = torch.tensor([[hf.prefix_token_id] + first[:-1]])
        logp = torch.log_softmax(lm.model(seq).logits[0], -1)
    head = sum(float(logp[k, t]) for k, t in enumerate(first))
    (short,) = hf.loglikelihood_rolling([RollingLoglikelihoodRequest(lm.tokenizer.decode(first))])
    assert short.logprob == pytest.approx(head, rel=1e-5)


# ---------------------------------------------------------------- metrics


def test_perplexities_are_exp_of_the_weighted_nll() -> None:
    recs = [
        {"logprob": -10.0, "tokens": 5, "words": 2, "bytes": 8},
        {"logprob": -30.0, "tokens": 10, "words": 4, "bytes": 16},
    ]
    m = corpus_metrics(recs)
    assert m["token_perplexity"]["estimate"] == pytest.approx(math.exp(40 / 15))
    assert m["word_perplexity"]["estimate"] == pytest.approx(math.exp(40 / 6))
    assert m["byte_perplexity"]["estimate"] == pytest.approx(math.exp(40 / 24))
    assert m["bits_per_byte"]["estimate"] == pytest.approx(40 / 24 / math.log(2))
    for iv in m.values():
        assert iv["low"] <= iv["estimate"] <= iv["high"] and iv["n"] == 2
    assert word_count("a b\n c") == 3


def test_ratio_bootstrap_interval() -> None:
    num, den = np.array([1.0, 2.0, 3.0, 10.0]), np.array([1.0, 1.0, 1.0, 5.0])
    iv = ratio_bootstrap_interval(num, den, seed=3)
    assert iv.estimate == pytest.approx(16 / 8)
    assert iv.low < iv.estimate < iv.high
    again = ratio_bootstrap_interval(num, den, seed=3)
    assert again == iv  # deterministic given the seed
    ex = ratio_bootstrap_interval(num, den, seed=3, transform=np.exp)
    assert (ex.low, ex.estimate, ex.high) == pytest.approx(
        (math.exp(iv.low), math.exp(2.0), math.exp(iv.high))
    )
    one = ratio_bootstrap_interval([4.0], [2.0])
    assert one.low == one.estimate == one.high == 2.0
    with pytest.raises(ValueError):
        ratio_bootstrap_interval([1.0, 2.0], [1.0])
