"""User-facing errors.

A :class:`SmollabError` carries a one-paragraph message that names the file, field or value at
fault and says how to fix it. The CLI prints it without a traceback and exits non-zero; library
users can catch it like any exception.
"""

from __future__ import annotations


class SmollabError(Exception):
    """An error caused by input or environment that the user can fix.

    ``exit_code`` is what the CLI exits with (2 for bad input, 1 otherwise).
    """

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = message.strip()
        self.hint = hint.strip() if hint else None
        super().__init__(self.render())

    def with_exit(self, code: int) -> SmollabError:
        self.exit_code = code
        return self

    def render(self) -> str:
        return f"{self.message} {self.hint}" if self.hint else self.message


class ConfigError(SmollabError):
    """A study spec, problem file or option is invalid."""

    exit_code = 2


class ModelLoadError(SmollabError):
    """A model could not be located or loaded."""

    exit_code = 2


class DataError(SmollabError):
    """A dataset is missing, truncated or has the wrong format."""

    exit_code = 2


class CorruptFile(DataError, ValueError):
    """A JSON file that smollab reads is not valid JSON (cut short, or edited by hand). It is
    also a ``ValueError``, so code that treats an unreadable file as absent keeps doing so."""


class RunFailed(SmollabError):
    """A run failed; its folder keeps the log and whatever finished."""


class SandboxUnavailable(SmollabError):
    """The code sandbox (bubblewrap with user namespaces) cannot run on this machine."""
