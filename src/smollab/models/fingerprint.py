"""Content digests of local model sources, for run hashes.

A study run is found again by the hash of its spec, and a local model source is a path: without
the content of the files behind it, a model retrained or replaced at the same path would be
served by the runs made from the old one. :func:`source_sha256` is a digest of the files that
:func:`~smollab.models.loader.load_model` reads for a source; sources that are no local path
(the embedded model, a hub id, ``scratch:ARCH``, an API model) have none, so their runs' hashes
stay what they were.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from smollab.errors import SmollabError
from smollab.io import file_sha256

#: the files of a model folder that loading it reads: weights, configs (the model's, a LoRA
#: adapter's, generation), tokenizer files and the chat template; other files (a README, logs)
#: change no loaded model and are left out
MODEL_FILE_SUFFIXES = (
    ".safetensors",
    ".bin",
    ".pt",
    ".pth",
    ".gguf",
    ".json",
    ".txt",
    ".model",
    ".jinja",
    ".tiktoken",
)


def folder_sha256(folder: Path) -> str:
    """A SHA-256 over the sorted names and contents (:func:`~smollab.io.file_sha256`) of the
    model files directly in ``folder`` (:data:`MODEL_FILE_SUFFIXES`; hidden files aside)."""
    h = hashlib.sha256()
    for f in sorted(folder.iterdir()):
        if f.is_file() and not f.name.startswith(".") and f.name.endswith(MODEL_FILE_SUFFIXES):
            h.update(f"{f.name}\0{file_sha256(f)}\n".encode())
    return h.hexdigest()


def source_sha256(source: str) -> str | None:
    """The digest of what loading the model ``source`` reads, or None for a source that is no
    local path (or one that cannot be loaded: the spec checks refuse it with the reason).

    * a ``.gguf`` file: its SHA-256;
    * a model folder: :func:`folder_sha256`;
    * a study run folder (or a LoRA run's ``ckpt/final``): what the loader builds the run's
      model from (:func:`~smollab.models.loader.load_run`): the model part of its
      ``spec.json``, its seed and training method, its base source's digest (recursively), its
      tokenizer folder's, and its checkpoint ``ckpt/final`` when it trained."""
    from smollab.models.loader import local_model_path

    try:
        local = local_model_path(source)
        if local is None:
            return None
        kind, path = local
        if kind == "gguf":
            return file_sha256(path)
        if kind == "dir":
            return folder_sha256(path)
        return _run_sha256(path)
    except (SmollabError, OSError):
        return None


def tokenizer_sha256(name: str | None) -> str | None:
    """The digest (:func:`folder_sha256`) of a from-scratch model's tokenizer folder; None for
    the character tokenizer or a name that is no folder (the spec checks refuse that)."""
    from smollab.models.loader import tokenizer_dir

    try:
        folder = tokenizer_dir(name)
        return None if folder is None else folder_sha256(folder)
    except (SmollabError, OSError):
        return None


def _run_sha256(run_dir: Path) -> str:
    from smollab.study.worker import load_run_spec

    spec = load_run_spec(run_dir)  # checked by local_model_path
    model = spec.model
    parts = {
        "model": model.model_dump(mode="json", exclude={"name"}),
        "seed": spec.seed,
        "method": spec.train.method if spec.train is not None else None,
        "source_sha256": source_sha256(model.source),
        "tokenizer_sha256": tokenizer_sha256(model.tokenizer),
        "ckpt": (folder_sha256(run_dir / "ckpt" / "final") if spec.train is not None else None),
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()
