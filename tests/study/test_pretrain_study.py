"""A pretraining study end to end (2 conditions x 2 seeds, a toy corpus): results with curves
and comparisons that an independent recomputation from the per-document records matches,
figures, report and a paper whose numbers are the results'; and the spec's refusals."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy import stats

from smollab.analysis.stats import paired_ratio_bootstrap_diff
from smollab.errors import ConfigError
from smollab.io import read_json, read_jsonl
from smollab.report.pretraining import build_pretrain_report
from smollab.report.render import latex_escape
from smollab.study.executor import InlineExecutor
from smollab.study.session import run_study
from smollab.study.spec import loads_spec

SPEC = """\
[study]
name = "toy"
kind = "pretrain"
seeds = [0, 1]
{reference}
[[models]]
name = "tiny"
source = "scratch:gpt2"
config = {{ n_layer = 1, n_head = 2, n_embd = 32, block_size = 64 }}

[[tasks]]
id = "toy"
task = "corpus"
path = "{path}"
test_fraction = 0.25

[[conditions]]
name = "trained"
[conditions.train]
steps = 4
lr = 3e-3
batch_size = 4
seq_len = 32
eval_every = 2
eval_items = 3
threads = 1

[[conditions]]
name = "untrained"
"""


def toy_corpus(path: Path) -> Path:
    rng = np.random.default_rng(0)
    words = "the cat sat on a mat and dog ran to big red ball under tree".split()
    docs = [" ".join(rng.choice(words, size=int(rng.integers(5, 15)))) + "." for _ in range(16)]
    path.write_text("\n\n".join(docs) + "\n")
    return path


def spec_text(path: Path, reference: str = "") -> str:
    return SPEC.format(path=path, reference=reference)


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("pretrain")
    text = spec_text(toy_corpus(tmp / "toy.txt"))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SMOLLAB_HOME", str(tmp / "home"))
        res: Any = run_study(
            loads_spec(text), text, out_root=tmp / "out", executor=InlineExecutor(), pdf=False
        )
    return Path(res.session_dir)


def _docs(session: Path, results: dict[str, Any], cond: str) -> list[list[dict[str, Any]]]:
    return [
        read_jsonl(session / "runs" / r["hash"] / "predictions" / "toy.jsonl")
        for r in results["conditions"][cond]["runs"]
    ]


def test_the_first_baseline_is_the_reference_and_the_comparison_recomputes(
    session: Path,
) -> None:
    res = read_json(session / "results" / "results.json")
    assert res["schema"] == "smollab.pretrain/2"
    # no [study] reference: the first condition evaluated as it is, though listed second
    assert res["reference"] == "untrained"
    (comp,) = res["comparisons"]
    assert comp["condition"] == "trained" and comp["n_seeds"] == comp["n_seeds_reference"] == 2
    # by hand from the per-document records: each condition's NLL and bytes summed over its
    # seeds and documents
    pooled = {}
    for cond in ("trained", "untrained"):
        recs = [r for seed in _docs(session, res, cond) for r in seed]
        nll = -sum(r["logprob"] for r in recs)
        pooled[cond] = nll / sum(r["bytes"] for r in recs) / math.log(2)
        # with bytes shared by every seed, the pooled value is the mean of the seeds'
        means = res["conditions"][cond]["over_seeds"]["bits_per_byte"]["mean"]
        assert pooled[cond] == pytest.approx(means)
    assert comp["pooled_bits_per_byte"] == pytest.approx(
        {"condition": pooled["trained"], "reference": pooled["untrained"]}
    )
    diff = comp["bits_per_byte"]
    assert diff["estimate"] == pytest.approx(pooled["trained"] - pooled["untrained"])
    assert diff["low"] <= diff["estimate"] <= diff["high"]
    # the interval: the same documents, matched by id, resampled together
    ids = [r["id"] for r in _docs(session, res, "untrained")[0]]

    def mat(cond: str, field: str) -> np.ndarray:
        sign = -1.0 if field == "logprob" else 1.0
        return np.array(
            [
                [sign * {r["id"]: r for r in seed}[i][field] for i in ids]
                for seed in _docs(session, res, cond)
            ]
        )

    iv, p = paired_ratio_bootstrap_diff(
        mat("untrained", "logprob"),
        mat("untrained", "bytes"),
        mat("trained", "logprob"),
        mat("trained", "bytes"),
    )
    docs_iv = comp["bits_per_byte_documents"]
    assert (docs_iv["low"], docs_iv["high"]) == pytest.approx(
        (iv.low / math.log(2), iv.high / math.log(2))
    )
    assert comp["p_value_documents"] == pytest.approx(p)
    # seed-to-seed variation: the interval is the hull with Welch's t interval over the
    # seeds' bits per byte, and the test the larger of the two p-values
    seeds = {
        c: mat(c, "logprob").sum(axis=1) / mat(c, "bytes").sum(axis=1) / math.log(2)
        for c in ("trained", "untrained")
    }
    welch = stats.ttest_ind(seeds["trained"], seeds["untrained"], equal_var=False)
    half = welch.confidence_interval(0.95)
    assert (diff["low"], diff["high"]) == pytest.approx(
        (min(docs_iv["low"], half.low), max(docs_iv["high"], half.high))
    )
    assert comp["p_value_seeds"] == pytest.approx(welch.pvalue)
    want_p = max(p, welch.pvalue)
    assert comp["p_value"] == pytest.approx(want_p) and comp["p_holm"] == pytest.approx(want_p)
    # one tokenizer: the token perplexity ratio is the ratio of the pooled perplexities
    ratio = comp["token_perplexity_ratio"]
    tok = {
        c: math.exp(mat(c, "logprob").sum() / mat(c, "tokens").sum())
        for c in ("trained", "untrained")
    }
    assert ratio["estimate"] == pytest.approx(tok["trained"] / tok["untrained"])
    assert comp["verdict"] in ("improvement", "degradation", "no detectable difference")


def test_curves_come_from_each_runs_metrics(session: Path) -> None:
    res = read_json(session / "results" / "results.json")
    assert set(res["curves"]) == {"trained"}  # a condition evaluated as it is has none
    for r in res["conditions"]["trained"]["runs"]:
        rows = read_jsonl(session / "runs" / r["hash"] / "metrics.jsonl")
        curve = res["curves"]["trained"][str(r["seed"])]
        assert [x["loss"] for x in curve["train"]] == [x["loss"] for x in rows]
        assert [x["step"] for x in curve["eval"]] == [2, 4]
        assert [x["val_loss"] for x in curve["eval"]] == [
            x["eval"]["toy/val_loss"] for x in rows if x.get("eval")
        ]


def test_figures_report_and_paper(session: Path) -> None:
    res = read_json(session / "results" / "results.json")
    for stem in ("pretrain_curves", "pretrain_bits_per_byte"):
        for ext in ("png", "pdf"):
            f = session / "figures" / f"{stem}.{ext}"
            assert f.is_file() and f.stat().st_size > 1000
    md = (session / "report.md").read_text()
    assert "figures/pretrain_curves.png" in md and "## Each condition against `untrained`" in md
    comp = res["comparisons"][0]
    d = comp["bits_per_byte"]
    printed = f"{d['estimate']:+.4f} [{d['low']:+.4f}, {d['high']:+.4f}]"
    assert printed in md
    html = (session / "report.html").read_text()
    assert "data:image/png;base64," in html and printed in html
    tex = (session / "paper" / "paper.tex").read_text()
    assert r"\includegraphics[width=0.9\linewidth]{pretrain_curves.pdf}" in tex
    assert printed.replace("-", r"\ensuremath{-}") in tex
    assert str(session.parent.parent / "toy.txt") in tex  # the corpus file, in the setup
    assert r"steps 4, seq\_len 32" in tex
    assert not (session / "paper" / "paper.pdf").exists()  # pdf=False
    # every number the paper prints is the value at its key in results.json
    numbers = read_json(session / "paper" / "numbers.json")["numbers"]
    assert "comparisons.0.bits_per_byte.estimate" in numbers
    assert "conditions.trained.runs.0.metrics.bits_per_byte.low" in numbers
    for key, n in numbers.items():
        if key.endswith(".length"):
            continue
        value: Any = res
        for part in key.split("."):
            value = value[int(part)] if isinstance(value, list) else value[part]
        assert n["value"] == pytest.approx(value), key
        assert latex_escape(n["text"]) in tex.replace(r"\ensuremath{-}", "-"), key


def test_a_report_built_again_is_the_same(session: Path) -> None:
    before = (session / "paper" / "paper.tex").read_text()
    tex, pdf = build_pretrain_report(session, pdf=False)
    assert tex.read_text() == before and pdf is None


def test_the_reference_is_checked(tmp_path: Path) -> None:
    p = toy_corpus(tmp_path / "toy.txt")
    with pytest.raises(ConfigError) as e:
        loads_spec(spec_text(p, 'reference = "big"'), "toy.toml")
    msg = e.value.message
    assert "study.reference names condition 'big', which this study does not have" in msg
    assert "['trained', 'untrained']" in msg
    # a reference alone has nothing to compare with
    alone = spec_text(p, 'reference = "trained"').split('[[conditions]]\nname = "untrained"')[0]
    with pytest.raises(ConfigError, match="'trained', the only condition: there is no other"):
        loads_spec(alone, "toy.toml")
    # a named reference is taken over the default (the baseline)
    spec = loads_spec(spec_text(p, 'reference = "trained"'))
    assert spec.study.reference == "trained"


def test_the_critique_matches_what_the_comparisons_do(session: Path) -> None:
    """The critique says what the comparisons' intervals hold: with several seeds a side they
    are widened over seeds (so no word that they are not), with one seed each they are over
    documents only; and that over four held-out documents no p-value goes below 2^(1-4),
    where the comparison's is held."""
    from smollab.study.pretrain_kind import PretrainKind

    text = (session / "critiques.txt").read_text()
    assert "not in them" not in text and "one seed each" not in text
    assert "Only 4 held-out document(s)" in text and "2^(1-n) (here 0.125)" in text
    res = read_json(session / "results" / "results.json")
    (comp,) = res["comparisons"]
    assert comp["p_value_documents"] >= 0.125 and comp["p_holm"] >= 0.125
    assert comp["verdict"] == "no detectable difference"
    one_each = {**res, "comparisons": [{**comp, "n_seeds": 1, "n_seeds_reference": 1}]}
    text = PretrainKind().critique(one_each)
    assert (
        "- trained against untrained: one seed each, so the interval and p-value are over "
        "documents only"
    ) in text


def test_summary_lines_say_one_document_and_print_numbers_as_the_report() -> None:
    """'1 document' (not '1 documents'); a word perplexity of 8e8 prints as the report's sig
    formatter does (805842974), not as 8.058e+08."""
    from smollab.study.pretrain_kind import summary_lines

    def iv(x: float) -> dict[str, float]:
        return {"estimate": x, "low": x * 0.5, "high": x * 2}

    metrics = {m: iv(3.5) for m in ("token_perplexity", "bits_per_byte")}
    metrics["word_perplexity"] = iv(805842974.2)
    run = {"seed": 0, "metrics": metrics, "final_train_loss": None, "epochs": 256.0,
           "tokens_per_epoch": 12}  # fmt: skip
    results = {"task": "c", "data": {"n_test": 1}, "comparisons": [], "notes": ["a note"],
               "conditions": {"train": {"runs": [run]}}}  # fmt: skip
    lines = summary_lines(results)
    assert lines[0].startswith("Held-out perplexity on c (1 document; ")
    assert "word perplexity 805842974 [402921487, 1611685948]" in lines[1]
    assert "e+0" not in lines[1] and lines[1].endswith("; 256 epochs of 12 training tokens")
    assert lines[-1] == "a note"
