"""RunSpec: everything that determines one run's results, content-hashed.

The hash covers model, prompt format, training config, seed, tasks and evaluation settings, not
the labels (study, condition and model names), so a study re-run with the same content finds its
finished runs, and two conditions that are secretly identical are caught. Prompt text lives in
code (prompt formats, benchmark tasks), so it enters the hash through a version that is bumped
whenever the text or the scoring changes: a task's or format's ``version`` is hashed when it is
not 1 (the hashes of runs whose parts were never bumped stay what they were), and a finished run
made with the old text is then not reused. A task whose items are read from the user's files
(``text``) adds the files' sha256 (``data_sha256``): a run made from other data is not reused.
Likewise a model source that is a local path (a model folder, a ``.gguf`` file, a study run
folder) adds the digest of the files its model is loaded from (``source_sha256``, see
:mod:`smollab.models.fingerprint`), and a scratch model's tokenizer folder its own
(``tokenizer_sha256``): a model retrained or replaced at the same path is not served by the
runs made from the old one. The embedded model, hub ids and ``scratch:ARCH`` sources are names,
hashed as they are.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from pydantic import BaseModel, ConfigDict

from smollab.study.spec import EvalSpec, ModelSpec, StudySpec, TrainSpec


class RunSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    study: str
    condition: str
    model_name: str
    model: ModelSpec
    format: str
    train: TrainSpec | None
    seed: int
    tasks: list[dict[str, Any]]
    eval: EvalSpec
    kind: str = "lm"
    config: dict[str, Any] | None = None

    def content(self) -> dict[str, Any]:
        d = self.model_dump(mode="json", exclude={"study", "condition", "model_name"})
        d["model"].pop("name", None)
        if d["model"].get("base_url") is None:
            d["model"].pop("base_url", None)
        d["model"].update(_model_files(self.model))
        # fields added after the first studies are hashed only when set, so that the hashes of
        # language-model runs stay what they were
        if d["kind"] == "lm":
            d.pop("kind")
        if d["config"] is None:
            d.pop("config")
        d["tasks"] = [_with_version(t) for t in d["tasks"]]
        fmt_version = _format_version(self.format)
        if fmt_version != 1:
            d["format_version"] = fmt_version
        return d

    @property
    def hash(self) -> str:
        blob = json.dumps(self.content(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    @property
    def label(self) -> str:
        if self.kind != "lm" and len(self.tasks) == 1:  # one run per task
            return f"{self.condition}/{self.tasks[0].get('id')}/seed{self.seed}"
        return f"{self.condition}/seed{self.seed}"


def _with_version(task: dict[str, Any]) -> dict[str, Any]:
    """The task's config, with ``version`` when its prompts or scoring were ever bumped, and
    ``data_sha256`` when its items come from data files (only such tasks have it, so the
    hashes of the others stay what they were)."""
    from smollab.errors import SmollabError
    from smollab.tasks import build_task, validate_task_config

    try:
        built = build_task(validate_task_config(dict(task)))
    except SmollabError:  # a spec that does not build is refused before any run
        return task
    version = getattr(built, "version", 1)
    out = {**task, "version": version} if version != 1 else task
    digest = getattr(built, "data_sha256", None)
    return {**out, "data_sha256": digest} if digest else out


def _model_files(model: ModelSpec) -> dict[str, str]:
    """The digests of the local files the model is loaded from: ``source_sha256`` for a source
    that is a path, ``tokenizer_sha256`` for a tokenizer folder (only such models have them, so
    the hashes of the others stay what they were)."""
    from smollab.models.fingerprint import source_sha256, tokenizer_sha256

    digests = {
        "source_sha256": source_sha256(model.source),
        "tokenizer_sha256": tokenizer_sha256(model.tokenizer),
    }
    return {k: v for k, v in digests.items() if v is not None}


def _format_version(name: str) -> int:
    from smollab.tasks import PROMPT_FORMATS

    return PROMPT_FORMATS.get(name).version if name in PROMPT_FORMATS else 1


def expand(spec: StudySpec) -> list[RunSpec]:
    """All runs of a study, as its kind defines them (see :mod:`smollab.study.kinds`)."""
    from smollab.study.kinds import get_kind

    return get_kind(spec.study.kind).expand(spec)


def check_distinct(runs: list[RunSpec]) -> list[RunSpec]:
    """Refuse two conditions whose runs are identical (one result reported as two findings)."""
    from smollab.errors import ConfigError

    seen: dict[str, RunSpec] = {}
    for r in runs:
        key = _result_key(r)
        if key in seen and seen[key].condition != r.condition:
            same = (
                "identical"
                if seen[key].hash == r.hash
                else (
                    "identical but for training settings that do not change results ("
                    + ", ".join(NOT_RESULTS)
                    + ")"
                )
            )
            raise ConfigError(
                f"Conditions {seen[key].condition!r} and {r.condition!r} are {same}: the same "
                "model, format, training and seed, so they would report one result as two "
                "findings. Remove one or change what distinguishes them."
            )
        seen[key] = r
    return runs


#: [conditions.train] settings that change how a run goes, not what it computes (they stay in
#: the run hash, which finished runs are found by)
NOT_RESULTS = ("threads", "checkpoint_every")


def _result_key(r: RunSpec) -> str:
    d = r.content()
    for k in NOT_RESULTS:
        (d.get("train") or {}).pop(k, None)
    return json.dumps(d, sort_keys=True, separators=(",", ":"))


def expand_lm(spec: StudySpec, kind: str = "lm") -> list[RunSpec]:
    """A language-model study (or another ``kind`` run the same way, e.g. pretraining):
    conditions x seeds, each on every task."""
    runs: list[RunSpec] = []
    for cond in spec.conditions:
        model = spec.model_for(cond)
        for seed in spec.seeds_for(cond):
            runs.append(
                RunSpec(
                    study=spec.study.name,
                    condition=cond.name,
                    model_name=model.name,
                    model=model,
                    format=cond.format,
                    train=cond.train,
                    seed=seed,
                    tasks=spec.tasks,
                    eval=spec.eval,
                    kind=kind,
                )
            )
    return check_distinct(runs)
