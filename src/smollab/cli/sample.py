"""``smollab sample --model M --prompt TEXT``: look at a model's generations.

The model comes from the one loader (:func:`smollab.models.load_model`), or, with ``--run``,
from a finished study run (its trained weights, as the study's worker loads them); the text
comes from the LM interface's ``generate`` (:class:`~smollab.eval.lm.HFLM`, batched greedy or
seeded sampling; :class:`~smollab.eval.provider_lm.ProviderLM` for API models).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated, Any

import typer

from smollab.cli.common import console, handle_errors, local_base_url_error, print_paths
from smollab.errors import ConfigError

#: an arithmetic question a prompt format can wrap: ``23*47``, ``23 * 47 =``, ``7+8?``
_QUESTION = re.compile(r"^\s*(-?\d+)\s*([*x×+])\s*(-?\d+)\s*[=?]?\s*$")


def read_prompts(prompts: list[str], prompts_file: Path | None) -> list[str]:
    """The ``--prompt`` texts, then the prompts of ``--prompts-file`` (one per line, or JSONL
    with a "prompt" field); a ConfigError naming the option or file when there are none."""
    out = list(prompts)
    if prompts_file is not None:
        if not prompts_file.is_file():
            what = "is a folder" if prompts_file.is_dir() else "does not exist"
            raise ConfigError(
                f"--prompts-file {prompts_file} {what}. Pass a text file with one prompt per "
                'line, or a JSONL file with a "prompt" field on each line.'
            )
        lines = prompts_file.read_text(encoding="utf-8").splitlines()
        filled = [(n, x) for n, x in enumerate(lines, 1) if x.strip()]
        if not filled:
            raise ConfigError(
                f"--prompts-file {prompts_file} holds no prompt (it is empty or blank). Write "
                'one prompt per line, or one JSON object with a "prompt" field per line.'
            )
        if filled[0][1].lstrip().startswith("{"):
            for n, line in filled:
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as e:
                    raise ConfigError(
                        f"--prompts-file {prompts_file} line {n} is not valid JSON ({e.msg}); "
                        "its first line is a JSON object, so every line must be one with a "
                        '"prompt" field (or write plain text, one prompt per line).'
                    ) from None
                if not isinstance(row, dict) or not isinstance(row.get("prompt"), str):
                    raise ConfigError(
                        f'--prompts-file {prompts_file} line {n} has no "prompt" text field; '
                        'write each line as {"prompt": "..."}.'
                    )
                out.append(row["prompt"])
        else:
            out.extend(x for _, x in filled)
    if not out:
        raise ConfigError(
            "No prompt given. Pass --prompt TEXT (repeat for several) or --prompts-file FILE, "
            'e.g. smollab sample --model smollm2-135m --prompt "Q: What is 7 * 8? A:".'
        )
    return out


def parse_questions(prompts: list[str], fmt_name: str) -> list[Any]:
    """Each prompt as the arithmetic question (``23*47``, ``7 + 8``) a prompt format wraps; a
    ConfigError naming the first prompt that is not one (checked before a model loads)."""
    from smollab.tasks import PROMPT_FORMATS
    from smollab.tasks.base import Example

    fmt = PROMPT_FORMATS.get(fmt_name, where="--format")
    if fmt.family != "arith":
        from smollab.tasks import formats_of

        raise ConfigError(
            f"--format {fmt_name} writes a text task's prompt, which smollab sample does not "
            "build; a prompt given with --prompt is sent as it is when --format is left out. "
            f"--format takes the arithmetic formats: {', '.join(formats_of('arith'))}."
        )
    out = []
    for p in prompts:
        m = _QUESTION.match(p)
        if not m:
            raise ConfigError(
                f"--format {fmt_name}: prompt {p!r} is not an arithmetic question. Prompt "
                "formats wrap questions such as '23*47' or '7 + 8' (what a study asks); give "
                "prompts of that form, or leave --format out to send the text as it is."
            )
        a, sym, b = m.groups()
        op = "add" if sym == "+" else "mul"
        out.append(Example("sample", "", {"a": int(a), "b": int(b), "op": op}, ""))
    return out


def format_prompts(questions: list[Any], fmt_name: str, tokenizer: Any) -> list[str]:
    """The questions of :func:`parse_questions` as prompt format ``fmt_name`` writes them
    (few-shot formats get the study's fixed solved examples, from the task's training pool)."""
    from smollab.eval.evaluator import fewshot_examples
    from smollab.tasks import PROMPT_FORMATS, build_task

    fmt = PROMPT_FORMATS.get(fmt_name, where="--format")
    shots: dict[str, Any] = {}  # by operation: one task and one draw of examples each
    out = []
    for ex in questions:
        op = ex.question["op"]
        if op not in shots:
            shots[op] = fewshot_examples(build_task({"id": op, "task": f"arith.{op}"}), fmt)
        out.append(fmt.prompt(ex, tokenizer, shots[op]))
    return out


def load_run(run_dir: Path, *, device: str, dtype: str) -> tuple[Any, str, str | None]:
    """The model of a finished study run (:func:`smollab.models.loader.load_run`: its trained
    model, as the study's worker built it; a baseline's base model), or an API run's source
    text; a line saying which, and an API run's server (``base_url``)."""
    from smollab.models.loader import load_run as load_run_model
    from smollab.models.loader import run_spec_of

    if not run_dir.is_dir() or not (run_dir / "spec.json").is_file():
        what = "does not exist" if not run_dir.exists() else "has no spec.json"
        raise ConfigError(
            f"--run {run_dir} {what}: it is not a study run folder. Pass a run folder of a "
            "session, outputs/SESSION/runs/HASH (smollab sessions lists the sessions)."
        )
    spec = run_spec_of(run_dir, where=f"--run {run_dir}")
    if spec.model.is_api:
        said = f"run {spec.label}: the API model {spec.model.source} (a baseline, nothing trained)"
        return spec.model.source, said, spec.model.base_url
    lm = load_run_model(run_dir, device=device, dtype=dtype)
    if spec.train is None:
        said = (
            f"run {spec.label} is a baseline (no trained checkpoint): sampling its base model "
            f"{spec.model.source}"
        )
    else:
        # a pretraining study's run trained on raw text (the causal LM objective), not on
        # a task's answers
        what = "pretraining" if spec.kind == "pretrain" else "fine-tune"
        said = (
            f"run {spec.label}: the {spec.train.method} {what} of {spec.model.source} "
            f"({spec.train.steps} steps) from {run_dir / 'ckpt' / 'final'}"
        )
    return lm, said, None


def _run_format(run_dir: Path, texts: list[str]) -> tuple[str | None, str] | None:
    """The prompt format ``--run`` samples in when --format is left out: the run's own (its
    condition's format), for prompts that are all arithmetic questions it can wrap; else None
    (the text sent as it is). With a line saying which; None for a folder that is no loadable
    run (said when it is loaded)."""
    from smollab.errors import SmollabError
    from smollab.models.loader import run_spec_of
    from smollab.tasks import PROMPT_FORMATS

    if not (run_dir / "spec.json").is_file():
        return None
    try:
        spec = run_spec_of(run_dir, where=f"--run {run_dir}")
    except SmollabError:
        return None
    if spec.kind == "pretrain":
        # trained on raw text: its spec's format is the default it never used, and wrapping
        # '23*47' in an arithmetic prompt would show what it was not trained on
        return None, "prompts sent as they are (a pretraining run continues raw text)"
    fmt = PROMPT_FORMATS.get(spec.format) if spec.format in PROMPT_FORMATS else None
    if fmt is None or fmt.family != "arith":
        return None, (
            f"prompts sent as they are (the run's format {spec.format} is not one smollab "
            "sample writes)"
        )
    if not all(_QUESTION.match(t) for t in texts):
        return None, (
            f"prompts sent as they are: not all are arithmetic questions ('23*47') for the "
            f"run's format {spec.format} to wrap (--format {spec.format} asks for it)"
        )
    return spec.format, f"format {spec.format}, the run's (--format sets another)"


@handle_errors(interrupted="nothing was written; run the command again.")
def sample_cmd(
    model: Annotated[
        str | None,
        typer.Option("--model", help="model source, as for smollab eval (or use --run)"),
    ] = None,
    prompt: Annotated[
        list[str] | None,
        typer.Option("--prompt", help="a prompt; repeat for several"),
    ] = None,
    prompts_file: Annotated[
        Path | None,
        typer.Option(
            "--prompts-file",
            help='one prompt per line, or JSONL with a "prompt" field per line',
        ),
    ] = None,
    run: Annotated[
        Path | None,
        typer.Option(
            "--run",
            help="a finished study run folder (outputs/SESSION/runs/HASH): sample its trained "
            "model (a baseline run: its base model)",
        ),
    ] = None,
    max_tokens: Annotated[
        int, typer.Option("--max-tokens", min=1, help="tokens to generate at most")
    ] = 64,
    temperature: Annotated[
        float,
        typer.Option("--temperature", help="0 (the default) is greedy; above 0 samples"),
    ] = 0.0,
    top_p: Annotated[float, typer.Option("--top-p", help="nucleus sampling mass, in (0, 1]")] = 1.0,
    n: Annotated[
        int, typer.Option("--n", help="samples per prompt (with --temperature above 0)")
    ] = 1,
    seed: Annotated[
        int, typer.Option("--seed", help="seed of sample 1; sample k uses seed + k - 1")
    ] = 0,
    stop: Annotated[
        list[str] | None,
        typer.Option(
            "--stop",
            help="cut each completion before this text; repeat for several (default: none, "
            "end of text only; with --format a newline, as a study evaluates)",
        ),
    ] = None,
    prompt_format: Annotated[
        str | None,
        typer.Option(
            "--format",
            help="wrap arithmetic prompts ('23*47', '7 + 8') in a study prompt format: plain, "
            "fewshot, compact, compact_rev, compact_pp, chat, chat_answer (default with --run: "
            "the run's format, for arithmetic prompts; else none, the text as it is)",
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="also write every completion to this JSONL file"),
    ] = None,
    tokenizer: Annotated[
        str | None, typer.Option("--tokenizer", help="tokenizer dir for scratch: models")
    ] = None,
    batch_size: Annotated[
        int, typer.Option("--batch-size", min=1, help="prompts per batch (API: calls in flight)")
    ] = 16,
    device: Annotated[str, typer.Option("--device", help="cpu, cuda, cuda:N, mps or auto")] = "cpu",
    dtype: Annotated[str, typer.Option("--dtype", help="float32 or bfloat16")] = "float32",
    base_url: Annotated[
        str | None,
        typer.Option(
            "--base-url", help="openai:MODEL on an OpenAI-compatible server (vLLM, Ollama)"
        ),
    ] = None,
) -> None:
    """Print a model's completions of prompts, to look at what it generates.

    The model is any source smollab eval and studies take (an embedded name such as
    smollm2-135m, scratch:ARCH with --tokenizer, a local folder, a finished study run folder,
    a hub id, anthropic:MODEL or openai:MODEL), or --run RUN_DIR: a finished study run, whose
    trained model (full fine-tune or LoRA adapter on the base model of its spec.json) is
    sampled, as --model RUN_DIR does, and which also samples an API model's run; a baseline
    run has no trained checkpoint, and its base model is sampled (the command says which).
    Greedy by default; --temperature T (above 0) samples, nucleus --top-p P, --n N samples
    per prompt with seeds --seed, --seed + 1, ...: the same command gives the same samples.
    --format NAME wraps arithmetic questions ('23*47') in a study's prompt format; with --run
    the run's own format is the default for prompts that are all such questions (the command
    says which format it used, or that the text is sent as it is). Each
    prompt's completions are printed; --out FILE.jsonl also writes one line per completion
    (prompt, the text sent, sample index, completion, settings).

    Example: smollab sample --model smollm2-135m --prompt "Q: What is 23 * 47? A:" --max-tokens 8
    """
    from rich.markup import escape
    from rich.table import Table

    # every option check before a model is loaded
    if (model is None) == (run is None):
        raise ConfigError(
            "Name the model to sample: --model SOURCE (e.g. smollm2-135m) or --run RUN_DIR (a "
            "finished study run), one of the two" + (", not both." if model is not None else ".")
        )
    if temperature < 0:
        raise ConfigError(
            f"--temperature {temperature} is negative; use 0 (greedy, the default) or more "
            "(e.g. --temperature 0.8 to sample)."
        )
    if not 0 < top_p <= 1:
        raise ConfigError(
            f"--top-p {top_p} is outside (0, 1]; it keeps the smallest set of tokens whose "
            "probability reaches it (1, the default, keeps all), e.g. --top-p 0.9."
        )
    if n < 1:
        raise ConfigError(f"--n {n}: ask for 1 sample per prompt or more (e.g. --n 4).")
    texts = read_prompts(prompt or [], prompts_file)
    if out is not None and out.is_dir():
        raise ConfigError(f"--out {out} is a folder; pass a file name, e.g. --out samples.jsonl.")
    run_format = _run_format(run, texts) if run is not None and prompt_format is None else None
    if run_format is not None:
        fmt_name, said = run_format
        prompt_format = fmt_name
        console.print(escape(said))
    questions = parse_questions(texts, prompt_format) if prompt_format else None
    stops = tuple(stop) if stop else (("\n",) if prompt_format else ())

    from smollab.eval.provider_lm import is_api_source, make_provider_lm
    from smollab.models.loader import check_dtype

    check_dtype(dtype, where="--dtype")
    source: Any
    if run is not None:
        if tokenizer or base_url:
            raise ConfigError(
                "--tokenizer and --base-url are for --model; a --run's spec.json names its "
                "model. Leave them out."
            )
        source, said, base_url = load_run(run, device=device, dtype=dtype)
        console.print(escape(said))
        name = f"run {run}"
    else:
        assert model is not None
        source, name = model, model
    api_source = source if isinstance(source, str) else None
    lm: Any
    tok: Any
    if api_source is not None and is_api_source(api_source):
        from smollab.eval.evaluator import _ApiChat

        lm = make_provider_lm(api_source, base_url=base_url, concurrency=batch_size)
        tok = _ApiChat()
    else:
        if base_url:
            raise local_base_url_error(model)
        from smollab.eval.lm import HFLM
        from smollab.models import load_model

        loaded = (  # in eval mode, as load_model and load_run give it
            source
            if not isinstance(source, str)
            else load_model(source, tokenizer=tokenizer, device=device, dtype=dtype)
        )
        lm = HFLM(loaded.model, loaded.tokenizer, batch_size=batch_size, model_key="sample")
        tok = loaded.tokenizer
        if max_tokens >= lm.max_length:
            raise ConfigError(
                f"--max-tokens {max_tokens} leaves no room for the prompt in the model's context "
                f"window of {lm.max_length} tokens; pass --max-tokens below {lm.max_length} "
                f"(e.g. --max-tokens {max(1, lm.max_length // 4)})."
            )
    sent = format_prompts(questions, prompt_format, tok) if prompt_format and questions else texts

    from smollab.tasks.requests import GenerateRequest

    greedy = temperature == 0
    if greedy and n > 1:
        console.print(
            f"[yellow]greedy decoding (--temperature 0) gives one completion per prompt; its "
            f"{n} samples are the same text (use --temperature above 0 to draw different "
            "ones)[/]"
        )
    draws = 1 if greedy else n
    requests = [
        GenerateRequest(
            p,
            stop=stops,
            max_tokens=max_tokens,
            temperature=temperature,
            top_p=top_p,
            seed=seed + k,
        )
        for p in sent
        for k in range(draws)
    ]
    for i in range(len(sent)):
        if lm.truncated(requests[i * draws]):
            console.print(
                f"[yellow]prompt {i + 1} is longer than the model's context window leaves room "
                f"for beside --max-tokens {max_tokens}: the model sees only its end[/]"
            )
    got = lm.generate(requests)
    rows: list[dict[str, Any]] = []
    for i, (text, p) in enumerate(zip(texts, sent, strict=True)):
        for k in range(n):
            j = i * draws + (0 if greedy else k)
            rows.append(
                {
                    "prompt": text,
                    "prompt_sent": p,
                    "sample": k,
                    "completion": got[j],
                    "model": name,
                    "settings": {
                        "max_tokens": max_tokens,
                        "temperature": temperature,
                        "top_p": top_p,
                        "seed": requests[j].seed,
                        "stop": list(stops),
                        "format": prompt_format,
                    },
                }
            )
    for i, text in enumerate(texts):
        shown = text if len(text) <= 500 else text[:500] + "..."
        console.print(f"[bold]prompt {i + 1}:[/] {escape(repr(shown))}", highlight=False)
        table = Table(show_lines=True)
        table.add_column("#", justify="right")
        table.add_column("completion")
        for r in rows[i * n : (i + 1) * n]:
            c = r["completion"]  # blank text shown as its repr: '' or '\n\n', not nothing
            table.add_row(str(r["sample"] + 1), escape(c) if c.strip() else escape(repr(c)))
        console.print(table)
    if out is not None:
        from smollab.io import write_jsonl

        try:
            write_jsonl(out, rows)
        except OSError as e:
            raise ConfigError(
                f"--out {out} could not be written ({e.strerror}); pass a writable file path."
            ) from None
        print_paths([out])
