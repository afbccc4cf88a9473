"""Tasks: dataset + prompt format + scorer + strata, in one registry (``TASKS``)."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from smollab.errors import ConfigError
from smollab.tasks import arithmetic as _arithmetic  # noqa: F401  (registers arith.*)
from smollab.tasks import modular as _modular  # noqa: F401  (registers grok.*)
from smollab.tasks.arithmetic import PROMPT_FORMATS, ArithmeticTask, PromptFormat
from smollab.tasks.base import TASKS, Example, ItemScore, Task, TaskConfig

__all__ = [
    "TASKS",
    "PROMPT_FORMATS",
    "ArithmeticTask",
    "Example",
    "ItemScore",
    "PromptFormat",
    "Task",
    "TaskConfig",
    "build_task",
    "validate_task_config",
]


def validate_task_config(raw: dict[str, Any], where: str = "[[tasks]]") -> TaskConfig:
    """Validate one ``[[tasks]]`` table against its task's own config class."""
    name = raw.get("task")
    if not isinstance(name, str):
        raise ConfigError(f"{where}: field 'task' is missing; name a task, one of {TASKS.names()}.")
    config_cls, _ = TASKS.get(name, where=f"{where}.task")
    try:
        return config_cls(**raw)
    except ValidationError as e:
        from smollab.study.spec import format_validation_error

        raise ConfigError(format_validation_error(e, where, config_cls)) from None


def build_task(config: TaskConfig) -> Task:
    _, factory = TASKS.get(config.task)
    return factory(config)
