"""The study progress display follows grokking runs (their trainer's ``step`` events)."""

from __future__ import annotations

from smollab.cli.common import StudyProgress


def _task(p: StudyProgress, label: str):  # type: ignore[no-untyped-def]
    bar = p.bars[f"{label}/train"]
    return next(t for t in p.progress.tasks if t.id == bar)


def _row(step: int, val: float) -> dict:
    return {"step": step, "train_loss": 0.5, "train_acc": 1.0, "val_loss": 1.0, "val_acc": val}


def test_grokking_steps_advance_the_bar_and_an_early_stop_is_named() -> None:
    p = StudyProgress()
    with p:
        for label in ("ref/add/seed0", "ref/add/seed1"):
            p({"event": "stage", "stage": "train", "label": label, "total": 60})
        p({"event": "step", "label": "ref/add/seed0", "total": 60, **_row(30, 0.25)})
        p({"event": "step", "label": "ref/add/seed0", "total": 60, **_row(60, 0.5)})
        p({"event": "stage", "stage": "analysis", "label": "ref/add/seed0"})
        assert _task(p, "ref/add/seed0").fields["info"] == "representation analysis"
        p({"event": "done", "label": "ref/add/seed0"})
        # seed 1 reaches 99% and stop_after_99 ends it at step 40 of 60
        p({"event": "step", "label": "ref/add/seed1", "total": 60, **_row(40, 0.995)})
        p({"event": "done", "label": "ref/add/seed1"})
    full, early = _task(p, "ref/add/seed0"), _task(p, "ref/add/seed1")
    assert full.completed == 60
    assert full.fields["info"] == "loss 0.5000 | train 100% val 50%"
    assert early.completed == 40
    assert early.fields["info"] == "loss 0.5000 | train 100% val 100% | stopped early"


def test_a_fine_tuning_runs_done_event_keeps_its_last_line() -> None:
    p = StudyProgress()
    with p:
        p({"event": "stage", "stage": "train", "label": "ft/seed0", "total": 4})
        p({"event": "train_step", "label": "ft/seed0", "total": 4, "step": 4, "loss": 1.25})
        p({"event": "done", "label": "ft/seed0"})
    t = _task(p, "ft/seed0")
    assert t.completed == 4 and t.fields["info"] == "loss 1.2500"
