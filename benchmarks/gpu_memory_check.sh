#!/usr/bin/env bash
# Issue 13's open measurement, as one call of the device tool's `run` (carry `.whl`, the wheels the GPU
# image lacks): paper-scale cost and peak memory on a compact, trained-like scene (`--scene ball`) with
# the fastest frozen-weight options measured so far (bf16, channels_last).
#  1. `paper`, `release` and `release-lowvram` with activation checkpointing of the field and the VAE
#     encoder (`--recompute-field --vae-checkpointing`: the same gradients up to float rounding, so `paper`
#     keeps its training signal);
#  2. `paper` without them, on the same warm GPU: what the checkpointing saves and what it costs in time.
# The dense-field figures to compare with are in benchmarks/paper_scale_results_gpu.md. Writes logs and
# results under $OUT (seven files: the device tool brings back at most eight). A second call can add options to
# both runs, e.g. EXTRA="--grad-max-samples 100000" or EXTRA="--tf32". (`--compile-field` was measured on an H100:
# slower, and refused with --recompute-field; benchmarks/paper_scale_results_h100.md.)
set -u
source benchmarks/gpu_setup.sh
common=(--device cuda --scene ball --ball-radius 0.5 --precision bf16 --channels-last)
# worst case 150 + 250 + 150 s, under the device tool's 600 s per command. --budget-s counts the timed repeats
# only: the model build (about 15 s), each update's warm-up and the first use of cuDNN and Triton come on top
timeout 250 python3 benchmarks/paper_scale.py "${common[@]}" --budget-s 150 --recompute-field --vae-checkpointing \
  ${EXTRA:-} --out "$OUT/paper_scale_ball_lean" > "$OUT/paper_scale_ball_lean.log" 2>&1
timeout 150 python3 benchmarks/paper_scale.py "${common[@]}" --budget-s 70 --profiles paper \
  ${EXTRA:-} --out "$OUT/paper_scale_ball_plain" > "$OUT/paper_scale_ball_plain.log" 2>&1
tail -n 30 "$OUT"/*.log
