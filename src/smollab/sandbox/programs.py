"""Test programs for code benchmarks: a completion plus the benchmark's tests, as one main.py.

Each builder returns the exact source the reference harnesses execute, so a pass here is a pass
there: HumanEval as openai/human-eval ``execution.py`` builds it, MBPP as the MBPP paper and
bigcode-evaluation-harness do (the solution, then the ``test_list`` asserts).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def humaneval_program(problem: Mapping[str, Any], completion: str) -> str:
    """``prompt + completion + "\\n" + test + "\\n" + "check(entry_point)"``, as human-eval does.

    ``completion`` is the function body that follows the prompt (the canonical solution is one);
    ``problem`` is a HumanEval record with ``prompt``, ``test`` and ``entry_point``.
    """
    return (
        problem["prompt"]
        + completion
        + "\n"
        + problem["test"]
        + "\n"
        + f"check({problem['entry_point']})"
    )


def mbpp_program(
    problem: Mapping[str, Any], completion: str, *, challenge_tests: bool = False
) -> str:
    """The solution followed by the problem's ``assert`` tests, one per line.

    Works for both MBPP files: the full set's ``test_setup_code`` (which may use names the
    solution defines, so it comes after it) and the sanitized set's ``test_imports`` (before it).
    ``challenge_tests=True`` appends ``challenge_test_list`` too (full set only).
    """
    imports = "\n".join(problem.get("test_imports") or [])
    tests = list(problem["test_list"])
    if challenge_tests:
        tests += problem.get("challenge_test_list") or []
    parts = [imports, completion, problem.get("test_setup_code") or "", "\n".join(tests)]
    return "\n".join(p for p in parts if p) + "\n"
