"""A run's hash covers the content of a local model source, not only its path: a model
retrained at the same path is studied again instead of being served by the old runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from smollab.io import read_json
from smollab.models.fingerprint import source_sha256, tokenizer_sha256
from smollab.study.executor import InlineExecutor
from smollab.study.problem import load_problem
from smollab.study.runspec import expand
from smollab.study.session import run_study
from smollab.study.spec import loads_spec
from tests.conftest import REPO, TINY_SPEC, ensure_report, tiny_lm, with_source
from tests.models.test_fingerprint import save_tiny

# the tiny spec's baseline alone, one seed: evaluating a model folder as it is
BASELINE = (
    TINY_SPEC.replace("seeds = [0, 1]", "seeds = [0]").split('[[conditions]]\nname = "ft"')[0]
    + "[eval]\nbatch_size = 16\n"
)


def test_a_study_of_a_retrained_model_does_not_reuse_its_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ensure_report(monkeypatch)
    model = save_tiny(tmp_path / "model", seed=0)
    text = with_source(BASELINE, str(model))
    (run,) = expand(loads_spec(text))
    assert run.content()["model"]["source_sha256"] == source_sha256(str(model))
    first = run.hash  # a RunSpec's hash is computed from the files as they are now
    assert [r.hash for r in expand(loads_spec(text))] == [first]  # same files, same hash

    runs = tmp_path / "out" / "tiny" / "runs"
    run_study(loads_spec(text), text, out_root=tmp_path / "out", executor=InlineExecutor(),
              pdf=False)  # fmt: skip
    assert [p.name for p in runs.iterdir()] == [first]

    save_tiny(model, seed=1)  # retrained in place: same path, same spec text
    (again,) = expand(loads_spec(text))
    assert again.hash != first
    run_study(loads_spec(text), text, out_root=tmp_path / "out", executor=InlineExecutor(),
              pdf=False)  # fmt: skip
    assert sorted(p.name for p in runs.iterdir()) == sorted([first, again.hash])
    # evaluated anew (the folder did not exist before), not served by the old run
    assert read_json(runs / again.hash / "record.json")["hash"] == again.hash


def test_names_are_hashed_as_before() -> None:
    """Sources that are names (the embedded model, hub ids, scratch) get no digest: the demo's
    run hashes (BENCHMARKS.md) are those of every release since c5642e3, and the tiny spec's
    are pinned by test_arithmetic_run_hashes_are_unchanged."""
    demo = load_problem(REPO / "problems" / "multiplication.md").spec
    assert demo.models[0].source == "smollm2-135m"
    assert sorted(r.hash for r in expand(demo)) == [
        "0eda09ea0443f16d",
        "3feb42b3cc136ae4",
        "4b48c647ef664331",
        "66348acf16dc84b9",
    ]
    for r in expand(loads_spec(TINY_SPEC)):
        assert {"source_sha256", "tokenizer_sha256"}.isdisjoint(r.content()["model"])


def test_a_scratch_models_tokenizer_folder_is_content(tmp_path: Path) -> None:
    tok = tmp_path / "tok"
    tiny_lm("gpt2").tokenizer.save_pretrained(tok)
    text = TINY_SPEC.replace('tokenizer = "char"', f'tokenizer = "{tok}"')
    run = expand(loads_spec(text))[0]
    assert run.content()["model"]["tokenizer_sha256"] == tokenizer_sha256(str(tok))
    first = run.hash
    (tok / "tokenizer_config.json").write_text("{}")
    assert expand(loads_spec(text))[0].hash != first
