"""RunSpec: everything that determines one run's results, content-hashed.

The hash covers model, prompt format, training config, seed, tasks and evaluation settings, not
the labels (study, condition and model names), so a study re-run with the same content finds its
finished runs, and two conditions that are secretly identical are caught.
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
        # fields added after the first studies are hashed only when set, so that the hashes of
        # language-model runs stay what they were
        if d["kind"] == "lm":
            d.pop("kind")
        if d["config"] is None:
            d.pop("config")
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


def expand(spec: StudySpec) -> list[RunSpec]:
    """All runs of a study, as its kind defines them (see :mod:`smollab.study.kinds`)."""
    from smollab.study.kinds import get_kind

    return get_kind(spec.study.kind).expand(spec)


def check_distinct(runs: list[RunSpec]) -> list[RunSpec]:
    """Refuse two conditions whose runs are identical (one result reported as two findings)."""
    from smollab.errors import ConfigError

    seen: dict[str, RunSpec] = {}
    for r in runs:
        if r.hash in seen and seen[r.hash].condition != r.condition:
            raise ConfigError(
                f"Conditions {seen[r.hash].condition!r} and {r.condition!r} are identical (same "
                "model, format, training and seed), so they would report one result as two "
                "findings. Remove one or change what distinguishes them."
            )
        seen[r.hash] = r
    return runs


def expand_lm(spec: StudySpec) -> list[RunSpec]:
    """A language-model study: conditions x seeds, each on every task."""
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
                )
            )
    return check_distinct(runs)
