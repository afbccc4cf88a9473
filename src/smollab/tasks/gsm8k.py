"""GSM8K (test split, 1,319 problems): grade-school maths, answered by generation.

``gsm8k``: lm-evaluation-harness's ``gsm8k`` task, item for item. Each test question gets
``num_fewshot`` (default 5) solved training examples, drawn with ``random.Random(1234).sample``
from the train split, one draw per test item in dataset order (so the first N items of a
``--limit N`` run get the same shots as in a full run)::

    Question: {shot question}\\nAnswer: {shot answer}\\n\\n ... Question: {question}\\nAnswer:

Greedy, up to 256 new tokens, stopping at ``Question:``, ``</s>`` or ``<|im_end|>``; a prompt
that does not fit the window is cut from the left. Two scores, as lm-eval:

``strict_match``      the number after ``#### `` (regex ``#### (\\-?[0-9\\.\\,]+)``)
``flexible_extract``  the last number in the completion (``(-?[$0-9.,]{2,})|(-?[0-9]+)``)

each compared with the reference answer after removing ``,``, ``$``, a trailing ``.``, the
reasoning up to ``#### `` and case.

``gsm8k_chat``: zero-shot for instruct models: the question in the model's chat template with
an instruction to end with ``#### <number>``; scored the same way.

Data: ``gsm8k/test.jsonl`` and ``gsm8k/train.jsonl`` (fields ``question``, ``answer``).
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from typing import Any

from pydantic import Field

from smollab.errors import ConfigError
from smollab.tasks.base import TASKS
from smollab.tasks.bench import BenchConfig, BenchTask
from smollab.tasks.data import HubSource, load_records
from smollab.tasks.requests import GenerateRequest

FIELDS = {"question": str, "answer": str}
STOP = ("Question:", "</s>", "<|im_end|>")
FEWSHOT_SEED = 1234
INVALID = "[invalid]"
STRICT = re.compile(r"#### (\-?[0-9\.\,]+)")
FLEXIBLE = re.compile(r"(-?[$0-9.,]{2,})|(-?[0-9]+)")
_IGNORE = [re.compile(p) for p in (",", r"\$", r"(?s).*#### ", r"\.$")]
CHAT_INSTRUCTION = (
    "Solve this math problem step by step. End your answer with a final line of the form "
    "'#### <number>'."
)


class GSM8KChatConfig(BenchConfig):
    """``[[tasks]]`` entry for ``gsm8k_chat`` (zero-shot: no solved examples to set)."""

    max_tokens: int = Field(256, ge=1, description="generation budget (lm-eval: 256)")


class GSM8KConfig(GSM8KChatConfig):
    """``[[tasks]]`` entry for ``gsm8k``."""

    num_fewshot: int | None = Field(None, ge=0, description="solved examples (default 5)")


def _split(config: GSM8KChatConfig, split: str) -> tuple[list[dict[str, Any]], str]:
    return load_records(
        "gsm8k",
        (f"{split}.jsonl", f"{split}.jsonl.gz"),
        FIELDS,
        data_dir=config.data_dir,
        hub=HubSource("openai/gsm8k", "main", split),
    )


def extract(text: str, pattern: re.Pattern[str], group_select: int = 0) -> str:
    """lm-eval's ``regex`` filter + ``take_first``: the ``group_select``-th match (of a
    multi-group pattern, its first non-empty group), stripped; ``[invalid]`` when none."""
    found = pattern.findall(text)
    if not found:
        return INVALID
    m = found[group_select]
    if isinstance(m, tuple):
        m = next((g for g in m if g), INVALID)
    return m.strip()


def normalise(s: str) -> str:
    """lm-eval's exact_match preprocessing for GSM8K (regexes_to_ignore, ignore_case)."""
    for pat in _IGNORE:
        s = pat.sub("", s)
    return s.lower()


class GSM8KTask(BenchTask):
    """lm-eval's 5-shot GSM8K (see module docstring)."""

    request_type = "generate"
    metrics = ("strict_match", "flexible_extract")
    item_metrics = ("flexible_extract",)
    config: GSM8KChatConfig

    def load_docs(self) -> list[dict[str, Any]]:
        test, test_source = _split(self.config, "test")
        k = self.num_fewshot
        train, source = _split(self.config, "train") if k else ([], "")
        self.data_files = (test_source, source) if k else (test_source,)
        if k > len(train):
            raise ConfigError(
                f"gsm8k: num_fewshot (--num-fewshot) is {k}, but the few-shot pool {source} "
                f"holds {len(train)} solved examples; ask for at most {len(train)} (lm-eval's "
                "default is 5), or point the data dir at the full GSM8K train split."
            )
        rnd = random.Random(FEWSHOT_SEED)
        docs = []
        for i, r in enumerate(test):
            shots = rnd.sample(train, k) if k else []
            docs.append(
                {
                    "id": str(i),
                    "question": r["question"],
                    "answer": r["answer"],
                    "prompt": self.prompt(r, shots),
                }
            )
        return docs

    @property
    def num_fewshot(self) -> int:
        k = getattr(self.config, "num_fewshot", None)
        return 5 if k is None else k

    def prompt(self, doc: dict[str, Any], shots: Sequence[dict[str, Any]]) -> str:
        parts = [f"Question: {s['question']}\nAnswer: {s['answer']}" for s in shots]
        return "".join(p + "\n\n" for p in parts) + f"Question: {doc['question']}\nAnswer:"

    def requests(self, doc: dict[str, Any]) -> list[GenerateRequest]:
        return [GenerateRequest(doc["prompt"], STOP, self.config.max_tokens)]

    def score(self, doc: dict[str, Any], responses: Sequence[str]) -> dict[str, Any]:
        completion = responses[0]
        target = normalise(doc["answer"])
        strict = extract(completion, STRICT)
        flexible = extract(completion, FLEXIBLE, group_select=-1)
        return {
            "id": doc["id"],
            "target": target,
            "completion": completion,
            "strict_pred": strict,
            "flexible_pred": flexible,
            "strict_match": float(normalise(strict) == target),
            "flexible_extract": float(normalise(flexible) == target),
        }


class GSM8KChatTask(GSM8KTask):
    """Zero-shot GSM8K in the model's chat template (for instruct models)."""

    @property
    def num_fewshot(self) -> int:
        return 0

    def prompt(self, doc: dict[str, Any], shots: Sequence[dict[str, Any]]) -> str:
        return f"{CHAT_INSTRUCTION}\n\nQuestion: {doc['question']}"

    def requests(self, doc: dict[str, Any]) -> list[GenerateRequest]:
        # the LM wraps the message in its own chat template
        return [GenerateRequest(doc["prompt"], STOP, self.config.max_tokens, chat=True)]


TASKS.register("gsm8k")((GSM8KConfig, GSM8KTask))
TASKS.register("gsm8k_chat")((GSM8KChatConfig, GSM8KChatTask))
