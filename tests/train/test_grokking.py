"""The grokking trainer: metrics over time, seeded split, resume, snapshots, early stop."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from smollab.errors import ConfigError, DataError
from smollab.io import read_json, read_jsonl
from smollab.models import build_small_model
from smollab.tasks import build_task, validate_task_config
from smollab.train.grokking import GrokTrainer, GrokTrainSpec, check_points

TINY = {"d_model": 32, "n_head": 2}


def make(run_dir: Path, p: int = 7, seed: int = 0, **spec_kw):
    task = build_task(validate_task_config({"id": "add", "task": "grok.x_plus_y", "p": p}))
    torch.manual_seed(seed)
    model = build_small_model(
        "decoder", TINY, vocab_size=task.vocab_size, n_out=task.n_classes, seq_len=4
    )
    kw = {"steps": 40, "batch_size": 16, "lr": 3e-3, "warmup_steps": 5, "eval_every": 5}
    spec = GrokTrainSpec(**{**kw, **spec_kw})
    return GrokTrainer(task, model, spec, run_dir, seed=seed)


def test_metrics_every_k_steps_and_summary(tmp_path: Path) -> None:
    summary = make(tmp_path).fit()
    rows = read_jsonl(tmp_path / "metrics.jsonl")
    assert [r["step"] for r in rows] == list(range(5, 41, 5))
    for key in ("train_loss", "train_acc", "val_loss", "val_acc", "weight_norm", "lr"):
        assert all(np.isfinite(r[key]) for r in rows), key
    assert summary["steps"] == 40 and summary["n_train"] + summary["n_val"] == 49
    assert summary["final_val_acc"] == rows[-1]["val_acc"]
    g = summary["step_val_acc_99"]
    assert g is None or rows[[r["step"] for r in rows].index(g)]["val_acc"] >= 0.99
    assert (tmp_path / "ckpt" / "final.pt").exists()
    split = read_json(tmp_path / "split.json")
    assert split["seed"] == 0 and len(split["train"]) == summary["n_train"]


def test_step_val_acc_99_is_first_eval_at_or_above(tmp_path: Path) -> None:
    # p = 5 with a high lr: the tiny task is learnt within the run
    tr = make(tmp_path, p=5, steps=300, lr=1e-2, weight_decay=0.1, batch_size=32)
    summary = tr.fit()
    rows = read_jsonl(tmp_path / "metrics.jsonl")
    first = next((r["step"] for r in rows if r["val_acc"] >= 0.99), None)
    assert summary["step_val_acc_99"] == first
    mem = next((r["step"] for r in rows if r["train_acc"] >= 0.99), None)
    assert summary["memorisation_step"] == mem
    if first is not None and mem is not None:
        assert summary["grokking_gap"] == first - mem


def test_resume_after_kill_reaches_same_final_metrics(tmp_path: Path) -> None:
    whole = make(tmp_path / "a", checkpoint_every=10).fit()
    # the "killed" run stops after step 23; its last checkpoint is step 20
    killed = make(tmp_path / "b", checkpoint_every=10)
    killed.fit(stop_at=23)
    assert read_json(tmp_path / "b" / "split.json") == read_json(tmp_path / "a" / "split.json")
    resumed = make(tmp_path / "b", checkpoint_every=10)
    assert resumed.resume() and resumed.step == 20
    summary = make(tmp_path / "b", checkpoint_every=10).fit()
    strip = {"train_time_s", "snapshot_time_s", "ms_per_step"}
    assert {k: v for k, v in summary.items() if k not in strip} == {
        k: v for k, v in whole.items() if k not in strip
    }
    ra = read_jsonl(tmp_path / "a" / "metrics.jsonl")
    rb = read_jsonl(tmp_path / "b" / "metrics.jsonl")
    assert [{k: v for k, v in r.items() if k != "time_s"} for r in ra] == [
        {k: v for k, v in r.items() if k != "time_s"} for r in rb
    ]


def test_a_run_killed_before_its_first_checkpoint_starts_over(tmp_path: Path) -> None:
    """QA: with no checkpoint yet, the restarted run appended to the dead attempt's metrics
    rows (every early step twice, and a back-jump in the curves and figures)."""
    kw = {"checkpoint_every": 1000, "snapshot_steps": [0, 12, 40], "snapshot_points": 30}
    whole = make(tmp_path / "a", **kw).fit()
    make(tmp_path / "b", **kw).fit(stop_at=23)
    assert not (tmp_path / "b" / "ckpt" / "last.pt").exists()
    assert len(read_jsonl(tmp_path / "b" / "metrics.jsonl")) == 5  # steps 5, 10, 12, 15, 20
    again = make(tmp_path / "b", **kw).fit()
    strip = {"train_time_s", "snapshot_time_s", "ms_per_step"}
    assert {k: v for k, v in again.items() if k not in strip} == {
        k: v for k, v in whole.items() if k not in strip
    }
    ra = read_jsonl(tmp_path / "a" / "metrics.jsonl")
    rb = read_jsonl(tmp_path / "b" / "metrics.jsonl")
    assert [{k: v for k, v in r.items() if k != "time_s"} for r in ra] == [
        {k: v for k, v in r.items() if k != "time_s"} for r in rb
    ]


def test_an_off_grid_snapshot_does_not_set_the_99_step(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """QA: an extra evaluation row at an explicit snapshot step (12, between the grid's 10 and
    15) reported step_val_acc_99 = 12, where the same run without that snapshot reports 15."""
    tr = make(tmp_path, steps=40, snapshot_steps=[0, 12, 40], snapshot_points=30)
    monkeypatch.setattr(tr, "evaluate", lambda: (0.0, 1.0 if tr.step >= 12 else 0.5))
    summary = tr.fit()
    assert 12 in [r["step"] for r in read_jsonl(tmp_path / "metrics.jsonl")]
    assert summary["step_val_acc_99"] == 15


def test_split_of_another_config_is_refused(tmp_path: Path) -> None:
    make(tmp_path, seed=0).fit(stop_at=0)
    with pytest.raises(DataError, match="different split"):
        make(tmp_path, seed=1)


def test_snapshots_hold_representations(tmp_path: Path) -> None:
    summary = make(tmp_path, snapshot_steps=[0, 12, 40], snapshot_points=30).fit()
    assert summary["snapshots"] == ["step_000000.npz", "step_000012.npz", "step_000040.npz"]
    with np.load(tmp_path / "snapshots" / "step_000012.npz") as z:
        assert z["first"].shape == z["last"].shape == (30, 32)
        assert z["embed"].shape == (30, 4 * 32)  # the whole sequence's embeddings
        assert z["token_embeddings"].shape == (7, 32)
        assert int(z["step"]) == 12 and 0 <= float(z["val_acc"]) <= 1
        assert z["is_train"].dtype == bool and z["is_train"].any()
    # an evaluation row exists at the off-grid snapshot step
    assert 12 in [r["step"] for r in read_jsonl(tmp_path / "metrics.jsonl")]


def test_stop_after_99(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tr = make(tmp_path, steps=500, stop_after_99=20, snapshot_steps=[0, 10, 400])
    # validation accuracy "reaches" 100% at step 15: the run stops 20 steps later
    monkeypatch.setattr(tr, "evaluate", lambda: (0.0, 1.0 if tr.step >= 15 else 0.5))
    summary = tr.fit()
    assert summary["step_val_acc_99"] == 15
    assert summary["steps"] == 35 and summary["stopped_early"]
    assert read_jsonl(tmp_path / "metrics.jsonl")[-1]["step"] == 35
    # the last step of a stopped run is snapshotted ("after" grokking)
    assert summary["snapshots"] == ["step_000000.npz", "step_000010.npz", "step_000035.npz"]


def test_stop_after_99_of_zero_snapshots_the_step_that_reached_99(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """QA: with stop_after_99 = 0 the run ended at the step that reached 99% without the last
    snapshot every other early stop gets."""
    tr = make(tmp_path, steps=500, stop_after_99=0, snapshot_steps=[0, 10, 400])
    monkeypatch.setattr(tr, "evaluate", lambda: (0.0, 1.0 if tr.step >= 15 else 0.5))
    summary = tr.fit()
    assert summary["step_val_acc_99"] == 15 and summary["steps"] == 15
    assert summary["snapshots"] == ["step_000000.npz", "step_000010.npz", "step_000015.npz"]


def test_snapshot_step_beyond_the_run() -> None:
    with pytest.raises(ValidationError, match="outside the run"):
        GrokTrainSpec(steps=100, snapshot_steps=[0, 50, 101])


def test_tsne_more_points_than_exist() -> None:
    with pytest.raises(ValidationError, match="t-SNE"):
        GrokTrainSpec(snapshot_points=100, tsne_points=200, snapshot_steps="auto")
    task = build_task(validate_task_config({"id": "a", "task": "grok.x_plus_y", "p": 5}))
    with pytest.raises(ConfigError, match="only 25 pairs"):
        check_points(GrokTrainSpec(tsne_points=30, snapshot_steps="auto"), task, "spec")


def test_tsne_without_snapshots_is_refused() -> None:
    """t-SNE is drawn from snapshots: with snapshot_steps 'none' (the default) none would be
    made, and the report would still list tsne_points as a setting."""
    with pytest.raises(ValidationError, match="snapshot_steps is 'none' .the default."):
        GrokTrainSpec(tsne_points=10)
    assert GrokTrainSpec(tsne_points=10, snapshot_steps=[0, 100]).tsne_points == 10


def test_per_part_learning_rates(tmp_path: Path) -> None:
    tr = make(tmp_path, lr_mult={"embed": 10.0}, wd_mult={"head": 0.0})
    lrs = {g["name"]: (g["base_lr"], g["weight_decay"]) for g in tr.optimizer.param_groups}
    assert lrs["embed"][0] == pytest.approx(3e-2) and lrs["layers"][0] == pytest.approx(3e-3)
    assert lrs["head"][1] == 0.0 and lrs["layers"][1] == 0.5
    json.dumps(tr.spec.model_dump(mode="json"))


def _authors_gradfilter_ema(m: torch.nn.Module, grads, alpha: float, lamb: float):
    """``gradfilter_ema`` as published with Grokfast (Lee et al. 2024), for comparison."""
    if grads is None:
        grads = {n: p.grad.data.detach() for n, p in m.named_parameters() if p.grad is not None}
    for n, p in m.named_parameters():
        if p.grad is not None:
            grads[n] = grads[n] * alpha + p.grad.data.detach() * (1 - alpha)
            p.grad.data = p.grad.data + grads[n] * lamb
    return grads


def test_grokfast_filter_matches_the_authors_function(tmp_path: Path) -> None:
    tr = make(tmp_path, grokfast_alpha=0.9, grokfast_lamb=2.0)
    ref = make(tmp_path / "ref")
    ref.model.load_state_dict(tr.model.state_dict())
    x, y = tr.train_x[:8], tr.train_y[:8]
    grads = None
    for _ in range(3):
        for t in (tr, ref):
            t.model.zero_grad(set_to_none=True)
            torch.nn.functional.cross_entropy(t.model(x), y).backward()
        raw = [p.grad.clone() for p in tr.model.parameters()]
        tr._grokfast_filter()
        grads = _authors_gradfilter_ema(ref.model, grads, 0.9, 2.0)
        for p, q, g in zip(tr.model.parameters(), ref.model.parameters(), raw, strict=True):
            torch.testing.assert_close(p.grad, q.grad)
            assert not torch.equal(p.grad, g)  # the filter changed the gradient


def test_grokfast_run_resumes_to_the_same_metrics(tmp_path: Path) -> None:
    kw = {"checkpoint_every": 10, "grokfast_alpha": 0.98}
    whole = make(tmp_path / "a", **kw).fit()
    make(tmp_path / "b", **kw).fit(stop_at=23)
    resumed = make(tmp_path / "b", **kw).fit()
    strip = {"train_time_s", "snapshot_time_s", "ms_per_step"}
    assert {k: v for k, v in resumed.items() if k not in strip} == {
        k: v for k, v in whole.items() if k not in strip
    }
    plain = make(tmp_path / "c", checkpoint_every=10).fit()
    assert plain["final_val_loss"] != whole["final_val_loss"]  # the filter is in effect


def test_grokfast_left_out_of_the_hash_when_off() -> None:
    from smollab.study.grok_kind import hashed_config

    off = hashed_config(GrokTrainSpec())
    assert "grokfast_alpha" not in off and "grokfast_lamb" not in off
    on = hashed_config(GrokTrainSpec(grokfast_alpha=0.98))
    assert on["grokfast_alpha"] == 0.98 and on["grokfast_lamb"] == 2.0
    with pytest.raises(ValidationError):
        GrokTrainSpec(grokfast_alpha=1.5)


def test_cosine_schedule_decays_after_the_warm_up(tmp_path: Path) -> None:
    import math

    make(tmp_path / "c", lr_schedule="cosine", min_lr_ratio=0.1).fit()
    lrs = {r["step"]: r["lr"] for r in read_jsonl(tmp_path / "c" / "metrics.jsonl")}
    # the lr logged at step s is the one its last update used (update s - 1; warm-up 5, 40 steps)
    assert lrs[5] == pytest.approx(3e-3 * 4 / 5)  # still warming up
    for s in range(10, 41, 5):
        done = (s - 1 - 5) / 35
        assert lrs[s] == pytest.approx(3e-3 * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * done))))
    assert 3e-4 < lrs[40] < lrs[20] < lrs[10] < 3e-3
    make(tmp_path / "k").fit()
    flat = [r["lr"] for r in read_jsonl(tmp_path / "k" / "metrics.jsonl")][1:]
    assert flat == [pytest.approx(3e-3)] * 7  # after the warm-up, constant (as the template)


def test_lr_schedule_left_out_of_the_hash_when_constant() -> None:
    from smollab.study.grok_kind import hashed_config

    off = hashed_config(GrokTrainSpec())
    assert "lr_schedule" not in off and "min_lr_ratio" not in off
    on = hashed_config(GrokTrainSpec(lr_schedule="cosine"))
    assert on["lr_schedule"] == "cosine" and on["min_lr_ratio"] == 0.0
    for bad in ({"lr_schedule": "linear"}, {"lr_schedule": "cosine", "min_lr_ratio": 1.5}):
        with pytest.raises(ValidationError):
            GrokTrainSpec(**bad)
    with pytest.raises(ValidationError, match='no effect with a constant.*lr_schedule = "cosine"'):
        GrokTrainSpec(min_lr_ratio=0.1)  # would be silently ignored


def test_shared_prefix_trains_the_same_model(tmp_path: Path) -> None:
    """The shared-prefix forward (prefixes found once per task, a per-token first projection)
    is the same function as the plain one: the two runs differ by rounding only."""
    a = make(tmp_path / "a", shared_prefix=True)
    assert a.prefixes is not None and len(a.prefixes) == 7  # x op: one prefix per x
    a.fit()
    make(tmp_path / "b", shared_prefix=False).fit()
    ra = read_jsonl(tmp_path / "a" / "metrics.jsonl")
    rb = read_jsonl(tmp_path / "b" / "metrics.jsonl")
    for x, y in zip(ra, rb, strict=True):
        for key in ("train_loss", "val_loss", "weight_norm"):
            assert y[key] == pytest.approx(x[key], rel=1e-4), (x["step"], key)


@pytest.mark.parametrize("shared_prefix", [True, False])
def test_bf16_autocast_on_cpu_learns(tmp_path: Path, shared_prefix: bool) -> None:
    # p = 5: a 12-pair training set, memorised within 200 steps (as in fp32)
    spec = {"steps": 200, "batch_size": 32, "precision": "bf16", "shared_prefix": shared_prefix}
    summary = make(tmp_path, p=5, **spec).fit()
    rows = read_jsonl(tmp_path / "metrics.jsonl")
    assert all(np.isfinite(r["train_loss"]) and np.isfinite(r["val_loss"]) for r in rows)
    assert rows[-1]["train_loss"] < 0.05 * rows[0]["train_loss"]
    assert rows[-1]["train_acc"] >= 0.99 and summary["n_train"] == 12
    assert summary["memorisation_step"] is not None


@pytest.mark.parametrize("native", [True, False])
def test_bf16_on_a_cpu_without_native_bf16_warns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, native: bool
) -> None:
    """precision = "bf16" is kept as asked (it is the run's numerics), with a warning where it
    is emulated; fp32 never warns."""
    import smollab.train.grokking as grok_mod

    monkeypatch.setattr(grok_mod, "native_bf16", lambda device: native)
    for precision in ("bf16", "fp32"):
        events: list[dict] = []
        t = make(tmp_path / precision, steps=5, precision=precision)
        t.emit = events.append
        t.fit()
        warnings = [e["text"] for e in events if e.get("event") == "warning"]
        expected = precision == "bf16" and not native
        assert warnings == ([grok_mod.BF16_EMULATED] if expected else [])


def test_grok_settings_given_as_text_are_refused_naming_the_field() -> None:
    """`steps = "7500"` in [conditions.config] is a typo to report, not a number to coerce."""
    from smollab.study.spec import loads_spec

    text = (
        '[study]\nname = "g"\nkind = "grok"\nseeds = [0]\n'
        '[[models]]\nname = "m"\nsource = "small:decoder"\nconfig = { d_model = 32, n_head = 2 }\n'
        '[[tasks]]\nid = "add"\ntask = "grok.x_plus_y"\np = 7\n'
        '[[conditions]]\nname = "ref"\n[conditions.config]\nsteps = 30\nlr = 1\n'
    )
    assert loads_spec(text, "g.toml").conditions[0].config == {"steps": 30, "lr": 1}
    for old, new, field in (
        ("steps = 30", 'steps = "30"', "steps"),
        ("p = 7", 'p = "7"', "p"),
        ("d_model = 32", "d_model = 32.0", "d_model"),
    ):
        with pytest.raises(ConfigError, match=field) as err:
            loads_spec(text.replace(old, new), "g.toml")
        assert "g.toml" in str(err.value)


def test_a_batch_larger_than_the_training_set_warns(tmp_path: Path) -> None:
    """p = 7: 24 training pairs; a batch of 100 (drawn with replacement) trains, with a warning
    naming the field, the sizes and the fix; a batch of 24 does not warn."""
    for bs, warned in ((100, True), (24, False)):
        events: list[dict] = []
        t = make(tmp_path / str(bs), steps=5, batch_size=bs)
        t.emit = events.append
        t.fit()
        warnings = [e["text"] for e in events if e.get("event") == "warning"]
        assert warnings == (
            [
                "batch_size = 100 is larger than the 24 training pairs of task 'add': batches "
                "are drawn with replacement, so a step sees each pair about 4.2 times and costs "
                "4.2x a batch of 24. Set batch_size to at most 24, or raise p or train_fraction"
            ]
            if warned
            else []
        )
