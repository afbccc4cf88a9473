"""Study specs: the models, their sources and tokenizers, and the generation budgets they allow,
checked when the spec is parsed (one-paragraph messages naming file, field and value)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from smollab.errors import ConfigError
from smollab.study.spec import loads_spec
from tests.conftest import SHARED, with_source

SPEC = """\
[study]
name = "s"
seeds = [0]

[[models]]
name = "tiny"
source = "scratch:gpt2"
tokenizer = "char"
config = { n_layer = 1, n_head = 2, n_embd = 32, block_size = 64 }

[[tasks]]
id = "add"
task = "arith.add"
strata = ["1x1"]
n_test = 4

[[conditions]]
name = "baseline"
"""


def bad(text: str) -> str:
    with pytest.raises(ConfigError) as e:
        loads_spec(text, "s.toml")
    msg = str(e.value)
    assert msg.startswith("s.toml: ")
    assert "\n" not in msg.strip(), "one paragraph"
    assert e.value.exit_code == 2
    return msg


def toml_str(s: str) -> str:
    return json.dumps(s)  # a TOML basic string for any path


# ---------------------------------------------------------------- models no condition uses


def test_a_model_no_condition_uses_is_refused() -> None:
    other = '\n[[models]]\nname = "other"\nsource = "scratch:llama"\n'
    text = SPEC.replace("\n[[tasks]]", other + "\n[[tasks]]", 1)
    msg = bad(text)
    assert "models[1] ('other') is used by no condition" in msg
    assert "Remove models[1]" in msg and "add a condition with model = 'other'" in msg
    # named by a condition, it is studied
    spec = loads_spec(text + '\n[[conditions]]\nname = "b2"\nmodel = "other"\n', "s.toml")
    assert [m.name for m in spec.models] == ["tiny", "other"]


def test_the_first_model_is_used_by_a_condition_without_model() -> None:
    other = '\n[[models]]\nname = "other"\nsource = "scratch:llama"\n'
    text = SPEC.replace("\n[[tasks]]", other + "\n[[tasks]]", 1)
    text = text.replace('name = "baseline"\n', 'name = "baseline"\nmodel = "other"\n')
    msg = bad(text)  # now 'tiny' is the one no condition uses
    assert "models[0] ('tiny') is used by no condition" in msg


# ---------------------------------------------------------------- sources


@pytest.mark.parametrize("source", ["", "   "])
def test_an_empty_source_is_refused(source: str) -> None:
    msg = bad(with_source(SPEC, source))
    assert "field 'models[0].source' is empty (model 'tiny')" in msg
    assert "Model directory ." not in msg


@pytest.mark.parametrize(
    ("source", "says"),
    [
        ("/no/such/model", "Model path /no/such/model does not exist"),
        ("./no-such-model", "does not exist"),
        ("~/no-such-smollab-model", "does not exist"),
        ("no-such-model.gguf", "GGUF file no-such-model.gguf does not exist"),
    ],
)
def test_a_missing_local_model_is_refused(
    source: str, says: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    msg = bad(with_source(SPEC, source))
    assert f"field 'models[0].source' is {source!r} (model 'tiny')" in msg
    assert says in msg and "Check the path" in msg


def test_a_file_or_a_directory_that_is_no_model_is_refused(tmp_path: Path) -> None:
    f = tmp_path / "weights.bin"
    f.write_text("x")
    msg = bad(with_source(SPEC, str(f)))
    assert "field 'models[0].source'" in msg and "is a file but not a .gguf file" in msg
    msg = bad(with_source(SPEC, str(tmp_path)))
    assert "field 'models[0].source'" in msg
    assert f"Model directory {tmp_path} has no config.json" in msg


def test_loadable_sources_pass_without_loading(tmp_path: Path) -> None:
    model_dir = tmp_path / "ckpt"
    model_dir.mkdir()
    (model_dir / "config.json").write_text("{}")
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF")
    for source in (str(model_dir), str(gguf), "smollm2-135m", "org/name", "gpt2"):
        spec = loads_spec(with_source(SPEC, source), "s.toml")  # hub ids: checked at the start
        assert spec.models[0].source == source


# ---------------------------------------------------------------- tokenizers


@pytest.mark.parametrize(("tok", "why"), [("/nonexistent", "does not exist"), ("", "is empty")])
def test_a_missing_tokenizer_is_refused(tok: str, why: str) -> None:
    msg = bad(SPEC.replace('tokenizer = "char"', f"tokenizer = {toml_str(tok)}"))
    assert f"field 'models[0].tokenizer' is {tok!r} (model 'tiny')" in msg
    assert why in msg and "Use 'char'" in msg


def test_a_tokenizer_file_is_refused(tmp_path: Path) -> None:
    f = tmp_path / "tokenizer.json"
    f.write_text("{}")
    msg = bad(SPEC.replace('tokenizer = "char"', f"tokenizer = {toml_str(str(f))}"))
    assert "field 'models[0].tokenizer'" in msg and "is not a directory" in msg


def test_char_and_a_tokenizer_directory_pass() -> None:
    loads_spec(SPEC.replace('tokenizer = "char"\n', ""), "s.toml")  # the default, 'char'
    tok = SHARED / "gpt2-tokenizer"
    if not tok.is_dir():
        pytest.skip("needs the shared GPT-2 tokenizer")
    loads_spec(SPEC.replace('tokenizer = "char"', f"tokenizer = {toml_str(str(tok))}"), "s.toml")


# ---------------------------------------------------------------- code task settings


def test_greedy_sampling_error_names_file_and_field() -> None:
    task = '\n[[tasks]]\nid = "he"\ntask = "humaneval"\nn_samples = 2\ntemperature = 0\n'
    msg = bad(SPEC.replace("\n[[conditions]]", task + "\n[[conditions]]", 1))
    assert "s.toml: tasks[1]: field 'temperature'" in msg
    assert "n_samples=2 with temperature=0 would draw the same greedy completion" in msg


@pytest.mark.parametrize("k", ["[0]", "[1, -1]"])
def test_pass_at_k_below_one_is_refused(k: str) -> None:
    task = f'\n[[tasks]]\nid = "he"\ntask = "humaneval"\nk = {k}\nmax_tokens = 16\n'
    msg = bad(SPEC.replace("\n[[conditions]]", task + "\n[[conditions]]", 1))
    assert "s.toml: tasks[1]: field 'k'" in msg and "k values of at least 1" in msg
    ok = task.replace(f"k = {k}", "k = [1]")
    loads_spec(SPEC.replace("\n[[conditions]]", ok + "\n[[conditions]]", 1), "s.toml")


# ---------------------------------------------------------------- generation budgets


def with_task(text: str, task: str) -> str:
    return text.replace("\n[[conditions]]", f'\n[[tasks]]\nid = "t"\n{task}\n[[conditions]]', 1)


def test_a_generation_budget_that_fills_a_scratch_window_is_refused() -> None:
    msg = bad(with_task(SPEC, 'task = "humaneval"'))
    assert "field 'tasks[1].max_tokens' is 512 (the default; task 't')" in msg
    assert "model 'tiny': 64 tokens (config.block_size = 64)" in msg
    assert "Set tasks[1].max_tokens well below 64" in msg
    assert "models[0].config.block_size" in msg
    msg = bad(with_task(SPEC, 'task = "gsm8k"\nmax_tokens = 64'))
    assert "field 'tasks[1].max_tokens' is 64 (task 't')" in msg
    loads_spec(with_task(SPEC, 'task = "gsm8k"\nmax_tokens = 63'), "s.toml")
    loads_spec(with_task(SPEC, 'task = "mbpp"\nmax_tokens = 32'), "s.toml")


def test_the_budget_is_checked_for_every_evaluated_model() -> None:
    llama = '\n[[models]]\nname = "small"\nsource = "scratch:llama"\nconfig = { block_size = 32 }\n'
    text = SPEC.replace("\n[[tasks]]", llama + "\n[[tasks]]", 1)
    text += '\n[[conditions]]\nname = "b2"\nmodel = "small"\n'
    msg = bad(with_task(text, 'task = "gsm8k"\nmax_tokens = 40'))
    assert "tasks[1].max_tokens' is 40" in msg and "model 'small': 32 tokens" in msg


def test_a_local_models_window_is_read_from_its_config(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"n_positions": 128}))
    text = with_source(SPEC, str(tmp_path))
    msg = bad(with_task(text, 'task = "gsm8k"'))  # default max_tokens 256
    assert "is 256 (the default; task 't')" in msg and "128 tokens (n_positions = 128" in msg
    loads_spec(with_task(text, 'task = "gsm8k"\nmax_tokens = 100'), "s.toml")


def test_windows_not_known_without_loading_are_left_to_the_run() -> None:
    for source in ("smollm2-135m", "org/name", "openai:gpt-4o-mini"):
        loads_spec(with_task(with_source(SPEC, source), 'task = "gsm8k"\nmax_tokens = 100000'))
