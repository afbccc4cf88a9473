"""What every command shares: the console, error handling and the progress display."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from smollab.errors import SmollabError

console = Console()
err_console = Console(stderr=True)
F = TypeVar("F", bound=Callable[..., Any])


def data_dir_arg(value: str | None) -> Path | None:
    """``--data-dir`` as a path; an empty value is refused (Path("") would be the current
    folder, silently)."""
    from smollab.errors import ConfigError

    if value is None:
        return None
    if not value.strip():
        raise ConfigError(
            "--data-dir is empty. Pass the folder holding the benchmark data (the one with "
            "gsm8k/, hellaswag/, ...), or leave the option out to use $SMOLLAB_DATA_DIR."
        )
    return Path(value).expanduser()


def local_base_url_error(model: str | None) -> SmollabError:
    """The error for ``--base-url`` given with a local ``--model``."""
    from smollab.errors import ConfigError

    return ConfigError(
        f"--base-url is for API models (openai:MODEL on a compatible server); {model!r} is a "
        "local model. Drop --base-url, or name the server's model as openai:MODEL."
    )


#: what Ctrl-C prints by default (a study's words; ``handle_errors(interrupted=...)`` for others)
INTERRUPTED = (
    "what finished is kept (runs, evaluated items, the last training checkpoints); run the "
    "same command again to resume."
)


def handle_errors(fn: F | None = None, *, interrupted: str = INTERRUPTED) -> Any:
    """Turn SmollabError / Ctrl-C into one clear paragraph and a non-zero exit, no traceback.
    ``@handle_errors``, or ``@handle_errors(interrupted=TEXT)`` for a command whose Ctrl-C
    message is not a study's."""

    def decorate(fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return fn(*args, **kwargs)
            except SmollabError as e:
                # escaped: messages name spec tables such as [conditions.train], not rich markup
                err_console.print(f"[bold red]error:[/] {escape(e.render())}", highlight=False)
                sys.exit(e.exit_code)
            except KeyboardInterrupt:
                err_console.print(f"[bold yellow]interrupted:[/] {escape(interrupted)}")
                sys.exit(130)

        return wrapper  # type: ignore[return-value]

    return decorate(fn) if fn is not None else decorate


class StudyProgress:
    """Progress bars for runs: one bar per run for training steps, one for evaluation items."""

    def __init__(self) -> None:
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        )
        self.bars: dict[str, Any] = {}
        self.last_info: dict[str, str] = {}  # a grokking run's last evaluation, by label

    def __enter__(self) -> StudyProgress:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.progress.__exit__(*exc)

    def _bar(self, key: str, desc: str, total: int | None) -> Any:
        if key not in self.bars:
            self.bars[key] = self.progress.add_task(desc, total=total, info="")
        return self.bars[key]

    def __call__(self, e: dict[str, Any]) -> None:
        label = e.get("label", "")
        ev = e.get("event")
        if ev == "reused":
            console.print(f"  [dim]reused finished run {label}[/]")
        elif ev == "stage" and e.get("stage") == "prepare":
            bar = self._bar(f"{label}/train", f"train {label}", e.get("total"))
            self.progress.update(bar, info="building the training set")
        elif ev == "stage" and e.get("stage") == "train":
            bar = self._bar(f"{label}/train", f"train {label}", e.get("total"))
            self.progress.update(bar, completed=e.get("step", 0), info="")
        elif ev == "train_step":
            bar = self._bar(f"{label}/train", f"train {label}", e.get("total"))
            info = f"loss {e['loss']:.4f}"
            if e.get("eval"):
                info += " | " + " ".join(
                    # a pretraining run's validation loss and perplexity are not rates
                    f"{k.split('/')[-1]}:{v:.3g}"
                    if k.endswith(("val_loss", "val_ppl"))
                    else f"{k.split('/')[-1]}:{v:.0%}"
                    for k, v in e["eval"].items()
                )
            self.progress.update(bar, completed=e["step"], info=info)
        elif ev == "step":  # a grokking run's evaluation step
            bar = self._bar(f"{label}/train", f"train {label}", e.get("total"))
            info = (
                f"loss {e['train_loss']:.4f} | train {e['train_acc']:.0%} val {e['val_acc']:.0%}"
                if {"train_loss", "train_acc", "val_acc"} <= e.keys()
                else ""
            )
            self.progress.update(bar, completed=e["step"], info=info)
            self.last_info[label] = info
        elif ev == "stage" and e.get("stage") == "analysis" and f"{label}/train" in self.bars:
            self.progress.update(self.bars[f"{label}/train"], info="representation analysis")
        elif ev == "done" and f"{label}/train" in self.bars:
            bar = self.bars[f"{label}/train"]
            t = next(t for t in self.progress.tasks if t.id == bar)
            info = self.last_info.get(label, t.fields.get("info", ""))
            if t.total is not None and t.completed < t.total:
                info += " | stopped early"  # a grokking run that stop_after_99 ended
            self.progress.update(bar, info=info)
        elif ev == "stage" and e.get("stage") == "eval":
            self._bar(f"{label}/eval/{e['task']}", f"eval  {label} {e['task']}", e.get("total"))
            self.bars[f"{label}/eval"] = self.bars[f"{label}/eval/{e['task']}"]
        elif ev == "eval_items" and f"{label}/eval" in self.bars:
            self.progress.advance(self.bars[f"{label}/eval"], e["n"])
        elif ev == "resumed":
            console.print(f"  [yellow]resumed {label} from step {e['step']}[/]")
        elif ev == "api_bound":
            console.print(f"  API calls: {escape(e['text'])}")
        elif ev == "warning":
            console.print(f"  [yellow]{escape(label)}: {escape(e['text'])}[/]")
        elif ev == "spec_changed":
            console.print(
                "  [yellow]this session last ran another spec: its study.toml, data, "
                f"results, figures, paper and report were moved to {escape(e['archived'])}; "
                "runs whose content is unchanged are reused[/]"
            )


def results_table(results: dict[str, Any]) -> Table:
    """Each task's score (exact match, or a benchmark's own metric, named beside the task) per
    condition x stratum, with intervals."""
    from smollab.report.fmt import score_label

    scores = {score_label(t) for t in results["tasks"].values()}
    title = "Exact match" if scores == {"exact match"} else "Score"
    table = Table(title=f"{title} (95% interval)")
    table.add_column("task / stratum")
    conds = list(results["conditions"])
    for c in conds:
        table.add_column(c, justify="right")
    for tname, t in results["tasks"].items():
        score = score_label(t)
        named = tname if score == "exact match" else f"{tname} ({score})"
        # one stratum: its row and the overall row hold the same items; print it once
        for s in [*t["strata"], "overall"] if len(t["strata"]) != 1 else ["overall"]:
            row = [f"{named} / {s}"]
            for c in conds:
                tb = results["conditions"][c]["tasks"][tname]
                b = tb["overall"] if s == "overall" else tb["strata"][s]
                em = b["exact_match"]
                row.append(f"{em['estimate']:.1%} [{em['low']:.1%}, {em['high']:.1%}]")
            table.add_row(*row)
    return table


def print_paths(paths: list[Path]) -> None:
    console.print("[bold]Written:[/]")
    for p in paths:
        console.print(f"  {p}")
