"""Entry point: ``smollab COMMAND``."""

from __future__ import annotations

import os

import typer

from smollab.cli import agent as _agent
from smollab.cli import eval as _eval
from smollab.cli import report as _report
from smollab.cli import sample as _sample
from smollab.cli import sandbox as _sandbox
from smollab.cli import study as _study
from smollab.cli import train as _train

os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

app = typer.Typer(
    help="smollab: research on small language models, from question to paper.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.command("run")(_study.run)
app.command("study")(_study.study)
app.command("report")(_report.report)
app.command("sessions")(_report.sessions)
app.command("eval")(_eval.eval_cmd)
app.command("train")(_train.train_cmd)
app.command("sample")(_sample.sample_cmd)
app.command("resume")(_agent.resume)
app.command("estimate")(_agent.estimate)
app.add_typer(_sandbox.app, name="sandbox")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
