"""Test-only stand-in for ``smollab.report`` in subprocesses (CLI and workers).

The test suite puts this directory on ``PYTHONPATH`` only when the real ``smollab.report`` does
not yet provide ``build_report`` / ``tex_available`` (it is being written in parallel). With the
real package in place this file is never on the path.
"""

from __future__ import annotations

try:
    import tests_report_stub  # noqa: F401  (installs the stub; see that module)
except Exception:  # never break interpreter start-up
    pass
