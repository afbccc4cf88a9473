"""Run generated or agent-written Python where it cannot hurt the machine.

    from smollab.sandbox import Limits, Sandbox
    sb = Sandbox(Limits(timeout_s=5))
    verdict = sb.run("print(1 + 1)")            # Verdict(passed=True, stdout_tail="2\\n", ...)
    verdicts = sb.run_many(programs, workers=2)  # order preserved

See :mod:`smollab.sandbox.backend` for what the sandbox isolates and how.
"""

from smollab.errors import SandboxUnavailable
from smollab.sandbox.datasets import MBPP_TEST_IDS, load_humaneval, load_mbpp
from smollab.sandbox.programs import humaneval_program, mbpp_program
from smollab.sandbox.sandbox import Sandbox, sandbox_status
from smollab.sandbox.verdict import KilledBy, Limits, Verdict

__all__ = [
    "MBPP_TEST_IDS",
    "KilledBy",
    "Limits",
    "Sandbox",
    "SandboxUnavailable",
    "Verdict",
    "humaneval_program",
    "load_humaneval",
    "load_mbpp",
    "mbpp_program",
    "sandbox_status",
]
