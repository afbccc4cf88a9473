"""Tasks: dataset + prompt format + scorer + strata, in one registry (``TASKS``)."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from smollab.errors import ConfigError
from smollab.tasks import arith_probe as _arith_probe  # noqa: F401  (registers arith_probe)
from smollab.tasks import arithmetic as _arithmetic  # noqa: F401  (registers arith.*)
from smollab.tasks import code as _code  # noqa: F401  (registers humaneval, mbpp*)
from smollab.tasks import corpus as _corpus  # noqa: F401  (registers corpus)
from smollab.tasks import gsm8k as _gsm8k  # noqa: F401  (registers gsm8k, gsm8k_chat)
from smollab.tasks import hellaswag as _hellaswag  # noqa: F401  (registers hellaswag*)
from smollab.tasks import modular as _modular  # noqa: F401  (registers grok.*)
from smollab.tasks import text as _text  # noqa: F401  (registers text, formats text*)
from smollab.tasks.arithmetic import (
    DEFAULT_FORMATS,
    PROMPT_FORMATS,
    ArithmeticTask,
    PromptFormat,
    check_format_fits,
    formats_of,
)
from smollab.tasks.base import TASKS, Example, ItemScore, Task, TaskConfig
from smollab.tasks.bench import BenchConfig, BenchTask

__all__ = [
    "TASKS",
    "DEFAULT_FORMATS",
    "PROMPT_FORMATS",
    "ArithmeticTask",
    "BenchConfig",
    "BenchTask",
    "Example",
    "ItemScore",
    "PromptFormat",
    "Task",
    "TaskConfig",
    "build_task",
    "check_format_fits",
    "formats_of",
    "validate_task_config",
]


def validate_task_config(
    raw: dict[str, Any], where: str = "[[tasks]]", config_cls: type[TaskConfig] | None = None
) -> TaskConfig:
    """Validate one ``[[tasks]]`` table against its task's own config class (or against
    ``config_cls``, e.g. ``smollab eval``'s config of an exact-match task)."""
    name = raw.get("task")
    if not isinstance(name, str):
        what = "is missing" if name is None else f"is {name!r}, not a task name (a string)"
        raise ConfigError(f"{where}: field 'task' {what}; name a task, one of {TASKS.names()}.")
    if config_cls is None:
        config_cls, _ = TASKS.get(name, where=f"{where}.task")
    try:
        return config_cls(**raw)
    except ValidationError as e:
        from smollab.study.spec import format_validation_error

        raise ConfigError(format_validation_error(e, where, config_cls)) from None


def build_task(config: TaskConfig | dict[str, Any]) -> Task:
    """The task a ``[[tasks]]`` entry describes: a validated config, or the table itself
    (``{"id": "add", "task": "arith.add", ...}``), validated here."""
    if isinstance(config, dict):
        config = validate_task_config(config, where="build_task")
    elif not isinstance(config, TaskConfig):
        raise ConfigError(
            f"build_task: expected a task table (a dict with 'id' and 'task') or a TaskConfig, "
            f"got {type(config).__name__}; e.g. build_task({{'id': 'add', 'task': 'arith.add'}})."
        )
    _, factory = TASKS.get(config.task)
    return factory(config)
