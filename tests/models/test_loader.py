"""Model loading: scratch configs, the char tokenizer, local dirs, and clear load errors."""

from __future__ import annotations

import re
import string
from pathlib import Path

import pytest
import torch

from smollab.errors import ConfigError, ModelLoadError
from smollab.models import char_tokenizer, load_model, resolve_source
from tests.conftest import TINY_CONFIG, tiny_lm


def test_char_tokenizer_round_trip() -> None:
    tok = char_tokenizer()
    texts = [
        "Q: What is 7 * 8? A: 56\n",
        "23*47=1801\nline two\n\n  indented  \n",
        "".join(c for c in string.printable if c not in "\t\r\x0b\x0c"),
        " leading and trailing spaces ",
        "a , b . c ! d ? e's n't",  # tokenization clean-up would mangle these
    ]
    for s in texts:
        ids = tok(s, add_special_tokens=False).input_ids
        assert len(ids) == len(s)  # one token per character
        assert tok.unk_token_id not in ids
        assert tok.decode(ids) == s
    assert tok(string.digits).input_ids == tok(string.digits, add_special_tokens=False).input_ids
    assert tok.pad_token_id == 0 and tok.eos_token_id == 1
    assert len({tok.convert_tokens_to_ids(c) for c in "0123456789\n"}) == 11


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
def test_scratch_models_load(arch: str) -> None:
    lm = tiny_lm(arch)
    assert lm.info["kind"] == "scratch"
    assert lm.info["model_type"] == arch
    assert lm.model.config.vocab_size == len(lm.tokenizer)
    assert 0 < lm.info["n_params"] < 100_000
    ids = lm.tokenizer("12+34=", return_tensors="pt").input_ids
    with torch.no_grad():
        logits = lm.model(ids).logits
    assert logits.shape == (1, 6, len(lm.tokenizer))
    assert not lm.model.training


def test_scratch_init_is_seeded() -> None:
    a, b, c = tiny_lm("gpt2", seed=0), tiny_lm("gpt2", seed=0), tiny_lm("gpt2", seed=1)
    wa, wb, wc = (m.model.get_input_embeddings().weight for m in (a, b, c))
    assert torch.equal(wa, wb)
    assert not torch.equal(wa, wc)


def test_scratch_config_errors() -> None:
    with pytest.raises(ConfigError, match="n_layers"):
        load_model("scratch:gpt2", config={"n_layers": 2})
    with pytest.raises(ConfigError, match="divisible"):
        load_model("scratch:gpt2", config={**TINY_CONFIG, "n_head": 3})
    with pytest.raises(ConfigError, match="'mamba'"):
        load_model("scratch:mamba", config=TINY_CONFIG)


def test_local_dir_round_trip(tmp_path: Path) -> None:
    lm = tiny_lm("llama")
    lm.model.save_pretrained(tmp_path)
    lm.tokenizer.save_pretrained(tmp_path)
    assert resolve_source(str(tmp_path)) == ("dir", tmp_path)
    again = load_model(str(tmp_path))
    assert again.info["kind"] == "dir"
    ids = lm.tokenizer("7*8=", return_tensors="pt").input_ids
    with torch.no_grad():
        assert torch.allclose(lm.model(ids).logits, again.model(ids).logits, atol=1e-6)
    assert again.tokenizer.decode(again.tokenizer("7*8=\n").input_ids) == "7*8=\n"
    # config and tokenizer belong to scratch models: a saved model is not silently resized
    with pytest.raises(ConfigError, match="config given for model .* only from-scratch"):
        load_model(str(tmp_path), config={"n_layer": 4})
    with pytest.raises(ConfigError, match="tokenizer given"):
        load_model(str(tmp_path), tokenizer="char")


def test_prompt_longer_than_the_window_is_a_clear_error() -> None:
    from smollab.eval.generate import greedy_generate

    lm = tiny_lm("gpt2")  # block_size 64
    with pytest.raises(ConfigError, match="A prompt of 69 tokens plus max_new_tokens=4 .* 64"):
        greedy_generate(lm.model, lm.tokenizer, ["1" * 69], max_new_tokens=4)
    assert greedy_generate(lm.model, lm.tokenizer, ["1" * 40], max_new_tokens=4)


def test_dir_without_config_is_model_load_error(tmp_path: Path) -> None:
    (tmp_path / "weights.bin").write_bytes(b"")
    with pytest.raises(ModelLoadError) as e:
        load_model(str(tmp_path))
    assert str(tmp_path) in str(e.value) and "config.json" in str(e.value)
    assert e.value.exit_code == 2


def test_missing_gguf_is_model_load_error(tmp_path: Path) -> None:
    missing = tmp_path / "model.gguf"
    with pytest.raises(ModelLoadError) as e:
        load_model(str(missing))
    assert str(missing) in str(e.value) and "does not exist" in str(e.value)


def test_bad_gguf_file_is_model_load_error(tmp_path: Path) -> None:
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"not a gguf file")
    with pytest.raises(ModelLoadError, match="GGUF"):
        load_model(str(junk))


def test_missing_local_path_is_model_load_error(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="does not exist"):
        load_model(str(tmp_path / "nope"))
    with pytest.raises(ModelLoadError, match="does not exist"):
        load_model("./surely/not/here")


def test_unknown_hub_model_offline_says_how_to_fix() -> None:
    assert resolve_source("nonexistent-org/nonexistent-model") == (
        "hub",
        "nonexistent-org/nonexistent-model",
    )
    with pytest.raises(ModelLoadError) as e:
        load_model("nonexistent-org/nonexistent-model")
    msg = str(e.value)
    assert "'nonexistent-org/nonexistent-model'" in msg
    assert "--local-dir" in msg and "pass the directory" in msg


def test_tokenizer_option_errors(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="'bpe-nonexistent'"):
        load_model("scratch:gpt2", tokenizer="bpe-nonexistent", config=TINY_CONFIG)


def test_device_names_are_checked_before_loading(monkeypatch: pytest.MonkeyPatch) -> None:
    from smollab.models import resolve_device

    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(ConfigError, match="'gpu' is not a device name.*'cuda'"):
        load_model("scratch:gpt2", tokenizer="char", config=dict(TINY_CONFIG), device="gpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")
    with pytest.raises(ConfigError, match="no CUDA device is available.*Use 'cpu'"):
        load_model("scratch:gpt2", tokenizer="char", config=dict(TINY_CONFIG), device="cuda")


@pytest.mark.parametrize(
    ("source", "says"),
    [
        ("openai:gpt-4o-mini", "is an API model"),
        ("anthropic:claude-x", "smollab eval --model anthropic:claude-x"),
        ("org/name/extra", "not an embedded model"),
        ("bad name!", "Check the spelling"),
    ],
)
def test_unloadable_sources_are_clear_errors(source: str, says: str) -> None:
    """Sources that are neither paths nor hub ids fail in resolve_source with a ModelLoadError
    (before: the hub client's validation error escaped as a traceback)."""
    with pytest.raises(ModelLoadError, match=re.escape(says)):
        resolve_source(source)
    with pytest.raises(ModelLoadError, match=re.escape(repr(source))):
        load_model(source)


def test_an_adapter_folder_outside_its_run_is_named_as_an_adapter(tmp_path: Path) -> None:
    """QA: load_model(<LoRA run>/ckpt/final) said only "no config.json". A run's adapter in
    its run folder loads as the run (tests/models/test_load_run.py); moved out of it, or under
    a spec.json that is no run's, it is named for what it is."""
    alone = tmp_path / "adapter"
    alone.mkdir()
    (alone / "adapter_config.json").write_text("{}")
    with pytest.raises(ModelLoadError) as e:
        load_model(alone)  # a Path, as a researcher would pass it
    msg = str(e.value)
    assert "holds a LoRA adapter" in msg and "Load the base model with load_model" in msg
    assert "PeftModel.from_pretrained" in msg and "as does the run folder itself" in msg

    run = tmp_path / "runs" / "abc"
    final = run / "ckpt" / "final"
    final.mkdir(parents=True)
    (final / "adapter_config.json").write_text("{}")
    (run / "spec.json").write_text('{"model": {"source": "smollm2-135m"}}')
    with pytest.raises(ModelLoadError, match=r"has a spec.json that is not a study run's"):
        load_model(final)


def test_a_misspelt_embedded_name_is_pointed_at_the_embedded_model() -> None:
    """QA: "smollm2-135M" went to the hub and came back with a download hint."""
    with pytest.raises(ModelLoadError, match="did you mean the embedded 'smollm2-135m'"):
        load_model("smollm2-135M")
