"""Sandbox fixtures: small limits so hostile programs end within seconds."""

from __future__ import annotations

import pytest

from smollab.sandbox import Limits, Sandbox, sandbox_status

SMALL = Limits(timeout_s=3, cpu_s=10, memory_mb=512, nproc=16, file_size_mb=1, output_bytes=4096)


@pytest.fixture(scope="session")
def sandbox() -> Sandbox:
    reason = sandbox_status()
    if reason is not None:
        pytest.skip(f"bubblewrap sandbox unavailable here: {reason}")
    return Sandbox(SMALL)
