"""The one registry mechanism: named factories registered by decorator.

    TASKS = Registry[TaskFactory]("task")

    @TASKS.register("arith.mul")
    def _mul(**params): ...

An unknown name raises :class:`~smollab.errors.ConfigError` listing the valid names.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from smollab.errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    """A name -> object mapping filled by the ``register`` decorator."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def deco(obj: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._items[name] = obj
            return obj

        return deco

    def get(self, name: str, *, where: str = "") -> T:
        try:
            return self._items[name]
        except KeyError:
            valid = ", ".join(sorted(self._items)) or "(none)"
            loc = f" in {where}" if where else ""
            raise ConfigError(
                f"Unknown {self.kind} {name!r}{loc}. Valid {self.kind}s: {valid}."
            ) from None

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._items))
