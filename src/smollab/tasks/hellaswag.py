"""HellaSwag (validation split, 10,042 items): pick the ending the model finds most likely.

``hellaswag``: lm-evaluation-harness's task. Context ``"{activity_label}: {ctx}"``, each ending
scored as the continuation ``" " + ending``; ``acc`` takes the highest summed log-probability,
``acc_norm`` the highest log-probability divided by the ending's length in characters.

``hellaswag_nanogpt``: the variant of karpathy's build-nanogpt ``hellaswag.py``: the mean
per-token cross-entropy of each ending; ``acc`` (reported there as ``acc``, the sum of the losses)
and ``acc_norm`` (the mean loss, the number that script prints). The same endings and contexts.

Data: ``hellaswag/hellaswag_val.jsonl.gz`` (fields ``activity_label``, ``ctx``, ``endings``,
``label``). That file's text is already preprocessed the lm-eval way (``[title]`` markup
removed); see its PROVENANCE.md. It has no ``ctx_a`` / ``ctx_b`` split, so lm-eval's
capitalisation of ``ctx_b`` cannot be applied and the raw WikiHow contexts are not available.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from smollab.tasks.base import TASKS
from smollab.tasks.bench import BenchConfig, BenchTask
from smollab.tasks.data import HubSource, load_records
from smollab.tasks.requests import Loglikelihood, LoglikelihoodRequest

FILES = ("hellaswag_val.jsonl.gz", "hellaswag_val.jsonl")
FIELDS = {"activity_label": str, "ctx": str, "endings": list, "label": (int, str)}


def preprocess(text: str) -> str:
    """lm-eval's HellaSwag text clean-up (WikiHow markup and double spaces)."""
    text = text.strip().replace(" [title]", ". ")
    text = re.sub(r"\[.*?\]", "", text)
    return text.replace("  ", " ")


def doc_from_record(r: dict[str, Any], i: int) -> dict[str, Any]:
    """One item from either the stored preprocessed file or a raw record (the hub's
    ``Rowan/hellaswag``, with ``ctx_a``/``ctx_b``), preprocessed as lm-eval does."""
    if "ctx_a" in r:  # raw: lm-eval's process_docs
        ctx = r["ctx_a"] + " " + r["ctx_b"].capitalize()
        query = preprocess(r["activity_label"] + ": " + ctx)
        choices = [preprocess(e) for e in r["endings"]]
    else:  # already preprocessed (shared/data): used as is
        query = f"{r['activity_label']}: {r['ctx']}"
        choices = list(r["endings"])
    return {
        "id": str(r.get("idx", i)),
        "query": query,
        "choices": choices,
        "label": int(r["label"]),
    }


class HellaSwagTask(BenchTask):
    """lm-eval's HellaSwag: ``acc`` and ``acc_norm`` (see module docstring)."""

    request_type = "loglikelihood"
    metrics = ("acc", "acc_norm")
    item_metrics = ("acc_norm",)
    chance = 0.25

    def load_docs(self) -> list[dict[str, Any]]:
        rows, source = load_records(
            "hellaswag",
            FILES,
            FIELDS,
            data_dir=self.config.data_dir,
            hub=HubSource("Rowan/hellaswag", None, "validation"),
        )
        self.data_files = (source,)
        return [doc_from_record(r, i) for i, r in enumerate(rows)]

    def requests(self, doc: dict[str, Any]) -> list[LoglikelihoodRequest]:
        return [LoglikelihoodRequest(doc["query"], " " + c) for c in doc["choices"]]

    def score(self, doc: dict[str, Any], responses: Sequence[Loglikelihood]) -> dict[str, Any]:
        lls = [r.logprob for r in responses]
        norm = [ll / len(c) for ll, c in zip(lls, doc["choices"], strict=True)]
        pred, pred_norm = _argmax(lls), _argmax(norm)
        return {
            "id": doc["id"],
            "label": doc["label"],
            "pred": pred,
            "pred_norm": pred_norm,
            "acc": float(pred == doc["label"]),
            "acc_norm": float(pred_norm == doc["label"]),
            "logprobs": lls,
        }


class HellaSwagNanoGPTTask(HellaSwagTask):
    """build-nanogpt's HellaSwag: sum and mean per-token loss of each ending."""

    def score(self, doc: dict[str, Any], responses: Sequence[Loglikelihood]) -> dict[str, Any]:
        lls = [r.logprob for r in responses]
        mean = [r.logprob / r.n_tokens for r in responses]
        pred, pred_norm = _argmax(lls), _argmax(mean)
        return {
            "id": doc["id"],
            "label": doc["label"],
            "pred": pred,
            "pred_norm": pred_norm,
            "acc": float(pred == doc["label"]),
            "acc_norm": float(pred_norm == doc["label"]),
            "mean_token_loss": [-m for m in mean],
        }


def _argmax(xs: Sequence[float]) -> int:
    """Index of the largest value, the first on ties (numpy's and lm-eval's rule)."""
    return max(range(len(xs)), key=lambda i: (xs[i], -i))


TASKS.register("hellaswag")((BenchConfig, HellaSwagTask))
TASKS.register("hellaswag_nanogpt")((BenchConfig, HellaSwagNanoGPTTask))
