"""Run generated or agent-written Python where it cannot hurt the machine.

    from smollab.sandbox import Limits, Sandbox
    sb = Sandbox(Limits(timeout_s=5))
    verdict = sb.run("print(1 + 1)")            # Verdict(passed=True, stdout_tail="2\\n", ...)
    verdicts = sb.run_many(programs, workers=2)  # order preserved

See :mod:`smollab.sandbox.backend` for what the sandbox isolates and how.
"""

from smollab.errors import SandboxUnavailable
from smollab.sandbox.sandbox import Sandbox, sandbox_status
from smollab.sandbox.verdict import KilledBy, Limits, Verdict

__all__ = ["KilledBy", "Limits", "Sandbox", "SandboxUnavailable", "Verdict", "sandbox_status"]
