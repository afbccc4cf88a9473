"""``smollab train --model M --task T``: train one model, as a study of one condition.

The command writes the study spec its flags describe (``SESSION/study.toml``) and runs it with
the study engine, so a trained model is a run like any other: content-hashed under
``SESSION/runs/HASH``, resumed from its last checkpoint when the command is run again,
evaluated on held-out items, and readable by ``smollab sample --run``, ``smollab eval --model``
and ``smollab report``. ``smollab study SESSION/study.toml`` runs the same study again
(finished runs are reused) and writes its report and paper.
"""

from __future__ import annotations

import difflib
import math
import re
import tomllib
from pathlib import Path
from typing import Annotated, Any

import typer

from smollab.cli.common import console, handle_errors
from smollab.cli.study import DataOpt, OutOpt, PdfOpt, WorkersOpt, _execute, _use_data_dir
from smollab.errors import ConfigError

#: what --set KEY=VALUE may prefix a key with (no prefix: a training setting)
SET_SCOPES = ("train", "task", "model", "eval")
#: the flags that set a training field, and the field
TRAIN_FLAGS = {
    "--steps": "steps",
    "--lr": "lr",
    "--batch-size": "batch_size",
    "--method": "method",
    "--seq-len": "seq_len",
}
TRAIN_FLAGS_BY_FIELD = {f: flag for flag, f in TRAIN_FLAGS.items()}
#: the grokking runs' model when --model is not given: the reference protocol's
#: (problems/grokking_representations.md), whose attention starts as nn.MultiheadAttention's
GROK_MODEL = "small:decoder"
GROK_MODEL_CONFIG: dict[str, Any] = {"init": "mha"}
LM_MODEL = "smollm2-135m"


def parse_sets(items: list[str]) -> dict[str, dict[str, Any]]:
    """``--set KEY=VALUE`` options -> ``{scope: {field: value}}`` for the scopes of
    :data:`SET_SCOPES`. VALUE is read as a TOML value (``5``, ``3e-4``, ``true``, ``[0.9,
    0.99]``, ``{"1x1" = 1}``), else kept as text."""
    out: dict[str, dict[str, Any]] = {s: {} for s in SET_SCOPES}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(
                f"--set {item!r} is not KEY=VALUE. Give a training setting (--set "
                "warmup_steps=5), a task option (--set task.n_test=50), a model config "
                "field (--set model.n_layer=1) or an evaluation setting (--set "
                "eval.batch_size=32)."
            )
        scope, dot, name = key.partition(".")
        if not dot:
            scope, name = "train", key
        elif scope not in SET_SCOPES or not name:
            raise ConfigError(
                f"--set {item!r}: {key!r} is not a setting. A key is a training setting "
                f"(lr) or one of {', '.join(s + '.FIELD' for s in SET_SCOPES)}."
            )
        if name in out[scope]:
            raise ConfigError(
                f"--set gives {key!r} twice ({out[scope][name]!r} and {raw.strip()!r}); give "
                "it once."
            )
        value = toml_value(raw)
        _check_finite(value, f"--set {key}={raw.strip()}")
        out[scope][name] = value
    return out


def _check_finite(value: Any, where: str) -> None:
    """Refuse nan and inf (TOML reads them as floats): no setting takes them, and a study spec
    cannot hold them, so the error names the flag here rather than the spec later."""
    values = value.values() if isinstance(value, dict) else value
    for v in values if isinstance(value, list | dict) else [value]:
        if isinstance(v, list | dict):
            _check_finite(v, where)
        elif isinstance(v, float) and not math.isfinite(v):
            raise ConfigError(f"{where}: {v} is not a finite number; give a number such as 3e-4.")


def toml_value(raw: str) -> Any:
    """A ``--set`` value: TOML (numbers, booleans, arrays, inline tables, quoted strings),
    else the text itself (``--set lora_targets=q_proj`` is the string)."""
    text = raw.strip()
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def _task_table(arg: str, options: dict[str, Any]) -> dict[str, Any]:
    from smollab.eval.exact_match import parse_task_arg
    from smollab.tasks import TASKS

    name, sep, rest = arg.partition(":")
    if name in ("text", "corpus") and sep:  # NAME:PATH, as in smollab eval: the data file
        kind = "JSON Lines file" if name == "text" else "corpus (.txt or .jsonl)"
        example = "qa.jsonl" if name == "text" else "wiki.txt"
        if "path" in options:
            raise ConfigError(
                f"--task {arg} and --set task.path={options['path']!r} both give the {name} "
                f"task's data file; give it once (--task {name}:PATH)."
            )
        if not rest.strip():
            raise ConfigError(
                f"--task {arg} names no file after ':'. Give your {kind} as --task "
                f"{name}:PATH (e.g. --task {name}:{example})."
            )
        options = {**options, "path": rest.strip()}
        arg = name
        # named after its file, so that one file can be trained on and another evaluated
        file_id = _slug(re.sub(r"\.(jsonl|txt)(\.gz|\.bz2)?$", "", Path(rest.strip()).name))
    else:
        file_id = None
    name, strata = parse_task_arg(arg)
    config_cls, _ = TASKS.get(name, where=f"--task {arg}")  # unknown names list the valid ones
    for k in ("id", "task"):  # --task names the task; a --set would silently train another
        if k in options:
            raise ConfigError(
                f"--set task.{k}={options[k]!r}: the task is named by --task, not --set; give "
                "--task NAME (e.g. --task arith.mul) and drop the --set."
            )
    taken = {k: v for k, v in options.items() if k in config_cls.model_fields}
    if strata is not None and "strata" in taken:
        raise ConfigError(
            f"--task {arg} and --set task.strata=... both give {name}'s strata; give them once, "
            f"comma-separated after the task (--task {name}:1x1,2x2)."
        )
    table: dict[str, Any] = {"id": file_id or name.rsplit(".", 1)[-1], "task": name, **taken}
    if strata is not None:
        if not strata:
            raise ConfigError(
                f"--task {arg} names no stratum after ':'. Give strata comma-separated (e.g. "
                f"--task {name}:1x1,2x2), or drop the ':'."
            )
        table["strata"] = strata
    return table


def _task_fields(tables: list[dict[str, Any]]) -> str:
    from smollab.tasks import TASKS

    return " ".join(
        f"{t['task']} takes "
        + ", ".join(f for f in TASKS.get(t["task"])[0].model_fields if f not in ("id", "task"))
        + "."
        for t in tables
    )


def _check_fields(model: Any, values: dict[str, Any], flags: dict[str, str], what: str) -> None:
    """``values`` against the pydantic ``model`` of a training config; each bad field named
    by the flag that set it (``--lr``) or as ``--set FIELD=...``."""
    from typing import get_args, get_origin

    from pydantic import ValidationError

    try:
        model(**values)
    except ValidationError as e:
        valid = list(model.model_fields)
        parts = []
        for err in e.errors():
            msg = err["msg"].removeprefix("Value error, ")
            if not err["loc"]:  # a rule over several settings names them itself
                parts.append(f"{msg}.")
                continue
            field = str(err["loc"][0])
            flag = flags.get(field, f"--set {field}=...")
            if err["type"] == "extra_forbidden":
                close = difflib.get_close_matches(field, valid, n=1)
                hint = f" Did you mean {close[0]!r}?" if close else ""
                parts.append(
                    f"{flag}: {what} has no setting {field!r}.{hint} Its settings: "
                    f"{', '.join(valid)}."
                )
            elif get_origin(model.model_fields[field].annotation) is tuple:
                # a fixed number of values (betas): pydantic's "Field required" for a short
                # list says nothing of that
                n = len(get_args(model.model_fields[field].annotation))
                example = ",".join(map(str, model.model_fields[field].default))
                parts.append(
                    f"{flag}: {field} takes {n} numbers, e.g. --set {field}=[{example}] (got "
                    f"{values.get(field)!r})."
                )
            else:
                parts.append(f"{flag}: {msg} (got {err.get('input')!r}).")
        raise ConfigError("smollab train: " + " ".join(parts)) from None


def _slug(text: str) -> str:
    """A folder-safe piece of a session name."""
    s = re.sub(r"[^A-Za-z0-9_.-]+", "-", Path(text.rstrip("/")).name or text).strip("-.")
    return s or "model"


def _absolute(source: str) -> str:
    """A ``--model``/``--tokenizer`` (or a task's data file) that names an existing local path,
    as an absolute path: a study spec reads a relative one against the current directory, so
    ``smollab study SESSION/study.toml`` run from elsewhere would not find it (and the run
    hash, which covers the source as written, would differ). Names, scratch:ARCH and hub ids
    are kept as given."""
    from smollab.models.loader import EMBEDDED

    if source in EMBEDDED or source.startswith("scratch:"):
        return source
    p = Path(source).expanduser()
    return str(p.resolve()) if p.exists() else source


def build_spec(
    *,
    model: str | None,
    tasks: list[str],
    fmt: str | None,
    train_flags: dict[str, Any],
    sets: list[str],
    seeds: list[int],
    baseline: bool,
    name: str | None,
    tokenizer: str | None,
) -> dict[str, Any]:
    """The study spec (a dict, as TOML would give it) that ``smollab train``'s flags describe:
    one model, the tasks (the first is trained on), a condition ``train`` and, with
    ``baseline``, an evaluation-only condition ``baseline``."""
    from smollab.tasks import PROMPT_FORMATS
    from smollab.tasks.bench import BenchConfig
    from smollab.tasks.modular import ModularTaskConfig

    scoped = parse_sets(sets)
    given = {k for k, v in train_flags.items() if v is not None}
    twice = sorted(given & set(scoped["train"]))
    if twice:
        raise ConfigError(
            f"{TRAIN_FLAGS_BY_FIELD[twice[0]]} and --set {twice[0]}=... both set "
            f"{twice[0]!r}; give it once."
        )
    train = {**{k: v for k, v in train_flags.items() if v is not None}, **scoped["train"]}
    for k in given:
        _check_finite(train[k], TRAIN_FLAGS_BY_FIELD[k])
    # a bad value is named by what the user typed: --lr for --lr, --set lr=... for --set
    flags = {k: TRAIN_FLAGS_BY_FIELD[k] for k in given}
    tables = [_task_table(t, scoped["task"]) for t in dict.fromkeys(tasks)]
    for t in tables:  # a data file, like --model, is written to study.toml absolute
        for key in ("path", "test_path"):
            if isinstance(t.get(key), str):
                t[key] = _absolute(t[key])
    for k in scoped["task"]:  # each task takes the options it has; one no task has is an error
        if not any(k in t for t in tables):
            raise ConfigError(
                f"--set task.{k}=...: none of the tasks ({', '.join(tasks)}) has an option "
                f"{k!r}. {_task_fields(tables)}"
            )
    ids = [t["id"] for t in tables]
    if len(set(ids)) != len(ids):
        raise ConfigError(
            f"--task names one task twice ({', '.join(tasks)}); give it once, its strata "
            "comma-separated (e.g. --task arith.mul:1x1,2x2)."
        )
    from smollab.tasks import TASKS

    classes = [TASKS.get(t["task"])[0] for t in tables]
    grok = [issubclass(c, ModularTaskConfig) for c in classes]
    if any(grok) and not all(grok):
        mixed = ", ".join(t["task"] for t, g in zip(tables, grok, strict=True) if g)
        raise ConfigError(
            f"--task mixes grokking tasks ({mixed}) "
            "with language-model tasks; they train different models. Train them with separate "
            "smollab train commands."
        )
    if not grok[0] and issubclass(classes[0], BenchConfig):
        raise ConfigError(
            f"smollab train trains on the first --task, and {tables[0]['task']} is a benchmark "
            "that is only evaluated. Put a trainable task first (arith.add, arith.mul, "
            "text:QA.jsonl for your own data, or grok.* for a small model from "
            "scratch) and the benchmarks after it, e.g. --task "
            f"arith.mul --task {tables[0]['task']}."
        )
    pretrain = tables[0]["task"] == "corpus"
    if any(t["task"] == "corpus" for t in tables) and (not pretrain or len(tables) > 1):
        raise ConfigError(
            f"--task mixes a corpus with other tasks ({', '.join(tasks)}): --task corpus:PATH "
            "pretrains on raw text and is evaluated by held-out perplexity, in a study of its "
            "own. Give it as the only --task, and evaluate the trained model on other tasks "
            "afterwards with smollab eval --model RUN --task ...."
        )
    if pretrain and fmt is not None:
        raise ConfigError(
            f"--format {fmt}: pretraining on a corpus (--task corpus:PATH) reads raw text, with "
            "no prompt format. Drop --format."
        )
    model_config = scoped["model"]
    model_table: dict[str, Any]
    if all(grok):
        from smollab.train.grokking import GrokTrainSpec

        lm_only = {
            "--format": fmt,
            "--method": train.get("method"),
            "--seq-len": train.get("seq_len"),
            "--tokenizer": tokenizer,
            "--baseline": baseline or None,
            "--set eval.*": scoped["eval"] or None,
        }
        bad = [flag for flag, v in lm_only.items() if v is not None]
        if bad:
            raise ConfigError(
                f"{', '.join(bad)} {'is' if len(bad) == 1 else 'are'} for language-model "
                "training (arith.* tasks, text:PATH); grokking tasks train a small model "
                "from scratch, every run fully, with no prompt format. Drop "
                f"{'it' if len(bad) == 1 else 'them'}."
            )
        _check_fields(GrokTrainSpec, train, flags, "grokking training")
        source = model or GROK_MODEL
        config = {**(GROK_MODEL_CONFIG if model is None else {}), **model_config}
        model_table = {"name": _slug(source), "source": _absolute(source)}
        if config:
            model_table["config"] = config
        condition: dict[str, Any] = {"name": "train", "config": train}
        conditions = [condition]
    else:
        from smollab.study.spec import TrainSpec

        _check_fields(TrainSpec, train, flags, "fine-tuning")
        if fmt is not None:
            PROMPT_FORMATS.get(fmt, where="--format")
        source = model or LM_MODEL
        model_table = {"name": _slug(source), "source": _absolute(source)}
        if tokenizer is not None:
            model_table["tokenizer"] = tokenizer if tokenizer == "char" else _absolute(tokenizer)
        if model_config:
            model_table["config"] = model_config
        cond_format = {"format": fmt} if fmt is not None else {}
        conditions = [{"name": "train", **cond_format, "train": train}]
        if baseline:
            conditions.insert(0, {"name": "baseline", **cond_format})
    session = name or f"train-{ids[0]}-{_slug(source)}"
    spec: dict[str, Any] = {
        "study": {
            "name": session,
            **({"kind": "grok"} if all(grok) else {"kind": "pretrain"} if pretrain else {}),
            "title": f"{source} trained on {', '.join(t['task'] for t in tables[:1])}",
            "seeds": seeds,
        },
        "models": [model_table],
        "tasks": tables,
        "conditions": conditions,
    }
    if scoped["eval"]:
        spec["eval"] = scoped["eval"]
    return spec


@handle_errors
def train_cmd(
    task: Annotated[
        list[str],
        typer.Option(
            "--task",
            help="task to train on (arith.add, arith.mul[:STRATA], text:QA.jsonl for your own "
            "question/answer file, corpus:TEXT.txt to pretrain on raw text, grok.x_plus_y, ...); "
            "repeat to evaluate more tasks (benchmarks too) after training on the first",
        ),
    ],
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            help=f"model source, as in a study: an embedded name, a model folder, a .gguf "
            f"file, scratch:ARCH, a hub id or a finished run folder (default {LM_MODEL}; "
            f"grok.* tasks: {GROK_MODEL} with init = 'mha', the reference protocol's)",
        ),
    ] = None,
    prompt_format: Annotated[
        str | None,
        typer.Option(
            "--format",
            help="prompt format for training and evaluation (default: plain for arith.*, text "
            "for the text task)",
        ),
    ] = None,
    method: Annotated[
        str | None, typer.Option("--method", help="full or lora (default full)")
    ] = None,
    steps: Annotated[int | None, typer.Option("--steps", help="optimizer steps")] = None,
    lr: Annotated[float | None, typer.Option("--lr", help="peak learning rate")] = None,
    batch_size: Annotated[int | None, typer.Option("--batch-size", help="batch size")] = None,
    seq_len: Annotated[
        int | None, typer.Option("--seq-len", help="training sequence length in tokens")
    ] = None,
    seed: Annotated[
        list[int] | None,
        typer.Option("--seed", min=0, help="seed; repeat for several runs (default 0)"),
    ] = None,
    sets: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            help="any other setting, KEY=VALUE (a TOML value): a training setting "
            '(warmup_steps=5, weights={"2x2"=4}), task.FIELD (task.n_test=50), model.FIELD '
            "(a from-scratch model's config: model.n_layer=1) or eval.FIELD; repeat",
        ),
    ] = None,
    tokenizer: Annotated[
        str | None, typer.Option("--tokenizer", help="tokenizer dir for scratch: models")
    ] = None,
    baseline: Annotated[
        bool,
        typer.Option(
            "--baseline",
            help="also evaluate the untrained model and compare (McNemar, intervals; a corpus: "
            "bits per byte, paired bootstrap over documents)",
        ),
    ] = False,
    name: Annotated[
        str | None,
        typer.Option(
            "--session-name", help="session folder under --out (default train-TASK-MODEL)"
        ),
    ] = None,
    out: OutOpt = Path("outputs"),
    report: Annotated[
        bool,
        typer.Option(
            "--report/--no-report",
            help="also write figures, report.md/.html and the paper (default: results only; "
            "smollab report SESSION writes them later)",
        ),
    ] = False,
    pdf: PdfOpt = True,
    workers: WorkersOpt = None,
    data_dir: DataOpt = None,
) -> None:
    """Train one model on a task and evaluate it: a study of one condition.

    Language models (on arith.add, arith.mul, or your own question/answer file with
    text:PATH) are fine-tuned with the loss on the answer tokens; corpus:PATH (a .txt file,
    documents separated by blank lines, or a .jsonl file with a 'text' field) pretrains on
    raw text with the loss on every token (documents joined with EOS, cut into --seq-len
    chunks; task.test_fraction of the documents held out), and reports held-out perplexity;
    grokking tasks (grok.x_plus_y, grok.x_minus_y, grok.x_div_y, grok.permutation) train a
    small model from scratch with the reference configuration unless --steps/--lr/--set say
    otherwise. The settings and their defaults are those of a study's \\[conditions.train]
    (language models) or \\[conditions.config] (grokking); see `smollab study`.

    Writes OUT/NAME/study.toml (the study these flags describe) and the run folders
    OUT/NAME/runs/HASH (checkpoints, metrics.jsonl, the trained model in ckpt/final,
    per-item predictions) and results/results.json. The same command again resumes an
    interrupted run from its last checkpoint and reuses finished ones.

    Examples:
      smollab train --task arith.mul:1x1,1x2 --format compact --steps 60 --lr 3e-4
      smollab train --task arith.add --model scratch:gpt2 --set model.n_layer=2 --seed 0 --seed 1
      smollab train --task grok.x_plus_y --steps 3000 --set stop_after_99=100
      smollab train --task corpus:wiki.txt --model scratch:gpt2 --steps 200 --lr 1e-3
    """
    from smollab.study.session import check_session_name
    from smollab.study.spec import dumps_spec, loads_spec

    if name is not None:
        check_session_name(name)
    spec_dict = build_spec(
        model=model,
        tasks=task,
        fmt=prompt_format,
        train_flags={
            "steps": steps,
            "lr": lr,
            "batch_size": batch_size,
            "method": method,
            "seq_len": seq_len,
        },
        sets=sets or [],
        seeds=list(dict.fromkeys(seed)) if seed else [0],
        baseline=baseline,
        name=name,
        tokenizer=tokenizer,
    )
    session = spec_dict["study"]["name"]
    check_session_name(session)
    text = (
        "# Written by `smollab train`. `smollab study THIS_FILE` runs this study again\n"
        "# (finished runs are reused) and writes its report and paper.\n"
    ) + dumps_spec(spec_dict)
    try:  # the spec's checks, and those made when its runs start (LoRA targets, ...)
        spec = loads_spec(
            text, f"smollab train (the study it describes, {out / session}/study.toml)"
        )
        _use_data_dir(data_dir)
        res = _execute(spec, text, out, None, None, workers, pdf, report=report, notes=False)
    except ConfigError as e:
        e.message = _in_flags(e.message)
        raise
    _print_runs(res, spec)


def _in_flags(message: str) -> str:
    """An error of the study spec the flags describe, with the flag that sets the field it
    names: the user wrote flags, not the spec, so ``conditions[0].train.seq_len`` alone does
    not say what to change."""
    # a rule over several task options has no one field; its example fix is in spec syntax
    message = re.sub(r"(tasks\[\d+\]): field '\(top level\)': ", r"\1: ", message)
    message, fixed = re.subn(
        r"n_test_per_stratum = (\{[^}]*\})",
        lambda m: f"--set 'task.n_test_per_stratum={m[1].replace(' ', '')}'",
        message,
    )
    if fixed:
        return message
    # a task's own fixes in spec syntax (the corpus task's "set e.g. test_fraction = 0.5",
    # "set field 'text_field'", "give the test documents as test_path")
    message = re.sub(
        r"\bset e\.g\. test_fraction = (\S+)", r"e.g. --set task.test_fraction=\1", message
    )
    message = re.sub(
        r"\bset field '(\w+)'",
        lambda m: (
            "give another with --task corpus:PATH"
            if m[1] == "path"
            else f"set it with --set task.{m[1]}=..."
        ),
        message,
    )
    message = re.sub(r"\bas test_path\b", "as --set task.test_path=FILE", message)
    if m := re.search(r"conditions\[\d+\]\.train\.(\w+)", message):
        flag = TRAIN_FLAGS_BY_FIELD.get(m[1], f"--set {m[1]}=...")
    elif m := re.search(r"tasks\[\d+\]: (?:Task '[^']*': )?field '(\w+)'", message):
        # the corpus task's messages ("Task 'x': field 'path'") name the file --task
        # corpus:PATH gave
        corpus_file = m[1] == "path" and "Task '" in m[0]
        flag = "--task corpus:PATH" if corpus_file else f"--set task.{m[1]}=..."
    elif m := re.search(r"'eval\.(\w+)'", message):
        flag = f"--set eval.{m[1]}=..."
    elif re.search(r"models\[\d+\]\.config", message):
        flag = "--set model.FIELD=..."
    elif m := re.search(
        r"models\[\d+\] \(.*?\) sets (config and tokenizer|config|tokenizer)", message
    ):
        # a model that brings its own config or tokenizer: the flags that gave them
        flag = " and ".join(
            {"config": "--set model.FIELD=...", "tokenizer": "--tokenizer"}[f]
            for f in m[1].split(" and ")
        )
    elif re.search(r"conditions\[\d+\]\.format", message):
        flag = "--format"
    else:
        return message
    return f"{message} (In smollab train's flags: {flag})"


def _print_runs(res: Any, spec: Any) -> None:
    """Each trained run's training summary, where its model is, and what to run next."""
    from smollab.io import read_json
    from smollab.study.runspec import expand

    trained = []
    fmt = "plain"
    for r in expand(spec):
        rd = res.session_dir / "runs" / r.hash
        if r.condition == "baseline" or not (rd / "record.json").is_file():
            continue
        trained.append(rd)
        fmt = r.format
        summ = read_json(rd / "record.json").get("train") or {}
        bits = [f"{summ['steps']} steps"] if summ.get("steps") else []
        secs = summ.get("train_seconds", summ.get("train_time_s"))
        if secs:
            bits.append(f"{secs:.0f} s" if secs >= 10 else f"{secs:.1f} s")
        if summ.get("final_loss") is not None:
            # the trainer's final_loss, which the progress bar's last loss is not
            n = min(10, int(summ.get("steps") or 10))  # the trainer's mean of the last 10 rows
            bits.append(
                f"training loss {summ['final_loss']:.4f} (mean of the last {n} "
                f"step{'s' if n != 1 else ''})"
            )
        if summ.get("epochs") is not None:  # a pretraining run: passes over its text
            e = summ["epochs"]
            bits.append(
                f"{e:.3g} epochs of {summ['tokens_per_epoch']} training tokens"
                if e < 1000
                else f"{e:.0f} epochs of {summ['tokens_per_epoch']} training tokens"
            )
        if "step_val_acc_99" in summ:
            g = summ["step_val_acc_99"]
            bits.append(f"99% validation accuracy at step {g}" if g else "99% not reached")
        final = rd / "ckpt" / "final"
        # a LoRA run's ckpt/final is the adapter alone; --run / --model RUN load it on its base
        what = "LoRA adapter" if r.train is not None and r.train.method == "lora" else "model"
        where = f"{what} in {final}" if final.is_dir() else f"run folder {rd}"
        console.print(f"{r.label}: {', '.join(bits) or 'trained'}; {where}", markup=False)
    if trained and spec.study.kind == "lm":
        # both commands default to the run's format (and eval to the run's held-out items
        # of its own task), so the hints need no --format
        first = spec.tasks[0]
        if first["task"] == "text":  # sample sends a text prompt as it is
            test = res.session_dir / "data" / f"{first['id']}_test.jsonl"
            look, task_arg = "--prompt '...'", f"text:{test}"
        else:
            look, task_arg = f"--prompt '23*47' (wrapped in its format, {fmt})", first["task"]
        console.print(
            f"Look at its generations: smollab sample --run {trained[0]} {look}; evaluate it "
            f"further on its held-out items, in its format: smollab eval --model {trained[0]} "
            f"--task {task_arg}",
            markup=False,
        )
    if trained and spec.study.kind == "pretrain":
        test = res.session_dir / "data" / f"{spec.tasks[0]['id']}_test.jsonl"
        console.print(
            f"Look at its generations: smollab sample --run {trained[0]} --prompt '...'; its "
            f"held-out perplexity again: smollab eval --model {trained[0]} --task corpus:{test}",
            markup=False,
        )
    report = res.session_dir / "report.md"
    if report in res.written:
        console.print(f"Report: {report}", markup=False)
    elif spec.study.kind == "pretrain":
        # what the pretraining report holds (smollab.report.pretraining), not accuracy figures
        console.print(
            "Learning curves and bits-per-byte figure (figures/), report.md/.html with the "
            "perplexity table (and, with several conditions, their comparisons), "
            f"paper/paper.tex (+ paper.pdf with TeX): smollab report {res.session_dir}",
            markup=False,
        )
    else:
        console.print(f"Figures, report and paper: smollab report {res.session_dir}", markup=False)
