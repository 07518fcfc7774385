"""The PyTorch side of TransformerForge's side-by-side benchmark: the same workloads as `tforge bench train` and
`tforge bench generate`, printing the same RESULT line.

Stacks:
  gpt     the hand-written GPT of gpt.py (q, k, v fused unless --qkv separate)
  xt020   x-transformers 0.20 (its source folder in --xt-src or XT_SRC; needs einops and entmax importable)
  xt140   x-transformers 1.40 (likewise; needs einops >= 0.8 and packaging)

Training: next-token cross-entropy on random tokens, backward, clip_grad_norm_(1.0), AdamW (lr 1e-4, betas 0.9/0.99,
weight decay 0.01 on matrices), zero_grad; forward / backward / optimizer timed apart, median of the timed steps.
Generation: greedy, batch 1, random prompt; the hand-written GPT and x-transformers 1.40 with their key/value
caches, x-transformers 0.20 recomputing the window (it has no cache); median of the repeats.

Runs on a CPU with Debian's python3-torch (1.13; install libopenblas0-openmp too, or matmuls fall back to the
reference BLAS and run 20x slower) and on a GPU machine's PyTorch 2.x (--device cuda, --precision bf16/fp16 use
autocast, fp16 with a GradScaler).
"""
import argparse
import os
import resource
import statistics
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gpt import GPT  # noqa: E402


def parse():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("workload", choices=["train", "generate"])
    p.add_argument("--stack", default="gpt", choices=["gpt", "xt020", "xt140"])
    p.add_argument("--xt-src", default=os.environ.get("XT_SRC"), help="folder holding x_transformers/ (and its dependencies)")
    p.add_argument("--vocab", type=int, default=256)
    p.add_argument("--dim", type=int, default=256)
    p.add_argument("--depth", type=int, default=4)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--dim-head", type=int, default=None, help="default dim / heads (TransformerForge's presets)")
    p.add_argument("--rotary", action="store_true")
    p.add_argument("--glu", action="store_true")
    p.add_argument("--qkv", default="fused", choices=["fused", "separate"], help="hand-written GPT only")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--seq", type=int, default=256)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--tokens", type=int, default=512)
    p.add_argument("--prompt", type=int, default=16)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--device", default="cpu")
    p.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "fp16"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet", action="store_true")
    return p.parse_args()


def build(a, max_seq_len):
    dim_head = a.dim_head or a.dim // a.heads
    if a.stack == "gpt":
        return GPT(a.vocab, max_seq_len, a.dim, a.depth, a.heads, dim_head, rotary=a.rotary, glu=a.glu, fused_qkv=a.qkv == "fused")
    if not a.xt_src:
        sys.exit(f"--stack {a.stack} needs --xt-src (or XT_SRC): a folder with x_transformers/ of that version")
    sys.path.insert(0, a.xt_src)
    from x_transformers import Decoder, TransformerWrapper
    layers = dict(dim=a.dim, depth=a.depth, heads=a.heads, attn_dim_head=dim_head, rotary_pos_emb=a.rotary, ff_glu=a.glu)
    return TransformerWrapper(num_tokens=a.vocab, max_seq_len=max_seq_len, attn_layers=Decoder(**layers))


def param_groups(model, weight_decay=0.01):
    if hasattr(model, "param_groups"):
        return model.param_groups(weight_decay)
    decay, no_decay = [], []
    for module in model.modules():
        for name, p in module.named_parameters(recurse=False):
            (decay if isinstance(module, torch.nn.Linear) and name == "weight" else no_decay).append(p)
    return [dict(params=decay, weight_decay=weight_decay), dict(params=no_decay, weight_decay=0.0)]


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def autocast(a, device):
    if a.precision == "fp32":
        return torch.autocast(device.type, enabled=False)
    return torch.autocast(device.type, dtype=torch.bfloat16 if a.precision == "bf16" else torch.float16)


def peak(device):
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    extra = f" peak_device_mib={torch.cuda.max_memory_allocated() / 2**20:.1f}" if device.type == "cuda" else ""
    return rss, extra


def train(a, device):
    model = build(a, a.seq).to(device)
    model.train()
    opt = torch.optim.AdamW(param_groups(model), lr=1e-4, betas=(0.9, 0.99), eps=1e-8)
    scaler = torch.cuda.amp.GradScaler() if a.precision == "fp16" else None
    params = [p for p in model.parameters() if p.requires_grad]
    gen = torch.Generator().manual_seed(a.seed)
    times = []
    for i in range(a.warmup + a.steps):
        sync(device)
        t0, c0 = time.perf_counter(), time.process_time()
        tokens = torch.randint(0, a.vocab, (a.batch, a.seq + 1), generator=gen).to(device)
        with autocast(a, device):
            logits = model(tokens[:, :-1])
        loss = F.cross_entropy(logits.float().reshape(-1, a.vocab), tokens[:, 1:].reshape(-1))
        sync(device)
        t1, c1 = time.perf_counter(), time.process_time()
        (scaler.scale(loss) if scaler else loss).backward()
        sync(device)
        t2, c2 = time.perf_counter(), time.process_time()
        if scaler:
            scaler.unscale_(opt)
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        if scaler:
            scaler.step(opt)
            scaler.update()
        else:
            opt.step()
        opt.zero_grad(set_to_none=True)
        sync(device)
        t3, c3 = time.perf_counter(), time.process_time()
        if not a.quiet:
            print(f"{'warm-up' if i < a.warmup else 'step'} {i + 1}: {(t3 - t0) * 1e3:.1f} ms "
                  f"({(t1 - t0) * 1e3:.1f} / {(t2 - t1) * 1e3:.1f} / {(t3 - t2) * 1e3:.1f}), loss {loss.item():.4f}")
        if i >= a.warmup:
            times.append((t3 - t0, t1 - t0, t2 - t1, t3 - t2, c3 - c0, c1 - c0, c2 - c1, c3 - c2))
    step, fwd, bwd, optim, step_cpu, fwd_cpu, bwd_cpu, opt_cpu = (statistics.median(t[k] for t in times) for k in range(8))
    rss, extra = peak(device)
    n = sum(p.numel() for p in params)
    print(f"{label(a)}: {n / 1e6:.2f}M parameters, batch {a.batch} x {a.seq}, {device}, {a.precision}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads\nstep {step * 1e3:.1f} ms (forward {fwd * 1e3:.1f} / backward {bwd * 1e3:.1f} / "
          f"optimizer {optim * 1e3:.1f}), {a.batch * a.seq / step:.0f} tokens/s, peak RSS {rss:.0f} MiB\nCPU time per step "
          f"{step_cpu * 1e3:.1f} ms (forward {fwd_cpu * 1e3:.1f} / backward {bwd_cpu * 1e3:.1f} / optimizer {opt_cpu * 1e3:.1f})")
    print(f"RESULT stack={a.stack} workload=train model={label(a)} device={device} precision={a.precision} batch={a.batch} "
          f"seq={a.seq} threads={torch.get_num_threads()} step_ms={step * 1e3:.2f} fwd_ms={fwd * 1e3:.2f} bwd_ms={bwd * 1e3:.2f} "
          f"opt_ms={optim * 1e3:.2f} tokens_per_s={a.batch * a.seq / step:.1f} peak_rss_mib={rss:.1f} step_cpu_ms={step_cpu * 1e3:.2f} "
          f"fwd_cpu_ms={fwd_cpu * 1e3:.2f} bwd_cpu_ms={bwd_cpu * 1e3:.2f} opt_cpu_ms={opt_cpu * 1e3:.2f}{extra}")


@torch.no_grad()
def generate_once(a, model, prompt):
    if a.stack == "gpt":
        return model.generate(prompt, a.tokens)
    if a.stack == "xt140":
        from x_transformers import AutoregressiveWrapper
        return AutoregressiveWrapper(model).generate(prompt, a.tokens, temperature=0.0, cache_kv=True)
    # x-transformers 0.20 has no cache: every token is a forward over the window, as its generate() does.
    tokens = prompt
    for _ in range(a.tokens):
        window = tokens[:, -model.max_seq_len:]
        nxt = model(window)[:, -1].argmax(dim=-1, keepdim=True)
        tokens = torch.cat((tokens, nxt), dim=1)
    return tokens[:, prompt.shape[1]:]


def generate(a, device):
    model = build(a, a.prompt + a.tokens).to(device).eval()
    gen = torch.Generator().manual_seed(a.seed)
    prompt = torch.randint(0, a.vocab, (1, a.prompt), generator=gen).to(device)
    warm = a.tokens
    a.tokens = min(8, warm)
    generate_once(a, model, prompt)
    a.tokens = warm
    times, cpu_times = [], []
    for _ in range(a.repeats):
        sync(device)
        t0, c0 = time.perf_counter(), time.process_time()
        out = generate_once(a, model, prompt)
        sync(device)
        times.append(time.perf_counter() - t0)
        cpu_times.append(time.process_time() - c0)
        assert out.shape[-1] == a.tokens, out.shape
    s = statistics.median(times)
    name = "recompute" if a.stack == "xt020" else "kv-cache"
    print(f"{label(a)}: {name} {a.tokens / s:.1f} tokens/s (median of {a.repeats}: {', '.join(f'{t:.2f}' for t in times)} s), "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"RESULT stack={a.stack} workload=generate-{name} model={label(a)} device={device} batch=1 tokens={a.tokens} "
          f"threads={torch.get_num_threads()} repeats={a.repeats} tokens_per_s={a.tokens / s:.1f} ms_per_token={s * 1e3 / a.tokens:.3f} "
          f"cpu_ms_per_token={statistics.median(cpu_times) * 1e3 / a.tokens:.3f}")


def label(a):
    return f"d{a.dim}-l{a.depth}-h{a.heads}" + ("-rotary" if a.rotary else "") + ("-glu" if a.glu else "")


def main():
    a = parse()
    if a.threads:
        torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    device = torch.device(a.device)
    (train if a.workload == "train" else generate)(a, device)


if __name__ == "__main__":
    main()
