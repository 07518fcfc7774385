#!/usr/bin/env bash
# Every figure of docs/benchmarks.md, side by side, in one command (about an hour on 2 idle cores):
#   benchmarks/run-all.sh [ROUNDS]          output: benchmarks/results-<date>.txt (and the terminal)
# x-transformers columns appear when XT020 / XT140 point at source folders holding x_transformers/ of 0.20.x / 1.40.x
# and XT_DEPS at a folder with einops (>= 0.8), entmax (0.20) and packaging (1.40); see docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5}
out=benchmarks/results-$(date -u +%Y%m%d-%H%M).txt
dotnet build -c Release src/TransformerForge.Cli >/dev/null
sbs="python3 benchmarks/side_by_side.py --rounds $rounds"
{
  echo "== machine: $(nproc) cores, $(uptime)"
  echo "== training step, decoder vocab 256, dim 256, depth 4, heads 4, seq 256, batch 8, fp32"
  $sbs train
  echo "== training step with rotary + GLU"
  $sbs train --rotary --glu --stacks tforge,gpt
  echo "== batch-1 cached generation, dim 256, depth 4 (256 new tokens)"
  $sbs generate --stacks tforge,gpt$([ -n "${XT140:-}" ] && echo ,xt140)
  echo "== the same at dim 512, depth 8"
  $sbs generate --dim 512 --depth 8 --heads 8 --stacks tforge,gpt$([ -n "${XT140:-}" ] && echo ,xt140)
  echo "== lever: MKL's kernels chosen by instruction set (AMD) vs MKL's own vendor-based choice"
  $sbs train --variant vendor=TFORGE_MKL_DISPATCH=vendor --stacks tforge,vendor
  $sbs generate --variant vendor=TFORGE_MKL_DISPATCH=vendor --stacks tforge,vendor
  echo "== lever: flat AdamW vs one set of operations per tensor"
  $sbs train --variant per-tensor=--per-tensor-optimizer --stacks tforge,per-tensor
  echo "== lever: bf16 mixed precision vs fp32"
  $sbs train --variant bf16="--precision bf16" --stacks tforge,bf16
  threads='--omp default --variant fixed=TFORGE_THREADS=fixed --variant passive=OMP_WAIT_POLICY=PASSIVE --variant passive-fixed="OMP_WAIT_POLICY=PASSIVE TFORGE_THREADS=fixed" --stacks tforge,fixed,passive,passive-fixed'
  echo "== lever: thread policy (tforge's 10,000-round spin or PASSIVE; adaptive or fixed thread count), idle"
  eval $sbs generate --threads 0 $threads
  eval $sbs train --threads 0 $threads
  echo "== lever: thread policy beside one competing busy process"
  ( while :; do :; done ) & hog=$!
  trap 'kill $hog 2>/dev/null' EXIT
  eval $sbs generate --threads 0 $threads
  eval $sbs train --threads 0 $threads
  kill $hog; trap - EXIT
  echo "== memory over 1,000 steps of a small model (dim 64, depth 2, seq 64, batch 8): heap trimming on, then off"
  for trim in 1 0; do
    TFORGE_MALLOC_TRIM=$trim src/TransformerForge.Cli/bin/Release/net10.0/tforge bench train --dim 64 --depth 2 --seq 64 --batch 8 \
      --warmup 3 --steps 1000 --rss-every 250 | grep -E "^step|RESULT"
  done
  echo "== machine after: $(uptime)"
} 2>&1 | tee "$out"
