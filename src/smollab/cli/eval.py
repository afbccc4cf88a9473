"""``smollab eval --model M --task T [--task ...]``: benchmark one model."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from smollab.cli.agent import BudgetOpt
from smollab.cli.common import (
    console,
    data_dir_arg,
    handle_errors,
    local_base_url_error,
    print_paths,
)


@handle_errors(
    interrupted="the items evaluated so far are kept in the samples_<task>.jsonl files of the "
    "output folder (results.json and summary.md hold the tasks that finished); run the same "
    "eval command again to resume from them."
)
def eval_cmd(
    model: Annotated[
        str,
        typer.Option(
            "--model",
            help="model source (see `smollab study`), or a finished study run folder "
            "outputs/SESSION/runs/HASH (its trained model)",
        ),
    ],
    task: Annotated[
        list[str],
        typer.Option(
            "--task",
            help="benchmark task, or exact-match task (arith.add, arith.mul) with an optional "
            ":STRATUM[,STRATUM...] suffix (arith.mul:2x2), or text:PATH for every record of "
            "your own JSON Lines file; repeat for several",
        ),
    ],
    limit: Annotated[
        int | None,
        typer.Option(
            "--limit",
            min=1,
            help="only the first N items (arith_probe, arith.add, arith.mul, text: per stratum)",
        ),
    ] = None,
    num_fewshot: Annotated[
        int | None,
        typer.Option(
            "--num-fewshot",
            min=0,
            help="few-shot examples (gsm8k; arith.*: N > 0 uses the fewshot format with N)",
        ),
    ] = None,
    prompt_format: Annotated[
        str | None,
        typer.Option(
            "--format",
            help="prompt format of the exact-match tasks (a study's default: plain for arith.*, "
            "text for text): plain, fewshot, compact, compact_rev, compact_pp, chat, "
            "chat_answer (arith.*); text, text_chat (text)",
        ),
    ] = None,
    prompt_field: Annotated[
        str | None,
        typer.Option("--prompt-field", help="text: the field holding the prompt (default prompt)"),
    ] = None,
    answer_field: Annotated[
        str | None,
        typer.Option("--answer-field", help="text: the field holding the answer (default answer)"),
    ] = None,
    stratum_field: Annotated[
        str | None,
        typer.Option(
            "--stratum-field",
            help="text: the field naming each record's stratum, for results per stratum "
            "(default: one stratum, all)",
        ),
    ] = None,
    text_field: Annotated[
        str | None,
        typer.Option(
            "--text-field", help="corpus: a .jsonl record's field holding the text (default text)"
        ),
    ] = None,
    batch_size: Annotated[
        int | None,
        typer.Option(
            "--batch-size",
            min=1,
            help="requests per batch (default 32); API models: calls in flight (default 8)",
        ),
    ] = None,
    max_tokens: Annotated[
        int | None,
        typer.Option("--max-tokens", min=1, help="generation budget (gsm8k, code tasks)"),
    ] = None,
    samples: Annotated[
        int | None,
        typer.Option(
            "--samples", min=1, help="samples per problem for pass@k (code tasks; at most 1000)"
        ),
    ] = None,
    pass_k: Annotated[
        list[int] | None,
        typer.Option(
            "--pass-k",
            min=1,
            help="pass@k to report, each k at most --samples; repeat for several (default: "
            "1, 10, 100 up to --samples, and --samples itself)",
        ),
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="results folder (default outputs/eval/<model>)")
    ] = None,
    data_dir: Annotated[
        str | None, typer.Option("--data-dir", help="benchmark data dir (or $SMOLLAB_DATA_DIR)")
    ] = None,
    tokenizer: Annotated[
        str | None, typer.Option("--tokenizer", help="tokenizer dir for scratch: models")
    ] = None,
    device: Annotated[str, typer.Option("--device", help="cpu, cuda, cuda:N, mps or auto")] = "cpu",
    dtype: Annotated[str, typer.Option("--dtype", help="float32 or bfloat16")] = "float32",
    unsafe_sandbox: Annotated[
        bool,
        typer.Option(
            "--unsafe-sandbox",
            help="code tasks: run tests without bubblewrap where user namespaces are missing",
        ),
    ] = False,
    procs: Annotated[
        int,
        typer.Option(
            "--procs",
            min=1,
            help="worker processes, each with its own copy of the model: on CUDA one GPU "
            "each, round robin; on a CPU they share its threads (on 2 cores no faster than "
            "one process)",
        ),
    ] = 1,
    threads: Annotated[
        int | None,
        typer.Option(
            "--threads",
            min=1,
            help="CPU threads per process (default: PyTorch's, one per core, shared among "
            "the workers with --procs)",
        ),
    ] = None,
    cache: Annotated[
        bool, typer.Option("--cache/--no-cache", help="reuse cached request results")
    ] = True,
    base_url: Annotated[
        str | None,
        typer.Option(
            "--base-url", help="openai:MODEL on an OpenAI-compatible server (vLLM, Ollama)"
        ),
    ] = None,
    budget_usd: BudgetOpt = None,
) -> None:
    """Evaluate a model on benchmark tasks: results JSON with intervals, per-item samples.

    Tasks: hellaswag, hellaswag_nanogpt, gsm8k, gsm8k_chat, arith_probe, humaneval,
    humaneval_unstripped, humaneval_chat, mbpp, mbpp_sanitized, mbpp_chat (code tasks run
    their tests in the sandbox; --samples N gives pass@k, for k in 1, 10, 100 up to N and
    k = N, or for the k of --pass-k K [--pass-k K2 ...]; the _chat variants are for instruct
    and API models, scored on the reply's fenced code).
    Exact-match tasks arith.add and arith.mul (greedy generation scored by exact match, as
    in a study, with the study's evaluator): by default what a study evaluates when its
    \\[\\[tasks]] table gives only the task: strata 1x1, 1x2, 2x2, 3x3, 200 held-out items each,
    prompt format plain (no few-shot examples); --task arith.mul:2x2 picks strata, --limit N
    takes the first N items of each, --num-fewshot N (N > 0) uses the fewshot format with N
    examples, --format another format. Results: exact match with Wilson 95% intervals
    overall and per stratum (and digit accuracy).
    Your own question/answer data: --task text:PATH evaluates every record of the JSON Lines
    file PATH, in file order, read and scored as a study's text task reads its test_path
    (format text, or --format text_chat; exact match of the reply's first line);
    --prompt-field, --answer-field and --stratum-field name the fields (default prompt,
    answer, none), --limit N takes the first N records of each stratum. That is not the
    sample a study holds out of its path: for those items, give PATH as the session's
    data/TASK_test.jsonl, read as exactly the items the study evaluated (their ids, strata).
    Results: exact match with Wilson 95% intervals overall and per stratum. A bad file, line
    or field is refused before the model loads.
    Perplexity of raw text: --task corpus:PATH scores every document of PATH (a .txt file,
    documents separated by blank lines, or a .jsonl file with --text-field, default text;
    optionally .gz/.bz2) by rolling loglikelihood over the context window, as
    lm-evaluation-harness's wikitext: token_perplexity, word_perplexity, byte_perplexity and
    bits_per_byte, corpus-level, with 95% bootstrap intervals over documents.
    Items finished before an interruption are kept; the same command resumes.
    --procs N splits the items over N processes (the results are those of one process).

    A study run's trained model: --model outputs/SESSION/runs/HASH (or a LoRA run's
    RUN/ckpt/final) loads the run's base model and applies its checkpoint (full weights or
    LoRA adapter, unmerged) as the study's worker does. An exact-match task of the run's own
    (arith.add for an arith.add run) is built from the run's \\[\\[tasks]] table (its
    n_test, data_seed, strata, ...), so its items are exactly the run's held-out items
    (a :STRATUM suffix and --limit narrow them), and the run's own completions come back
    item by item; the prompt format defaults to the run's (--format sets another). So does
    text:PATH, for PATH the run's session's data/TASK_test.jsonl (or its test_path, read with
    the same fields); a PATH the run trained on is warned of. A baseline run is its base
    model. results.json names the run (model_info: kind 'run', folder, hash,
    base, method).

    API models (generation tasks only; keys from ANTHROPIC_API_KEY / OPENAI_API_KEY):
    --model anthropic:MODEL or openai:MODEL [--base-url URL]; --batch-size is then the number
    of calls in flight (default 8). Before the first call the worst case of the calls not yet
    cached is printed; --budget-usd B refuses the run (exit 4, no call made) if it exceeds B.

    Example: smollab eval --model smollm2-135m --task arith.mul:2x2 --task hellaswag
    (or --task text:qa.jsonl --stratum-field topic)
    """
    from rich.markup import escape
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from smollab.eval.harness import (
        check_exact_match_procs,
        default_out_dir,
        make_tasks,
        run_eval,
        summary_rows,
    )

    opts: dict[str, Any] = {
        "limit": limit,
        "num_fewshot": num_fewshot,
        "data_dir": str(data_path) if (data_path := data_dir_arg(data_dir)) else None,
        "max_tokens": max_tokens,
        "n_samples": samples,
        "k": list(dict.fromkeys(pass_k)) if pass_k else None,
        "unsafe": True if unsafe_sandbox else None,
        "format": prompt_format,
        "prompt_field": prompt_field,
        "answer_field": answer_field,
        "stratum_field": stratum_field,
        "text_field": text_field,
    }
    flags = {
        "n_samples": "--samples",
        "k": "--pass-k",
        "unsafe": "--unsafe-sandbox",
        "max_tokens": "--max-tokens",
        "num_fewshot": "--num-fewshot",
        "format": "--format",
        "prompt_field": "--prompt-field",
        "answer_field": "--answer-field",
        "stratum_field": "--stratum-field",
        "text_field": "--text-field",
    }
    run, run_dir = _run_of(model)
    # before torch is imported; a study run's own tasks are built from its [[tasks]] tables
    tasks = make_tasks(list(dict.fromkeys(task)), opts, flags, run=run, run_dir=run_dir)
    for t in tasks:
        note = getattr(t, "note", None)
        if note:
            style = "bold yellow" if "WARNING" in note else "dim"
            console.print(f"[{style}]{t.name}: {escape(note)}[/{style}]")
    from smollab.eval.parallel import check_procs
    from smollab.eval.provider_lm import (
        API_CONCURRENCY,
        check_budget_target,
        check_tasks,
        is_api_source,
        make_provider_lm,
    )
    from smollab.models import load_model
    from smollab.models.loader import check_dtype
    from smollab.study.session import check_writable

    check_dtype(dtype, where="--dtype")
    api = is_api_source(model)
    batch_size = batch_size or (API_CONCURRENCY if api else 32)
    check_procs(procs, api=api, device=device)
    check_exact_match_procs(tasks, procs)
    check_budget_target(model, budget_usd)
    if api:
        check_tasks(model, tasks)
    elif base_url:
        raise local_base_url_error(model)
    # an API model is only a client (its key is checked here): set up before the data
    api_lm = make_provider_lm(model, base_url=base_url, concurrency=batch_size) if api else None
    out_dir = out or default_out_dir(model)
    check_writable(out_dir, flag="--out")  # after the option checks, before data and model
    for t in tasks:
        t.docs()  # load (and check) every dataset before the model
    load_args: dict[str, Any] = {
        "source": model,
        "tokenizer": tokenizer,
        "device": device,
        "dtype": dtype,
    }
    if threads and not api and procs == 1:
        import torch

        torch.set_num_threads(threads)
    loaded: Any = api_lm or load_model(**load_args)
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        bars: dict[str, Any] = {}

        def on_event(e: dict[str, Any]) -> None:
            if e["event"] == "api_bound":
                console.print(f"API calls: {escape(e['text'])}")
            elif e["event"] == "set_aside":
                console.print(
                    f"{e['task']}: {e['n']} samples computed with another model or task "
                    f"configuration moved to {escape(e['path'])} (they come back if that "
                    "configuration runs here again)"
                )
            elif e["event"] == "kept":
                console.print(
                    f"{escape(str(out_dir / 'results.json'))} keeps the results of the tasks "
                    f"evaluated there before: {', '.join(e['tasks'])}"
                )
            elif e["event"] == "task":
                per = e.get("samples", 1)
                # the bar counts problems; with many samples each, it says so
                label = e["task"] + (f" ({per} samples per problem)" if per > 1 else "")
                bars[e["task"]] = progress.add_task(label, total=e["total"])
            elif e["event"] == "items":
                progress.advance(bars[e["task"]], e["n"])

        results = run_eval(
            loaded,
            tasks,
            out_dir,
            batch_size=batch_size,
            use_cache=cache,
            on_event=on_event,
            procs=procs,
            load_args=load_args,
            threads=threads,
            budget_usd=budget_usd,
        )
    table = Table(title=f"{model} (95% intervals)")
    for col in ("task", "metric", "estimate [interval]", "n"):
        table.add_column(col)
    for row in summary_rows(results):
        table.add_row(*map(str, row))
    console.print(table)
    now = {t.name for t in tasks}
    for name, t in results["tasks"].items():
        extra = (
            f", {t['truncated']} with the prompt or context cut from the left to fit the window"
            if t["truncated"]
            else ""
        )
        when = "" if name in now else " (an earlier run)"
        reused = t.get("n_reused") or 0
        if name in now and reused:
            new = t["n"] - reused
            when = (
                f" (every item read back from {t['samples']})"
                if not new
                else f" ({reused} read back from {t['samples']}, {new} computed)"
            )
        console.print(f"{name}: {t['n']} items in {t['seconds']:.1f} s{when}{extra}")
    if api:
        info = results["model_info"]
        cost = "unknown" if info["cost_usd"] is None else f"${info['cost_usd']:.4f}"
        console.print(
            f"{info['calls']} API calls, {info['input_tokens']} input / "
            f"{info['output_tokens']} output tokens, cost {cost}"
        )
    rows = [out_dir / t["samples"] for t in results["tasks"].values() if t.get("samples")]
    print_paths([out_dir / "results.json", out_dir / "summary.md", *rows])


def _run_of(model: str) -> tuple[Any, Path | None]:
    """The RunSpec and folder of the study run that ``--model`` names (a run folder or a LoRA
    run's ckpt/final), else (None, None); a source that cannot be loaded is said by the model
    loading, after the option checks."""
    from smollab.errors import ModelLoadError
    from smollab.models.loader import local_model_path, run_spec_of

    try:
        local = local_model_path(model)
        if local is None or local[0] != "run":
            return None, None
        return run_spec_of(local[1], finished=False), local[1]
    except ModelLoadError:
        return None, None
