"""Content digests of local model sources: the same files give the same digest wherever they
lie, changed weights another; a run folder's digest follows its checkpoint and its base model;
names (embedded, hub ids, scratch, API models) have none. And `smollab eval`'s weights key
follows the weights read from a path."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from smollab.models import load_model
from smollab.models.fingerprint import source_sha256, tokenizer_sha256
from tests.conftest import TINY_SPEC, tiny_lm


def save_tiny(folder: Path, seed: int) -> Path:
    """A tiny random GPT-2 (char tokenizer) saved as a Hugging Face model folder."""
    lm = tiny_lm("gpt2", seed=seed)
    lm.model.save_pretrained(folder)
    lm.tokenizer.save_pretrained(folder)
    return folder


def test_a_model_folder_is_hashed_by_its_files(tmp_path: Path) -> None:
    model = save_tiny(tmp_path / "model", seed=0)
    digest = source_sha256(str(model))
    assert digest is not None and len(digest) == 64
    assert source_sha256(str(model)) == digest
    # the same files elsewhere: the same digest (the path is hashed beside it, as given)
    assert source_sha256(str(shutil.copytree(model, tmp_path / "copy"))) == digest
    # files the loader does not read change nothing
    (model / "README.md").write_text("notes")
    (model / ".DS_Store").write_bytes(b"\0")
    assert source_sha256(str(model)) == digest
    # retrained at the same path: same names and sizes, other weights
    size = (model / "model.safetensors").stat().st_size
    save_tiny(model, seed=1)
    assert (model / "model.safetensors").stat().st_size == size
    assert source_sha256(str(model)) != digest
    # so does a changed tokenizer or config
    save_tiny(model, seed=0)
    assert source_sha256(str(model)) == digest
    cfg = json.loads((model / "config.json").read_text())
    (model / "config.json").write_text(json.dumps({**cfg, "layer_norm_epsilon": 1e-6}))
    assert source_sha256(str(model)) != digest


def test_a_gguf_file_is_hashed_by_its_bytes(tmp_path: Path) -> None:
    import hashlib

    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF one")
    assert source_sha256(str(gguf)) == hashlib.sha256(b"GGUF one").hexdigest()


def test_names_have_no_digest(tmp_path: Path) -> None:
    for source in (
        "smollm2-135m",
        "scratch:gpt2",
        "HuggingFaceTB/SmolLM2-135M",
        "openai:gpt-4o-mini",
        str(tmp_path / "missing"),  # refused by the spec checks, with the reason
        str(tmp_path / "missing.gguf"),
    ):
        assert source_sha256(source) is None, source
    assert tokenizer_sha256(None) is None and tokenizer_sha256("char") is None
    tok = tmp_path / "tok"
    tiny_lm("gpt2").tokenizer.save_pretrained(tok)
    digest = tokenizer_sha256(str(tok))
    assert digest is not None
    (tok / "tokenizer_config.json").write_text("{}")
    assert tokenizer_sha256(str(tok)) != digest


LORA = TINY_SPEC.replace("steps = 4\n", 'method = "lora"\nsteps = 4\n')


def fake_run(folder: Path, source: str | None = None) -> Path:
    """A finished LoRA run folder of the tiny spec (optionally on ``source``), with a
    stand-in adapter: the digest reads files, it loads nothing."""
    from smollab.study.runspec import expand
    from smollab.study.spec import loads_spec
    from smollab.study.worker import prepare_run_dir
    from tests.conftest import with_source

    text = LORA if source is None else with_source(LORA, source)
    run = next(r for r in expand(loads_spec(text, "s.toml")) if r.train is not None)
    prepare_run_dir(folder, run)
    (folder / "record.json").write_text("{}")
    final = folder / "ckpt" / "final"
    final.mkdir(parents=True)
    (final / "adapter_config.json").write_text('{"r": 16}')
    (final / "adapter_model.safetensors").write_bytes(b"adapter one")
    return folder


def test_a_run_is_hashed_by_its_checkpoint_and_its_base(tmp_path: Path) -> None:
    run = fake_run(tmp_path / "run")
    digest = source_sha256(str(run))
    assert digest is not None
    # its ckpt/final names the same run, so the same model
    assert source_sha256(str(run / "ckpt" / "final")) == digest
    (run / "ckpt" / "final" / "adapter_model.safetensors").write_bytes(b"adapter two")
    assert source_sha256(str(run)) != digest

    # a run on a local model: its digest follows the base model's files too
    base = save_tiny(tmp_path / "base", seed=0)
    on_base = fake_run(tmp_path / "on-base", source=str(base))
    before = source_sha256(str(on_base))
    save_tiny(base, seed=1)
    assert source_sha256(str(on_base)) not in (None, before)


def test_the_eval_weights_key_follows_the_files_at_a_path(tmp_path: Path) -> None:
    """`smollab eval`'s request cache and samples key (model_key) hashes the loaded weights,
    so a model retrained at the same path does not resume from its old samples."""
    from smollab.eval.harness import model_key

    model = save_tiny(tmp_path / "model", seed=0)
    key = model_key(load_model(model))
    assert model_key(load_model(model)) == key
    save_tiny(model, seed=1)
    assert model_key(load_model(model)) != key


def test_the_eval_key_follows_the_tokenizer_beside_unchanged_weights(tmp_path: Path) -> None:
    """A tokenizer edited at the same path (here its normalizer lower-cases the text) encodes
    the requests differently: the eval key changes though the weights did not, so no cached
    result or samples file of the old tokenizer is reused."""
    from tokenizers import normalizers

    from smollab.eval.harness import model_key
    from smollab.eval.lm import HFLM, tokenizer_fingerprint, weights_fingerprint

    model = save_tiny(tmp_path / "model", seed=0)
    before = load_model(model)
    key, tok_key = model_key(before), tokenizer_fingerprint(before.tokenizer)
    default_key = HFLM(before.model, before.tokenizer).model_key
    ids = before.tokenizer("AbC").input_ids
    edited = before.tokenizer
    edited.backend_tokenizer.normalizer = normalizers.Lowercase()
    edited.save_pretrained(model)
    after = load_model(model)
    assert after.tokenizer("AbC").input_ids != ids  # the edit changes what the model reads
    assert weights_fingerprint(after.model) == weights_fingerprint(before.model)
    assert tokenizer_fingerprint(after.tokenizer) != tok_key
    assert model_key(after) != key
    assert HFLM(after.model, after.tokenizer).model_key != default_key
    # and a reload of the same files gives the same keys
    assert model_key(load_model(model)) == model_key(after)
