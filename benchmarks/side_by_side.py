#!/usr/bin/env python3
"""Runs TransformerForge and PyTorch stacks on the same workload interleaved, and prints per-round ratios.

Each round runs every stack once, in an order rotated by one each round (A B C, B C A, C A B, ...), so that a slow
spell of a shared machine lands on every stack alike. Every run is a fresh process with the same thread count and
the same OpenMP environment. Printed: each run's figure with the 1-minute load average before it, the ratio
ours / theirs per round, and the median of those ratios (the figure to quote), plus peak RSS.

  benchmarks/side_by_side.py train                      # dim 256, depth 4, heads 4, seq 256, batch 8, fp32
  benchmarks/side_by_side.py train --rotary --glu
  benchmarks/side_by_side.py generate --dim 512 --depth 8
  XT020=/src/xt-0.20 XT140=/src/xt-1.40 XT_DEPS=/src/deps benchmarks/side_by_side.py generate   # + x-transformers columns
  benchmarks/side_by_side.py train --variant per-tensor=--per-tensor-optimizer --stacks tforge,per-tensor   # a lever on/off
  benchmarks/side_by_side.py generate --variant "passive=OMP_WAIT_POLICY=PASSIVE TFORGE_THREADS=fixed" --stacks tforge,passive

Needs a python3 with torch (PYTHON, else the first of python3 and /usr/bin/python3 that imports it) and the
Release build of tforge (built here if missing; TFORGE=path picks another, e.g. the published one on a GPU machine).
"""
import argparse
import json
import os
import re
import shlex
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TFORGE = os.environ.get("TFORGE") or os.path.join(ROOT, "src", "TransformerForge.Cli", "bin", "Release", "net10.0", "tforge")


def find_python():
    candidates = [os.environ["PYTHON"]] if os.environ.get("PYTHON") else ["python3", "/usr/bin/python3"]
    for p in candidates:
        try:
            subprocess.run([p, "-c", "import torch"], check=True, capture_output=True)
            return p
        except (OSError, subprocess.CalledProcessError):
            continue
    sys.exit("no python3 with torch found: set PYTHON, or apt-get install python3-torch libopenblas0-openmp")


def load():
    with open("/proc/loadavg") as f:
        return f.read().split()[0]


def parse():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("workload", choices=["train", "generate"])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--vocab", type=int, default=256)
    p.add_argument("--dim", type=int, default=256)
    p.add_argument("--depth", type=int, default=4)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--rotary", action="store_true")
    p.add_argument("--glu", action="store_true")
    p.add_argument("--seq", type=int, default=256)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--tokens", type=int, default=256)
    p.add_argument("--prompt", type=int, default=16)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=os.cpu_count(),
                   help="intra-op threads for every stack (default: the cores); 0: PyTorch stacks get the cores, tforge its adaptive policy")
    p.add_argument("--device", default="cpu")
    p.add_argument("--precision", default="fp32")
    p.add_argument("--stacks", default=None, help="comma list of tforge, gpt, gpt-separate-qkv, xt020, xt140 (default: tforge, gpt and any x-transformers given)")
    p.add_argument("--tforge-args", default="", help="extra arguments for tforge bench (e.g. --per-tensor-optimizer)")
    p.add_argument("--label", default="tforge", help="name of the tforge column (when comparing a lever)")
    p.add_argument("--omp", default="spin", choices=["passive", "spin", "default"],
                   help="OpenMP waiting for every stack: spin = a bounded spin (GOMP_SPINCOUNT=10000) for all (tforge's "
                        "default); passive = OMP_WAIT_POLICY=PASSIVE for all; default = each stack's own default "
                        "(libgomp spins 300,000 rounds, ruinous beside other work)")
    p.add_argument("--variant", action="append", default=[], metavar="NAME=[VAR=VALUE ...] [ARGS]",
                   help="another tforge column: environment settings, then @/path/to/another/tforge, then bench arguments (replacing the same ones), e.g. "
                        "'per-tensor=--per-tensor-optimizer' or 'passive=OMP_WAIT_POLICY=PASSIVE TFORGE_THREADS=fixed'")
    return p.parse_args()


def model_json(a, max_seq_len):
    layers = {"type": "Decoder", "dim": a.dim, "depth": a.depth, "heads": a.heads, "attn_dim_head": a.dim // a.heads}
    if a.rotary:
        layers["rotary_pos_emb"] = True
    if a.glu:
        layers["ff_glu"] = True
    config = {"type": "TransformerWrapper", "num_tokens": a.vocab, "max_seq_len": max_seq_len, "attn_layers": layers}
    f = tempfile.NamedTemporaryFile("w", suffix=".json", prefix="side-by-side-", delete=False)
    json.dump(config, f)
    f.close()
    return f.name


def commands(a, python):
    py_threads = a.threads or os.cpu_count()
    tf_threads = ["--threads", a.threads] if a.threads else []
    common_py = ["--vocab", a.vocab, "--dim", a.dim, "--depth", a.depth, "--heads", a.heads, "--threads", py_threads,
                 "--device", a.device, "--quiet"] + (["--rotary"] if a.rotary else []) + (["--glu"] if a.glu else [])
    if a.workload == "train":
        work_py = ["train", "--seq", a.seq, "--batch", a.batch, "--warmup", a.warmup, "--steps", a.steps, "--precision", a.precision]
        config = model_json(a, a.seq)
        tforge = [TFORGE, "bench", "train", "--config", config, "--seq", a.seq, "--batch", a.batch, "--warmup", a.warmup,
                  "--steps", a.steps, "--precision", a.precision, "--device", a.device, "--quiet"] + tf_threads
    else:
        work_py = ["generate", "--tokens", a.tokens, "--prompt", a.prompt, "--repeats", a.repeats]
        config = model_json(a, a.prompt + a.tokens)
        tforge = [TFORGE, "bench", "generate", "--config", config, "--tokens", a.tokens, "--prompt", a.prompt,
                  "--repeats", a.repeats, "--cache-only", "--device", a.device] + tf_threads
    tforge += shlex.split(a.tforge_args)
    bench = os.path.join(ROOT, "benchmarks", "pytorch", "bench.py")
    stacks = {a.label: (tforge, {}), "gpt": ([python, bench] + work_py + common_py, {}),
              "gpt-separate-qkv": ([python, bench] + work_py + common_py + ["--qkv", "separate"], {})}
    for v in a.variant:
        name, _, spec = v.partition("=")
        words = shlex.split(spec)
        env = {}
        while words and re.match(r"^[A-Z_][A-Z0-9_]*=", words[0]):
            key, _, value = words.pop(0).partition("=")
            env[key] = value
        base = list(tforge)
        if words and words[0].startswith("@"):  # another build of tforge (e.g. an earlier commit)
            base[0] = words.pop(0)[1:]
        for i, w in enumerate(words):  # a variant's option replaces the same option of the base command
            if w.startswith("--") and w in base:
                at = base.index(w)
                takes_value = at + 1 < len(base) and not str(base[at + 1]).startswith("--")
                del base[at:at + (2 if takes_value else 1)]
        stacks[name] = (base + words, env)
    deps = os.environ.get("XT_DEPS", "")
    for name, var in (("xt020", "XT020"), ("xt140", "XT140")):
        if os.environ.get(var):
            env = {"PYTHONPATH": deps} if deps else {}
            stacks[name] = ([python, bench] + work_py + common_py + ["--stack", name, "--xt-src", os.environ[var]], env)
    variants = [v.partition("=")[0] for v in a.variant]
    wanted = a.stacks.split(",") if a.stacks else [a.label] + variants + ["gpt"] + [s for s in ("xt020", "xt140") if s in stacks]
    wanted = [a.label if s == "tforge" else s for s in wanted]
    missing = [s for s in wanted if s not in stacks]
    if missing:
        sys.exit(f"unknown or unavailable stacks: {', '.join(missing)} (x-transformers need XT020 / XT140)")
    return [(s, [str(x) for x in stacks[s][0]], stacks[s][1]) for s in wanted]


CPU_KEYS = ("step_cpu_ms", "fwd_cpu_ms", "bwd_cpu_ms", "opt_cpu_ms")
OMP_ENV = {"spin": {"GOMP_SPINCOUNT": "10000"}, "passive": {"OMP_WAIT_POLICY": "PASSIVE"}, "default": {}}


def run(cmd, extra_env, threads, omp):
    env = dict(os.environ)
    if "OMP_WAIT_POLICY" not in env and "GOMP_SPINCOUNT" not in env:
        env.update(OMP_ENV[omp])
    if "OMP_WAIT_POLICY" in extra_env and "GOMP_SPINCOUNT" not in extra_env:
        env.pop("GOMP_SPINCOUNT", None)  # libgomp lets a spin count override the policy
    env.update(extra_env)
    if threads:
        env.setdefault("OMP_NUM_THREADS", str(threads))
    before = load()
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if out.returncode != 0:
        sys.exit(f"failed ({out.returncode}): {' '.join(cmd)}\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}")
    line = next((l for l in out.stdout.splitlines() if l.startswith("RESULT ")), None)
    if line is None:
        sys.exit(f"no RESULT line from: {' '.join(cmd)}\n{out.stdout[-2000:]}")
    fields = dict(kv.split("=", 1) for kv in line.split()[1:])
    fields["load"] = before
    return fields


def main():
    a = parse()
    if not os.path.exists(TFORGE):
        subprocess.run(["dotnet", "build", "-c", "Release", os.path.join(ROOT, "src", "TransformerForge.Cli")], check=True,
                       stdout=subprocess.DEVNULL)
    python = find_python()
    stacks = commands(a, python)
    key, better = ("step_ms", "lower") if a.workload == "train" else ("tokens_per_s", "higher")
    print(f"workload {a.workload}: vocab {a.vocab}, dim {a.dim}, depth {a.depth}, heads {a.heads}"
          + (", rotary" if a.rotary else "") + (", GLU" if a.glu else "")
          + (f", batch {a.batch} x seq {a.seq}, {a.warmup} warm-up + {a.steps} timed steps, {a.precision}" if a.workload == "train"
             else f", batch 1, prompt {a.prompt}, {a.tokens} new tokens, median of {a.repeats}")
          + f"; {a.device}, {a.threads or 'adaptive tforge /' + str(os.cpu_count())} threads, OpenMP waiting {a.omp} "
          f"({' '.join(f'{k}={v}' for k, v in OMP_ENV[a.omp].items()) or 'unset'}; environment wins: OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', '-')} GOMP_SPINCOUNT={os.environ.get('GOMP_SPINCOUNT', '-')}), "
          f"{a.rounds} rounds; {key} ({better} is better)")
    results = {s: [] for s, _, _ in stacks}
    for r in range(a.rounds):
        order = stacks[r % len(stacks):] + stacks[:r % len(stacks)]
        line = []
        for name, cmd, env in order:
            f = run(cmd, env, a.threads, a.omp)
            results[name].append(f)
            line.append(f"{name} {float(f[key]):.2f} (load {f['load']})")
        print(f"round {r + 1}: " + ", ".join(line), flush=True)
    ours = a.label
    print()
    for name, _, _ in stacks:
        values = [float(f[key]) for f in results[name]]
        extra = ""
        if a.workload == "train":
            parts = {k: statistics.median(float(f[k]) for f in results[name]) for k in ("fwd_ms", "bwd_ms", "opt_ms", "peak_rss_mib")}
            extra = f"  (forward {parts['fwd_ms']:.1f} / backward {parts['bwd_ms']:.1f} / optimizer {parts['opt_ms']:.1f} ms), peak RSS {parts['peak_rss_mib']:.0f} MiB"
            if all("step_cpu_ms" in f for f in results[name]):
                cpu = {k: statistics.median(float(f[k]) for f in results[name]) for k in CPU_KEYS}
                extra += (f"; CPU time {cpu['step_cpu_ms']:.1f} ms (forward {cpu['fwd_cpu_ms']:.1f} / backward {cpu['bwd_cpu_ms']:.1f}"
                          f" / optimizer {cpu['opt_cpu_ms']:.1f})")
        print(f"{name:18} median {key} {statistics.median(values):10.2f}{extra}")
    print()
    for name, _, _ in stacks:
        if name == ours:
            continue
        ratios = [float(o[key]) / float(t[key]) for o, t in zip(results[ours], results[name])]
        print(f"{ours} / {name}: per round {', '.join(f'{x:.3f}' for x in ratios)}; median {statistics.median(ratios):.3f}"
              + ("  (time ratio: below 1 means tforge is faster)" if a.workload == "train" else "  (speed ratio: above 1 means tforge is faster)"))
        if a.workload == "generate" and all("cpu_ms_per_token" in f for f in results[ours] + results[name]):
            cpu = statistics.median(float(t["cpu_ms_per_token"]) / float(o["cpu_ms_per_token"]) for o, t in zip(results[ours], results[name]))
            print(f"{'':{len(ours)}}   CPU time per token, theirs / ours, median {cpu:.3f} (above 1: tforge does less work per token)")
        if a.workload == "train":
            mem = [float(o["peak_rss_mib"]) / float(t["peak_rss_mib"]) for o, t in zip(results[ours], results[name])]
            print(f"{'':{len(ours)}}   peak RSS ratio median {statistics.median(mem):.3f}")
            if all("step_cpu_ms" in f for f in results[ours] + results[name]):
                # CPU time (all threads, user + system) measures the work done, which load distorts far less than wall-clock.
                cpu = {k: statistics.median(float(o[k]) / float(t[k]) for o, t in zip(results[ours], results[name])) for k in CPU_KEYS}
                print(f"{'':{len(ours)}}   CPU time ratio median: step {cpu['step_cpu_ms']:.3f} (forward {cpu['fwd_cpu_ms']:.3f} / "
                      f"backward {cpu['bwd_cpu_ms']:.3f} / optimizer {cpu['opt_cpu_ms']:.3f})")


if __name__ == "__main__":
    main()
