"""The grokking trainer's whole-validation evaluation with and without oneDNN packed linears.

    PYTHONPATH=src python benchmarks/bench_grokking_eval_onednn.py 2

Builds the reference model and trainer on x + y (mod 97), then times ``GrokTrainer.evaluate``
(4,705 validation pairs, shared-prefix forward) plain and inside
``smollab.models.cpu_kernels.packed_linears``: 5 alternating rounds of 20 calls each, printing
the milliseconds per call of each round and the two results (identical here). The argument is
the number of threads. Then prints a profile of 10 plain evaluations by operator and shape.
"""

import sys
import tempfile
import time
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from smollab.models.cpu_kernels import packed_linears
from smollab.models.small import build_small_model
from smollab.tasks import build_task, validate_task_config
from smollab.train.grokking import GrokTrainer, GrokTrainSpec

torch.set_num_threads(int(sys.argv[1]))
task = build_task(validate_task_config({"id": "add", "task": "grok.x_plus_y"}))
torch.manual_seed(0)
model = build_small_model(
    "decoder", {}, vocab_size=task.vocab_size, n_out=task.n_classes, seq_len=4
)
spec = GrokTrainSpec(steps=400, checkpoint_every=400, snapshot_steps="none")
tr = GrokTrainer(task, model, spec, Path(tempfile.mkdtemp()), seed=0)


def plain():
    return tr.evaluate()


def packed():
    with packed_linears(model):
        return tr.evaluate()


for f in (plain, packed):
    f()
    f()
res = {"plain": [], "packed": []}
for _r in range(5):
    for name, f in (("plain", plain), ("packed", packed)):
        t0 = time.perf_counter()
        for _ in range(20):
            out = f()
        res[name].append((time.perf_counter() - t0) / 20 * 1000)
for k, v in res.items():
    print(k, " ".join(f"{x:.1f}" for x in v), "min", f"{min(v):.1f}")
print(plain(), packed())
with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
    for _ in range(10):
        plain()
print(
    prof.key_averages(group_by_input_shape=True).table(sort_by="self_cpu_time_total", row_limit=25)
)
