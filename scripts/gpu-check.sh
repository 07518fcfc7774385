#!/usr/bin/env bash
# GPU check for TransformerForge, in two halves:
#   scripts/gpu-check.sh pack   here (with .NET): publish tforge self-contained, without the CPU libtorch, plus the
#                               parity fixtures, into .gpu/tforge.tar.xz (git-ignored; carry it to the GPU machine).
#   scripts/gpu-check.sh run    there (no .NET, a CUDA PyTorch for python3): unpack, point the loader at PyTorch's
#                               libraries and run `tforge info --device cuda`, the parity suite on CUDA (it touches every
#                               operator the models use), the generation benchmark and a few training steps.
#   scripts/gpu-check.sh bench  there: training and generation speed side by side with a hand-written PyTorch GPT
#                               (benchmarks/side_by_side.py, interleaved rounds): fp32, bf16 and fp16 at dim 512,
#                               depth 8, seq 1024, batch 16 (issue 14's GPU goals), and batch-1 cached generation.
#   scripts/gpu-check.sh results there: the docs/results.md experiment (vanilla vs Primer EZ on tinyshakespeare,
#                               two seeds each, run side by side on the GPU); metrics land in $OUT (or ./results-gpu).
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-}

case "$mode" in
pack)
  rm -rf .gpu && mkdir -p .gpu/stage
  dotnet publish src/TransformerForge.Cli -c Release -r linux-x64 --self-contained -o .gpu/stage/tforge -p:DebugType=none >/dev/null
  # The CUDA libtorch comes from PyTorch on the GPU machine: drop the bundled CPU one (keep TorchSharp's shim).
  find .gpu/stage/tforge \( -name 'libtorch*.so' -o -name 'libc10*.so' -o -name 'libgomp*' -o -name 'libaoti*' \
       -o -name 'libbackend_with_compiler.so' -o -name 'libjitbackend_test.so' -o -name 'libnnapi_backend.so' -o -name 'libshm.so' \) -delete
  cp -r "${FIXTURES:-../shared/fixtures}" .gpu/stage/fixtures
  mkdir -p .gpu/stage/data && cp "${CORPUS:-../shared/data/tinyshakespeare.txt}" .gpu/stage/data/
  cp -r benchmarks .gpu/stage/benchmarks && rm -f .gpu/stage/benchmarks/results-*.txt
  tar -C .gpu/stage -cJf .gpu/tforge.tar.xz tforge fixtures data benchmarks
  rm -rf .gpu/stage
  ls -la .gpu/tforge.tar.xz
  ;;
run|results|bench)
  work=/tmp/tforge-gpu && rm -rf $work && mkdir -p $work && tar -C $work -xJf .gpu/tforge.tar.xz
  torch_dir=$(python3 -c 'import torch,os;print(os.path.dirname(torch.__file__))')
  nv=$(ls -d "$torch_dir"/../nvidia/*/lib 2>/dev/null | tr '\n' ':')
  export LD_LIBRARY_PATH="$torch_dir/lib:${nv}${LD_LIBRARY_PATH:-}"
  export TFORGE_LIBTORCH="$torch_dir/lib" TFORGE_CACHE=$work/cache
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
  python3 -c 'import torch;print("python torch", torch.__version__, "cuda", torch.version.cuda)'
  t=$work/tforge/tforge
  echo "== tforge info --device cuda"; $t info --device cuda
  if [ "$mode" = bench ]; then
    sbs="python3 $work/benchmarks/side_by_side.py --device cuda --rounds ${ROUNDS:-3}"
    export TFORGE=$t PYTHON=python3
    for p in fp32 bf16 fp16; do
      echo "== training step, dim 512, depth 8, heads 8, seq 1024, batch 16, $p (PyTorch: autocast$([ $p = fp16 ] && echo ' + GradScaler'))"
      $sbs train --dim 512 --depth 8 --heads 8 --seq 1024 --batch 16 --precision $p
    done
    echo "== batch-1 cached generation, dim 256 depth 4 and dim 512 depth 8"
    $sbs generate
    $sbs generate --dim 512 --depth 8 --heads 8
    exit 0
  fi
  echo "== parity on CUDA (all fixtures)"; $t parity --fixtures $work/fixtures --device cuda | grep -v '^frame #'
  if [ "$mode" = results ]; then
    out=${OUT:-$PWD/results-gpu}; mkdir -p "$out"
    # Same size and step budget for both models; two seeds each; the four runs share the GPU.
    common="--data $work/data/tinyshakespeare.txt --tokenizer chars --dim 256 --depth 4 --heads 8 --seq-len 256 --batch 32
            --steps ${STEPS:-2000} --lr 1e-3 --warmup 100 --eval-every 100 --eval-batches 16 --log-every 100 --sample-every 0
            --checkpoint-every 100000 --device cuda"
    for preset in vanilla primer-ez; do for seed in 1 2; do
      $t train $common --preset $preset --seed $seed --out $work/runs/$preset-$seed > $work/$preset-$seed.log 2>&1 &
    done; done
    wait
    for preset in vanilla primer-ez; do for seed in 1 2; do
      tail -n 3 $work/$preset-$seed.log
      cp $work/runs/$preset-$seed/metrics.jsonl "$out/$preset-$seed.jsonl"
    done; done
    exit 0
  fi
  echo "== generation benchmark on CUDA"; $t bench generate --device cuda
  echo "== training benchmark on CUDA (fp32, bf16)"
  $t bench train --device cuda --dim 512 --depth 8 --heads 8 --seq 1024 --batch 16 --quiet
  $t bench train --device cuda --dim 512 --depth 8 --heads 8 --seq 1024 --batch 16 --precision bf16 --quiet
  echo "== training steps on CUDA (Primer EZ on tinyshakespeare), then generation from the checkpoint"
  $t train --device cuda --data $work/data/tinyshakespeare.txt --tokenizer chars --steps 50 --eval-every 25 --out $work/run
  $t generate --device cuda --model $work/run/checkpoint --prompt "ROMEO:" --tokens 80 --seed 1
  echo "== exact resume on CUDA: dropout draws from the CUDA generator, which each step reseeds (TrainingRng)"
  printf '{"type":"TransformerWrapper","num_tokens":11,"max_seq_len":16,"attn_layers":{"type":"Decoder","dim":32,"depth":2,"heads":4,"attn_dropout":0.2,"ff_dropout":0.2}}' > $work/drop.json
  resume_args="--device cuda --config $work/drop.json --task copy --task-length 5 --batch 16 --steps 40 --eval-every 0 --sample-every 0
               --log-every 1 --checkpoint-every 0 --target-exact-match 0"
  $t train $resume_args --out $work/straight > /dev/null
  $t train $resume_args --out $work/split > /dev/null &
  pid=$!
  while [ "$(cat $work/split/metrics.jsonl 2>/dev/null | wc -l)" -lt 10 ]; do sleep 0.1; done
  kill -TERM $pid; wait $pid
  $t train --out $work/split --resume > /dev/null
  python3 - "$work/straight/metrics.jsonl" "$work/split/metrics.jsonl" <<'PY'
import json, sys
def losses(path):
    return {o["step"]: o["loss"] for o in map(json.loads, open(path)) if o.get("kind") == "train"}
a, b = losses(sys.argv[1]), losses(sys.argv[2])
same = sum(a[s] == b.get(s) for s in a)
worst = max(abs(a[s] - b.get(s, float("inf"))) for s in a)
# Other dropout masks move the loss by ~1e-2; CUDA's atomic adds alone by ~1e-7.
print(f"resume on CUDA: {same} of {len(a)} step losses identical to the uninterrupted run, max |difference| {worst:.2e}")
sys.exit(0 if len(a) == 40 and worst < 1e-4 else 1)
PY
  echo "== Feedback Transformer (shared key/value) on CUDA: copy task, then generation"
  printf '{ "type": "FeedbackTransformer", "num_tokens": 11, "dim": 64, "depth": 2, "heads": 4, "shared_kv": true, "max_seq_len": 32 }' > $work/fb.json
  $t train --device cuda --config $work/fb.json --task copy --steps 60 --eval-every 30 --out $work/fb
  ;;
*)
  echo "usage: $0 pack|run|bench|results" >&2; exit 2 ;;
esac
