"""Bad grokking input through the real CLI: one clear paragraph, exit code 2, no traceback."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.cli.test_cli import assert_clean_error
from tests.study.test_grok_study import spec_text


@pytest.mark.parametrize(
    ("text", "expect"),
    [
        (
            spec_text().replace('"grok.x_plus_y"\np = 7', '"grok.x_div_y"\np = 91'),
            ["tasks[0]", "prime", "91"],
        ),
        (spec_text(extra_task="train_fraction = 0"), ["train_fraction", "greater than 0"]),
        (spec_text(snaps="[0, 10, 500]"), ["snapshot_steps", "500", "outside the run"]),
        (spec_text(p=5, extra="tsne_points = 30"), ["tsne_points=30", "only 25 pairs"]),
        (
            spec_text().replace("n_head = 2 }", 'n_head = 2, init = "xavier" }'),
            ["models[0].config", "init", "'torch' or 'mha'", "xavier"],
        ),
    ],
    ids=[
        "division-not-prime",
        "train-fraction",
        "snapshot-beyond-run",
        "tsne-too-many",
        "unknown-init",
    ],
)
def test_bad_grok_spec_via_cli(cli: Any, tmp_path: Path, text: str, expect: list[str]) -> None:
    spec = tmp_path / "grok.toml"
    spec.write_text(text)
    msg = assert_clean_error(cli("study", spec, "--out", tmp_path / "out"), code=2)
    for part in expect:
        assert part in msg, msg
    assert not (tmp_path / "out" / "grok-tiny" / "runs").exists()
