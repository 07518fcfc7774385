"""What one training forward / backward and one decoding token cost the hand-written GPT (benchmarks/pytorch/gpt.py):
top-level aten operations (autograd profiler), OpenMP parallel regions (with gompcount.c preloaded) and CPU time.
The same as TforgeCounts prints for TransformerForge.

  LD_PRELOAD=/tmp/libgompcount.so OMP_WAIT_POLICY=PASSIVE python3 benchmarks/diagnostics/gpt_counts.py [threads] [dim depth heads seq batch]
"""
import ctypes
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "pytorch"))
from gpt import GPT  # noqa: E402

try:
    _lib = ctypes.CDLL("libgompcount.so")
    _lib.gomp_count.restype = ctypes.c_long
    regions = _lib.gomp_count
except OSError:
    regions = lambda: -1  # noqa: E731

threads = int(sys.argv[1]) if len(sys.argv) > 1 else 2
dim, depth, heads, seq, batch = (int(x) for x in sys.argv[2:7]) if len(sys.argv) > 6 else (256, 4, 4, 256, 8)
torch.set_num_threads(threads)
torch.manual_seed(0)
model = GPT(256, seq, dim, depth, heads, dim // heads)
tokens = torch.randint(0, 256, (batch, seq + 1))
print(f"GPT d{dim}-l{depth}-h{heads}, batch {batch} x {seq}, {threads} threads, torch {torch.__version__}, regions counted: {regions() >= 0}")


def loss():
    return F.cross_entropy(model(tokens[:, :-1]).reshape(-1, 256), tokens[:, 1:].reshape(-1))


def top_level_ops(fn):
    with torch.autograd.profiler.profile() as prof:
        fn()
    return sum(1 for e in prof.function_events if e.cpu_parent is None)


model.train()
for _ in range(3):
    loss().backward()
ops = top_level_ops(loss)
for _ in range(3):
    r0, c0 = regions(), time.process_time()
    out = loss()
    r1, c1 = regions(), time.process_time()
    out.backward()
    print(f"training: forward + loss {ops} top-level ops, {r1 - r0} regions, {(c1 - c0) * 1e3:.1f} ms CPU; "
          f"backward {regions() - r1} regions, {(time.process_time() - c1) * 1e3:.1f} ms CPU")

model.eval()
prompt = torch.randint(0, 256, (1, 16))
new_tokens = seq - 16
model.generate(prompt, 8)
ops = top_level_ops(lambda: model.generate(prompt, 8)) / 8
for _ in range(3):
    r0, c0 = regions(), time.process_time()
    model.generate(prompt, new_tokens)
    print(f"decoding: per token {ops:.1f} top-level ops, {(regions() - r0) / new_tokens:.1f} regions, "
          f"{(time.process_time() - c0) * 1e3 / new_tokens:.3f} ms CPU")
