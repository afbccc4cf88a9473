"""The study spec: TOML validated by pydantic (``extra="forbid"`` everywhere).

A study is models x conditions x seeds, each evaluated on every task. A condition without a
``[conditions.train]`` table is a baseline (evaluation only, one run: greedy decoding does not
depend on a seed). The spec opens with the command that runs it, e.g.::

    # smollab study studies/multiplication.toml
    [study]
    name = "multiplication"
    seeds = [0, 1, 2]

    [[models]]
    name = "smollm2-135m"
    source = "smollm2-135m"

    [[tasks]]
    id = "mul"
    task = "arith.mul"
    strata = ["1x1", "1x2", "2x2", "3x3"]

    [[conditions]]
    name = "baseline"
    format = "fewshot"

    [[conditions]]
    name = "finetune_full"
    format = "compact_rev"
    [conditions.train]
    method = "full"
    steps = 300
"""

from __future__ import annotations

import difflib
import json
import math
import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from smollab.errors import ConfigError
from smollab.io import NAME_PATTERN


def _distinct_seeds(v: list[int]) -> list[int]:
    if len(set(v)) != len(v):
        raise ValueError("seeds must be distinct (a repeated seed is the same run)")
    return v


# a seed is a whole number in numpy's range (true/false and 1.0 are refused, not read as ints);
# a list of seeds has at least one and no repeats
Seed = Annotated[int, Field(strict=True, ge=0, le=2**32 - 1)]
Seeds = Annotated[list[Seed], Field(min_length=1), AfterValidator(_distinct_seeds)]


#: validation context key of a spec read back from a run folder (checked when it was written)
STORED = "stored"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class StudyMeta(_Strict):
    """``[study]``: names and the seeds every trained condition is run with."""

    name: str = Field(pattern=NAME_PATTERN, description="session/folder-safe name")
    title: str = ""
    question: str = ""
    kind: str = Field(
        "lm",
        description="what the study runs: 'lm' (language models on generative tasks) or "
        "'grok' (small models from scratch on the grokking tasks) or 'pretrain' (language "
        "models pretrained on a raw-text corpus, held-out perplexity); see smollab.study.kinds",
    )
    seeds: Seeds = Field(default_factory=lambda: [0, 1, 2])
    targets: dict[str, float] = Field(
        default_factory=dict,
        description="success criteria: 'task/stratum' -> minimum exact match of the best "
        "trained condition; the report states which are met (the whole 95% interval at or "
        "above the target) and which only by the point estimate",
    )
    reference: str | None = Field(
        None,
        description="the condition every other condition is compared with: in a grokking "
        "study any condition (default: the first); in a pretraining study any condition "
        "(default: the first baseline, else the first); in a language-model study a trained "
        "condition, which the other trained conditions are compared with besides the baseline "
        "(default: none)",
    )

    @field_validator("targets")
    @classmethod
    def _targets(cls, v: dict[str, float]) -> dict[str, float]:
        for k, x in v.items():
            if k.count("/") != 1:
                raise ValueError(f"target keys are 'task/stratum', got {k!r}")
            if not 0 <= x <= 1:
                raise ValueError(f"target {k!r} must be an accuracy in [0, 1], got {x}")
        return v


class ModelSpec(_Strict):
    """``[[models]]``: what to load (see :func:`smollab.models.load_model` for ``source``)."""

    name: str
    source: str = Field(
        description="'smollm2-135m' (embedded), a hub id, a local dir, a .gguf file, a finished "
        "study run folder (outputs/SESSION/runs/HASH: its trained model), or 'scratch:gpt2' / "
        "'scratch:llama' for a from-scratch model"
    )
    tokenizer: str | None = Field(
        None, description="scratch models: 'char' (default) or a tokenizer dir"
    )
    config: dict[str, Any] = Field(
        default_factory=dict, description="scratch models: overrides such as n_layer, n_embd"
    )
    base_url: str | None = Field(
        None,
        description="API models ('openai:MODEL'): an OpenAI-compatible server (vLLM, Ollama, "
        "llama.cpp) instead of the OpenAI API",
    )

    @property
    def is_api(self) -> bool:
        """An API model (``anthropic:MODEL`` / ``openai:MODEL``): evaluated through its
        provider, never loaded or trained."""
        from smollab.sources import is_api_source

        return is_api_source(self.source)


class TrainSpec(_Strict):
    """``[conditions.train]``: supervised fine-tuning (loss on answer tokens only)."""

    method: Literal["full", "lora"] = "full"
    steps: int = Field(200, ge=1)
    lr: float = Field(5e-5, gt=0)
    min_lr_ratio: float = Field(0.1, ge=0, le=1, description="final lr / peak lr (cosine)")
    warmup_steps: int = Field(10, ge=0)
    weight_decay: float = Field(0.0, ge=0)
    betas: tuple[float, float] = Field((0.9, 0.95), strict=False)
    grad_clip: float = Field(1.0, ge=0, description="0 disables clipping")
    batch_size: int = Field(8, ge=1, description="sequences per micro-batch")
    grad_accum: int = Field(1, ge=1, description="micro-batches per optimizer step")
    seq_len: int = Field(128, ge=8, description="packed sequence length in tokens")
    pack: bool = Field(True, description="pack several examples per sequence")
    weights: dict[str, float] = Field(
        default_factory=dict, description="training mixture: sampling weight per stratum"
    )
    task: str | None = Field(None, description="task id to train on (default: the first task)")
    eval_every: int = Field(50, ge=0, description="steps between held-out evaluations (0: off)")
    eval_items: int = Field(32, ge=1, description="held-out items per stratum at each evaluation")
    checkpoint_every: int = Field(50, ge=1)
    lora_r: int = Field(16, ge=1)
    lora_alpha: float = Field(32, gt=0)
    lora_dropout: float = Field(0.0, ge=0, lt=1)
    lora_targets: list[str] = Field(default_factory=lambda: ["all-linear"])
    freeze_embeddings: bool = False
    bf16_autocast: bool = Field(False, description="CPU/GPU bf16 autocast for speed")
    compile: bool = Field(
        False,
        description="torch.compile the decoder layers (tens of seconds up front; pays on "
        "long runs; SMOLLAB_COMPILE=1 turns it on everywhere)",
    )
    threads: int | None = Field(None, ge=1, description="torch threads (default: all cores)")

    @field_validator("weights")
    @classmethod
    def _nonneg(cls, v: dict[str, float]) -> dict[str, float]:
        bad = {k: w for k, w in v.items() if w < 0}
        if bad:
            raise ValueError(f"weights must be >= 0, got {bad}")
        return v

    @model_validator(mode="after")
    def _warmup_within_run(self, info: ValidationInfo) -> TrainSpec:
        # the default (10) on a shorter run is a plain ramp, as it always was; a warm-up the
        # user set that never ends means the run never trains at the lr it names. A run's
        # stored spec.json sets every field, the default included, and was checked when its
        # study was parsed: it is not checked again (STORED).
        stored = isinstance(info.context, dict) and info.context.get(STORED)
        if (
            not stored
            and "warmup_steps" in self.model_fields_set
            and self.warmup_steps >= self.steps
        ):
            raise ValueError(
                f"warmup_steps = {self.warmup_steps} is not below steps = {self.steps}, so the "
                f"learning rate would never reach lr = {self.lr:g}; use fewer warm-up steps or "
                "more steps"
            )
        return self


class ConditionSpec(_Strict):
    """``[[conditions]]``: one arm of the study."""

    name: str = Field(pattern=NAME_PATTERN)
    model: str | None = Field(None, description="model name (default: the first model)")
    format: str = Field(
        "plain",
        description="prompt format for training and evaluation (default: plain; on text tasks "
        "text); it must fit the tasks: arithmetic formats for arith.*, text formats for text",
    )
    train: TrainSpec | None = Field(None, description="absent: a baseline (evaluation only)")
    seeds: Seeds | None = Field(
        None,
        description="default: [study].seeds (a baseline of a pretrained model: the first)",
    )
    config: dict[str, Any] | None = Field(
        None,
        description="the run settings of a study kind other than 'lm' (e.g. kind = 'grok': "
        "steps, lr, weight_decay, ...); validated by that kind",
    )

    @property
    def is_baseline(self) -> bool:
        return self.train is None and self.config is None


class EvalSpec(_Strict):
    """``[eval]``: how every condition is evaluated."""

    batch_size: int = Field(default=64, ge=1)
    max_new_tokens: int | None = Field(
        default=None, ge=1, description="default: longest target + 2"
    )


class ExecutionSpec(_Strict):
    """``[execution]``: how runs are scheduled. Not part of a run's content hash; the thread
    count a run used is recorded in its ``env.json``."""

    workers: int = Field(default=1, ge=1, description="runs executed at once (--workers overrides)")
    threads_per_worker: int | None = Field(
        default=None, ge=1, description="torch threads per run (default: all cores / workers)"
    )


class StudySpec(_Strict):
    study: StudyMeta
    models: list[ModelSpec] = Field(min_length=1)
    tasks: list[dict[str, Any]] = Field(min_length=1)
    conditions: list[ConditionSpec] = Field(min_length=1)
    eval: EvalSpec = Field(default_factory=EvalSpec)
    execution: ExecutionSpec = Field(default_factory=ExecutionSpec)

    @model_validator(mode="before")
    @classmethod
    def _default_formats(cls, data: Any) -> Any:
        """A condition that names no format takes its tasks' default format: ``plain`` for
        arithmetic tasks, ``text`` for text tasks (``DEFAULT_FORMATS``), when the tasks that
        take prompt formats are all of one family; else ``plain``, and the format checks say
        what fits."""
        if not isinstance(data, dict):
            return data
        tasks, conditions = data.get("tasks"), data.get("conditions")
        if not isinstance(tasks, list) or not isinstance(conditions, list):
            return data
        from smollab.tasks import DEFAULT_FORMATS, TASKS

        families = set()
        for t in tasks:
            name = t.get("task") if isinstance(t, dict) else None
            if isinstance(name, str) and name in TASKS:
                family = TASKS.get(name)[0].format_family
                if family is not None:
                    families.add(family)
        if len(families) != 1:
            return data
        default = DEFAULT_FORMATS.get(families.pop(), "plain")
        if default == "plain":
            return data
        fill = [
            {**c, "format": default} if isinstance(c, dict) and "format" not in c else c
            for c in conditions
        ]
        return {**data, "conditions": fill}

    @model_validator(mode="after")
    def _refs(self) -> StudySpec:
        names = [m.name for m in self.models]
        if len(set(names)) != len(names):
            raise ValueError(f"model names must be distinct, got {names}")
        cnames = [c.name for c in self.conditions]
        if len(set(cnames)) != len(cnames):
            raise ValueError(f"condition names must be distinct, got {cnames}")
        task_ids = [t.get("id") for t in self.tasks]
        if len(set(task_ids)) != len(task_ids):
            raise ValueError(f"task ids must be distinct, got {task_ids}")
        for c in self.conditions:
            if c.model is not None and c.model not in names:
                raise ValueError(
                    f"condition {c.name!r} names model {c.model!r}; the models are {names}"
                )
            if c.train and c.train.task is not None and c.train.task not in task_ids:
                raise ValueError(
                    f"condition {c.name!r} trains on task {c.train.task!r}; the tasks are "
                    f"{task_ids}"
                )
        return self

    def model_for(self, cond: ConditionSpec) -> ModelSpec:
        name = cond.model or self.models[0].name
        return next(m for m in self.models if m.name == name)

    def seeds_for(self, cond: ConditionSpec) -> list[int]:
        """A condition's seeds: its own, else [study].seeds; a baseline of a pretrained model
        runs once (the first seed: evaluation is deterministic), a baseline of a from-scratch
        model on every seed, since each seed is its own random initialisation (each trained
        seed is then compared with the initialisation it started from)."""
        if cond.seeds is not None:
            return cond.seeds
        if not cond.is_baseline or self.model_for(cond).source.startswith("scratch:"):
            return self.study.seeds
        return [self.study.seeds[0]]


# ------------------------------------------------------------------ loading and errors


def _field_names(model: type[BaseModel] | None) -> list[str]:
    return list(model.model_fields) if model is not None else []


def _model_at(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The pydantic model class that owns the last element of ``loc`` (best effort)."""
    import types
    import typing

    cur: Any = StudySpec
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        if not (isinstance(cur, type) and issubclass(cur, BaseModel)):
            return None
        field = cur.model_fields.get(str(part))
        if field is None:
            return None
        ann = field.annotation
        # unwrap Optional[X] and list[X]
        for _ in range(3):
            args = [a for a in typing.get_args(ann) if a is not type(None)]
            if typing.get_origin(ann) in (list, typing.Union, types.UnionType):
                ann = args[0] if args else ann
        cur = ann
    return cur if isinstance(cur, type) and issubclass(cur, BaseModel) else None


def _loc_str(loc: tuple[Any, ...]) -> str:
    out = ""
    for p in loc:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "(top level)"


def format_validation_error(
    err: ValidationError,
    where: str,
    model: type[BaseModel] | None = None,
    *,
    lead: str = "",
    skip: tuple[tuple[Any, ...], ...] = (),
) -> str:
    """One paragraph naming every bad field, the value given, and what is allowed; ``lead``
    first, and no error under the locations in ``skip`` (``lead`` says what to do there)."""
    parts = [lead] if lead else []
    for e in err.errors():
        loc = tuple(e["loc"])
        if any(loc[: len(s)] == s for s in skip):
            continue
        field = _loc_str(loc)
        if e["type"] == "extra_forbidden":
            owner = model if model is not None and len(loc) == 1 else _model_at(loc)
            valid = _field_names(owner)
            close = difflib.get_close_matches(str(loc[-1]), valid, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            listing = f" Valid fields there: {', '.join(valid)}." if valid else ""
            parts.append(f"unknown field {field!r}.{hint}{listing}")
        elif e["type"] == "missing":
            parts.append(f"field {field!r} is required but missing.")
        else:
            msg = e["msg"].removeprefix("Value error, ")
            given = e.get("input")
            shown = "" if isinstance(given, dict) else f" (got {given!r})"
            parts.append(f"field {field!r}: {msg}{shown}.")
    if lead and len(parts) == 1:
        return f"{where}: {lead}"
    return f"{where}: " + " ".join(parts) + " Fix these fields and run the command again."


def parse_spec(data: dict[str, Any], source: str) -> StudySpec:
    """Validate a study spec dict; ``source`` names the file for error messages."""
    try:
        spec = StudySpec(**data)
    except ValidationError as e:
        from smollab.study.grok_kind import train_table_hint, train_tables

        # a grokking study's [conditions.train] was checked against the fine-tuning fields:
        # say once where its settings go, not which fine-tuning fields they are not
        trains = train_tables(data)
        lead = train_table_hint(trains) if trains else ""
        skip = tuple(("conditions", i, "train") for i, _ in trains)
        raise ConfigError(format_validation_error(e, source, lead=lead, skip=skip)) from None
    from smollab.study.kinds import get_kind

    _check_models_used(spec, source)
    _check_reference(spec, source)
    get_kind(spec.study.kind, where=f"{source}: study.kind").check_spec(spec, source)
    return spec


def _check_reference(spec: StudySpec, source: str) -> None:
    """``[study] reference`` names a condition of the study (the kind checks what it may be)."""
    ref, cnames = spec.study.reference, [c.name for c in spec.conditions]
    if ref is not None and ref not in cnames:
        raise ConfigError(
            f"{source}: study.reference names condition {ref!r}, which this study does not "
            f"have; the conditions are {cnames}. Set the field study.reference to one of them, "
            "or remove it."
        )


def _check_models_used(spec: StudySpec, source: str) -> None:
    """Every model is some condition's model: results (and the report's "models studied") come
    from conditions, so a model none names would be listed without ever being run."""
    used = {spec.model_for(c).name for c in spec.conditions}
    for i, m in enumerate(spec.models):
        if m.name not in used:
            raise ConfigError(
                f"{source}: models[{i}] ({m.name!r}) is used by no condition, so it would never "
                f"be run (a condition without 'model' uses the first model, "
                f"{spec.models[0].name!r}). Remove models[{i}], or add a condition with "
                f"model = {m.name!r}."
            )


def check_lm_spec(spec: StudySpec, source: str) -> None:
    """The checks of a language-model study (kind 'lm'): tasks, targets, prompt formats."""
    from smollab.tasks import build_task, validate_task_config

    configs = [
        validate_task_config(t, where=f"{source}: tasks[{i}]") for i, t in enumerate(spec.tasks)
    ]
    _check_data_files(configs, source)
    _check_trained_tasks(spec, configs, source)
    _check_sampled_tasks(configs, source)
    _check_model_sources(spec, source)
    _check_api_models(spec, configs, source)
    _check_scratch_models(spec, source)
    _check_generation_budgets(spec, configs, source)
    _check_lm_reference(spec, source)
    strata = {
        c.id: set((build_task(c).strata if c.data_files() else getattr(c, "strata", [])) or [])
        | {"overall"}
        for c in configs
    }
    for key in spec.study.targets:
        task, stratum = key.split("/")
        if task not in strata or stratum not in strata[task]:
            raise ConfigError(
                f"{source}: field 'study.targets' names {key!r}, but the tasks and strata are "
                f"{sorted(f'{t}/{s}' for t, ss in strata.items() for s in ss)}."
            )
    _check_formats(spec, configs, source)


def _check_lm_reference(spec: StudySpec, source: str) -> None:
    """A language-model study's reference is a trained condition, and another trained
    condition is there to be compared with it (each is compared with the baseline anyway)."""
    ref = spec.study.reference
    trained = [c.name for c in spec.conditions if c.train]
    if ref is None or (ref in trained and len(trained) > 1):
        return
    where = f"{source}: field 'study.reference' is {ref!r}"
    if ref in trained:
        raise ConfigError(
            f"{where}, the only trained condition: there is no other trained condition to "
            "compare with it (it is compared with the baseline already). Add another trained "
            "condition, or remove study.reference."
        )
    raise ConfigError(
        f"{where}, a baseline condition (one without [conditions.train]). Every trained "
        "condition is compared with the baseline already; the reference is the trained "
        "condition the others are compared with too. "
        + (
            f"Set it to one of {trained}, or remove study.reference."
            if trained
            else "This study has no trained condition: remove study.reference."
        )
    )


def _check_model_sources(spec: StudySpec, source: str) -> None:
    """A source that is empty, or a local path that cannot be a model (missing, a file that is
    not .gguf, a directory without config.json), before anything runs. Only the file system is
    looked at: embedded names, 'scratch:ARCH', API models and hub ids pass (a hub id is checked
    against the local cache and the hub when the session starts)."""
    from smollab.errors import ModelLoadError
    from smollab.models.loader import local_model_path

    for i, m in enumerate(spec.models):
        if not m.source.strip():
            raise ConfigError(
                f"{source}: field 'models[{i}].source' is empty (model {m.name!r}). Name the "
                "model to load: the embedded 'smollm2-135m', a model directory, a .gguf file, "
                "'scratch:gpt2' / 'scratch:llama', a Hugging Face hub id or an API model "
                "('openai:MODEL', 'anthropic:MODEL')."
            )
        if m.is_api:
            continue
        try:
            local_model_path(m.source)
        except ModelLoadError as e:
            raise ConfigError(
                f"{source}: field 'models[{i}].source' is {m.source!r} (model {m.name!r}): "
                f"{e.message}"
            ) from None


def _known_window(m: ModelSpec, scratch: dict[str, Any] | None) -> tuple[int, str] | None:
    """A model's context window in tokens and where it comes from, where that is known without
    loading the model: a from-scratch model's block_size, or the position limit in a local model
    directory's config.json (the attributes :func:`smollab.eval.lm.model_window` reads); a study
    run's is its base model's."""
    import json

    from smollab.errors import ModelLoadError
    from smollab.models.loader import WINDOW_ATTRS, local_model_path

    if scratch is not None:
        return scratch["block_size"], f"config.block_size = {scratch['block_size']}"
    if m.is_api:
        return None
    try:
        local = local_model_path(m.source)
    except ModelLoadError:
        return None
    if local is not None and local[0] == "run":
        return _run_window(local[1])
    if local is None or local[0] != "dir":
        return None
    try:
        cfg = json.loads((local[1] / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None  # loading the model reports it
    for attr in WINDOW_ATTRS:
        v = cfg.get(attr) if isinstance(cfg, dict) else None
        if isinstance(v, int) and not isinstance(v, bool) and v > 0:
            return v, f"{attr} = {v} in {local[1] / 'config.json'}"
    return None


def _run_window(run_dir: Path) -> tuple[int, str] | None:
    """A study run's context window: its base model's (fine-tuning keeps the architecture)."""
    from smollab.models.loader import run_spec_of
    from smollab.models.scratch import check_scratch

    base = run_spec_of(run_dir).model  # checked by local_model_path already
    scratch = None
    if base.source.startswith("scratch:"):
        scratch = check_scratch(base.source.split(":", 1)[1], base.config)
    known = _known_window(base, scratch)
    if known is None:
        return None
    return known[0], f"{known[1]}, the base model {base.source!r} of run {run_dir}"


def _check_generation_budgets(spec: StudySpec, configs: list[Any], source: str) -> None:
    """A generation task's ``max_tokens`` below every evaluated model's context window: the
    prompt is cut to the window minus the budget, so a budget that fills the window leaves no
    room for it (the run would fail when it starts). Models whose window is not known without
    loading them are left to that run-time check."""
    from smollab.models.scratch import check_scratch

    for j, m in enumerate(spec.models):  # every model is evaluated (_check_models_used)
        scratch = None
        if m.source.startswith("scratch:"):
            scratch = check_scratch(m.source.split(":", 1)[1], m.config)  # checked already
        known = _known_window(m, scratch)
        if known is None:
            continue
        window, where = known
        for i, c in enumerate(configs):
            n = getattr(c, "max_tokens", None)
            if not isinstance(n, int) or n < window:
                continue
            default = "" if "max_tokens" in c.model_fields_set else "the default; "
            more = (
                f"raise models[{j}].config.block_size above {n}"
                if scratch is not None
                else "evaluate the task with a model whose window is longer"
            )
            raise ConfigError(
                f"{source}: field 'tasks[{i}].max_tokens' is {n} ({default}task {c.id!r}), "
                f"which leaves no room for the prompt in the context window of model "
                f"{m.name!r}: {window} tokens ({where}), of which a prompt gets what the "
                f"generation budget leaves. Set tasks[{i}].max_tokens well below {window}, or "
                f"{more}."
            )


def _check_scratch_models(spec: StudySpec, source: str) -> None:
    """A from-scratch model's architecture and config, and the training length it allows,
    before anything runs; ``config`` and ``tokenizer`` only where they are used."""
    from smollab.errors import ModelLoadError
    from smollab.models.loader import tokenizer_dir
    from smollab.models.scratch import check_scratch

    for i, m in enumerate(spec.models):
        if not m.source.startswith("scratch:"):
            given = [f for f in ("config", "tokenizer") if getattr(m, f)]
            if given:
                raise ConfigError(
                    f"{source}: models[{i}] ({m.name!r}) sets {' and '.join(given)}, which only "
                    f"from-scratch models use (source = 'scratch:gpt2' or 'scratch:llama'); "
                    f"{m.source!r} brings its own. Remove {' and '.join(given)}."
                )
            continue
        try:
            full = check_scratch(m.source.split(":", 1)[1], m.config)
        except ConfigError as e:
            field = "config" if m.config and "architecture" not in e.message else "source"
            raise ConfigError(f"{source}: models[{i}].{field}: {e.message}") from None
        try:
            tokenizer_dir(m.tokenizer)
        except ModelLoadError as e:
            raise ConfigError(
                f"{source}: field 'models[{i}].tokenizer' is {m.tokenizer!r} (model "
                f"{m.name!r}): {e.message}"
            ) from None
        for j, c in enumerate(spec.conditions):
            if c.train is None or spec.model_for(c) is not m:
                continue
            if c.train.seq_len > full["block_size"]:
                raise ConfigError(
                    f"{source}: conditions[{j}].train.seq_len = {c.train.seq_len} is longer than "
                    f"model {m.name!r}'s context window (config.block_size = "
                    f"{full['block_size']}). Set seq_len to at most {full['block_size']}, or "
                    "raise block_size."
                )


def _check_trained_tasks(spec: StudySpec, configs: list[Any], source: str) -> None:
    """Benchmark tasks (hellaswag, gsm8k, ...) are evaluated, never trained on; training
    weights name strata of the task trained on."""
    from smollab.tasks import BenchConfig, build_task

    by_id = {c.id: c for c in configs}
    for i, c in enumerate(spec.conditions):
        if c.train is None:
            continue
        tid = c.train.task or configs[0].id
        if isinstance(by_id[tid], BenchConfig):
            trainable = [x.id for x in configs if not isinstance(x, BenchConfig)]
            raise ConfigError(
                f"{source}: conditions[{i}] ({c.name!r}) would train on task {tid!r}, a "
                f"benchmark that is only evaluated. Set conditions[{i}].train.task to a "
                f"trainable task ({', '.join(trainable) or 'add one, e.g. arith.mul'})."
            )
        weights = c.train.weights
        if not weights:
            continue
        strata = list(getattr(build_task(by_id[tid]), "strata", None) or [])
        unknown = sorted(set(weights) - set(strata))
        if unknown:
            raise ConfigError(
                f"{source}: field 'conditions[{i}].train.weights' names strata {unknown} that "
                f"task {tid!r} does not have; its strata are {strata}. Weight those, or drop "
                "the weights to sample every stratum alike."
            )
        if not any(weights.get(s, 0) > 0 for s in strata):
            raise ConfigError(
                f"{source}: field 'conditions[{i}].train.weights' gives every stratum of task "
                f"{tid!r} weight 0, so there is nothing to train on. Give at least one stratum "
                "a positive weight."
            )


def _check_sampled_tasks(configs: list[Any], source: str) -> None:
    """A study scores each item pass or fail (one greedy sample) and compares conditions on
    those scores (intervals for 0/1 outcomes, McNemar's test), so a code task's ``n_samples``
    must be 1 there; pass@k over n samples is what ``smollab eval --samples`` reports."""
    for i, c in enumerate(configs):
        n = getattr(c, "n_samples", 1)
        if n > 1:
            raise ConfigError(
                f"{source}: field 'tasks[{i}].n_samples' is {n} (task {c.id!r}), but a study "
                "scores each problem as passed or failed from one greedy sample and compares "
                "conditions with tests for such 0/1 outcomes (McNemar's), which do not apply "
                "to a pass rate over several samples. Remove n_samples (and temperature) to "
                "compare conditions on greedy pass@1, or measure pass@k over n samples per "
                f"model with `smollab eval --model M --task {c.task} --samples {n}`."
            )


def _check_api_models(spec: StudySpec, configs: list[Any], source: str) -> None:
    """An API model is only evaluated, on tasks it can answer by generating text."""
    from smollab.tasks import build_task

    for i, m in enumerate(spec.models):
        if m.base_url is not None and not m.base_url.strip():
            raise ConfigError(f"{source}: field 'models[{i}].base_url' is empty; remove it.")
        if m.base_url and not (m.is_api and m.source.startswith("openai:")):
            raise ConfigError(
                f"{source}: field 'models[{i}].base_url' is for API models named "
                f"'openai:MODEL' (an OpenAI-compatible server); model {m.name!r} has source "
                f"{m.source!r}. Remove base_url, or set source = 'openai:MODEL'."
            )
    api = {m.name for m in spec.models if m.is_api}
    if not api:
        return
    for i, c in enumerate(spec.conditions):
        m = spec.model_for(c)
        if m.name in api and c.train is not None:
            raise ConfigError(
                f"{source}: conditions[{i}] ({c.name!r}) trains model {m.name!r}, an API model "
                f"({m.source}), which has no weights here to fine-tune. Remove "
                f"[conditions.train] to evaluate it as a baseline, or train a local model."
            )
    loglik = [
        c.id
        for c in configs
        if getattr(build_task(c), "request_type", "generate") == "loglikelihood"
    ]
    if loglik:
        raise ConfigError(
            f"{source}: task(s) {', '.join(loglik)} score log-probabilities of given "
            f"continuations, which the API model(s) {', '.join(sorted(api))} cannot return. "
            "Evaluate them in a study of local models only, or drop them from this study "
            "(API models answer generation tasks: arith.*, gsm8k, gsm8k_chat, humaneval_chat, "
            "mbpp_chat, ...)."
        )


def _check_formats(spec: StudySpec, configs: list[Any], source: str) -> None:
    """Each condition's prompt format exists and fits every task that takes prompt formats
    (an arithmetic format cannot write a text task's prompt, nor the other way round)."""
    from smollab.tasks import PROMPT_FORMATS, check_format_fits

    families = {type(c).format_family for c in configs} - {None}
    for i, c in enumerate(spec.conditions):
        fmt = PROMPT_FORMATS.get(c.format, where=f"{source}: conditions[{i}].format")
        if len(families) > 1:
            named = ", ".join(f"{t.id!r} ({t.task})" for t in configs if t.format_family)
            raise ConfigError(
                f"{source}: tasks {named} take prompt formats of different families, and a "
                f"condition writes every task's prompts in its one format (conditions[{i}] "
                f"uses {c.format!r}). Study those tasks in separate studies."
            )
        given = "" if "format" in c.model_fields_set else " (the default)"
        for t in configs:
            check_format_fits(
                fmt,
                t,
                f"{source}: field 'conditions[{i}].format' ({c.name!r}) is {c.format!r}{given}",
                f"set conditions[{i}].format to",
            )


def _check_data_files(configs: list[Any], source: str) -> None:
    """Tasks whose items are read from the user's files (``text``) are built here, so that a
    missing file or a bad record is refused when the spec is checked, before any run."""
    from smollab.tasks import build_task

    for i, c in enumerate(configs):
        if not c.data_files():
            continue
        try:
            build_task(c)
        except ConfigError as e:
            raise ConfigError(f"{source}: tasks[{i}]: {e.message}") from None


def _toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key, ensure_ascii=False)


def _toml_value(v: Any) -> str:
    """One TOML value; tables nested in a value are inline."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float) and math.isfinite(v):
        return repr(v)
    if isinstance(v, str):  # JSON's string escapes are TOML basic-string escapes
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        items = ", ".join(f"{_toml_key(str(k))} = {_toml_value(x)}" for k, x in v.items())
        return "{ " + items + " }" if items else "{}"
    raise ConfigError(f"A study spec cannot hold the value {v!r} ({type(v).__name__}).")


def dumps_spec(data: dict[str, Any]) -> str:
    """The TOML text of a study spec given as a dict (what :func:`loads_spec` reads back), laid
    out as a hand-written spec is: ``[study]``, then ``[[models]]``, ``[[tasks]]`` and
    ``[[conditions]]`` with each condition's ``train``/``config`` table under it, then
    ``[eval]`` and ``[execution]``."""
    blocks = []
    for top, value in data.items():
        rows = value if isinstance(value, list) else [value]
        header = f"[[{top}]]" if isinstance(value, list) else f"[{top}]"
        for row in rows:
            lines = [header]
            subtables = []
            for k, v in row.items():
                if isinstance(value, list) and k in ("train", "config") and isinstance(v, dict):
                    subtables.append((k, v))
                else:
                    lines.append(f"{_toml_key(k)} = {_toml_value(v)}")
            for k, v in subtables:
                lines.append(f"[{top}.{k}]")
                lines += [f"{_toml_key(str(k2))} = {_toml_value(x)}" for k2, x in v.items()]
            blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"


def loads_spec(text: str, source: str = "<string>") -> StudySpec:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(
            f"{source} is not valid TOML: {e}. Check quotes, brackets and '=' on that line."
        ) from None
    return parse_spec(data, source)


def load_spec(path: str | Path) -> StudySpec:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"Study spec {path} does not exist. Check the path.") from None
    except (IsADirectoryError, PermissionError, UnicodeDecodeError) as e:
        raise ConfigError(f"Study spec {path} cannot be read ({e}). Pass a TOML file.") from None
    if path.suffix.lower() in (".md", ".markdown"):
        raise ConfigError(
            f"{path} is a problem file (Markdown), not a study spec (TOML). Run it with "
            f"`smollab run {path}`, which takes its ```toml reference protocol, or pass a .toml "
            "study spec to `smollab study`."
        )
    return loads_spec(text, str(path))
