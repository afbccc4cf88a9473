"""Attention layouts for the grokking model's few-position attention (not used by smollab).

    PYTHONPATH=src python benchmarks/bench_grokking_attention_layout.py 2

Times forward + backward (training shapes, batch 512) and forward only (the whole validation
set, 4,705 pairs) of causal attention with 4 heads of 32, 2 or 1 queries over 4 keys, as
``smollab.models.small._small_attention`` computes it ("bcast": broadcast multiply and sum,
batch first), with ``torch.matmul``, with ``scaled_dot_product_attention`` and with the batch
as the last, contiguous dimension ("blast"). The argument is the number of threads. Prints
milliseconds per call (mean of 30 after 3 warm-up calls).
"""

import sys
import time

import torch

torch.set_num_threads(int(sys.argv[1]))


def bcast(q, k, v, q0):
    n_q, t = q.shape[2], k.shape[2]
    scores = (q.unsqueeze(3) * k.unsqueeze(2)).sum(-1) * q.shape[-1] ** -0.5
    if q0 + n_q < t or n_q > 1:
        q_pos = torch.arange(q0, q0 + n_q)
        hidden = torch.arange(t)[None, :] > q_pos[:, None]
        scores = scores.masked_fill(hidden, float("-inf"))
    return (scores.softmax(-1).unsqueeze(-1) * v.unsqueeze(2)).sum(3)


def mm(q, k, v, q0):
    n_q, t = q.shape[2], k.shape[2]
    scores = (q @ k.transpose(-1, -2)) * q.shape[-1] ** -0.5
    if q0 + n_q < t or n_q > 1:
        q_pos = torch.arange(q0, q0 + n_q)
        hidden = torch.arange(t)[None, :] > q_pos[:, None]
        scores = scores.masked_fill(hidden, float("-inf"))
    return scores.softmax(-1) @ v


def sdpa(q, k, v, q0):
    n_q, t = q.shape[2], k.shape[2]
    q_pos = torch.arange(q0, q0 + n_q)
    mask = torch.arange(t)[None, :] <= q_pos[:, None]
    return torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask)


# batch-last: q (H, Q, dh, B) k,v (H, T, dh, B)
def blast(q, k, v, q0):
    n_q, t = q.shape[1], k.shape[1]
    scores = (q.unsqueeze(2) * k.unsqueeze(1)).sum(3) * q.shape[2] ** -0.5  # H,Q,T,B
    if q0 + n_q < t or n_q > 1:
        q_pos = torch.arange(q0, q0 + n_q)
        hidden = torch.arange(t)[None, :] > q_pos[:, None]
        scores = scores.masked_fill(hidden[None, :, :, None], float("-inf"))
    p = scores.softmax(2)  # H,Q,T,B
    return (p.unsqueeze(3) * v.unsqueeze(1)).sum(2)  # H,Q,dh,B


def bench(f, B, Q, T, q0, bl=False, grad=True):
    H, dh = 4, 32
    if bl:
        q = torch.randn(H, Q, dh, B, requires_grad=grad)
        k = torch.randn(H, T, dh, B, requires_grad=grad)
        v = torch.randn(H, T, dh, B, requires_grad=grad)
    else:
        q = torch.randn(B, H, Q, dh, requires_grad=grad)
        k = torch.randn(B, H, T, dh, requires_grad=grad)
        v = torch.randn(B, H, T, dh, requires_grad=grad)
    for _ in range(3):
        o = f(q, k, v, q0)
        if grad:
            o.sum().backward()
    n = 30
    t0 = time.perf_counter()
    for _ in range(n):
        o = f(q, k, v, q0)
        if grad:
            o.sum().backward()
    return (time.perf_counter() - t0) / n * 1000


for B, Q, T, q0, grad in [
    (512, 2, 4, 2, True),
    (512, 1, 4, 3, True),
    (4705, 2, 4, 2, False),
    (4705, 1, 4, 3, False),
]:
    r = {
        n: bench(f, B, Q, T, q0, bl=(n == "blast"), grad=grad)
        for n, f in [("bcast", bcast), ("mm", mm), ("sdpa", sdpa), ("blast", blast)]
    }
    print(B, Q, T, grad, " ".join(f"{n} {x:.2f}ms" for n, x in r.items()))
