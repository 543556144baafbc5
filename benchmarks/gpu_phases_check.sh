#!/usr/bin/env bash
# Where a paper-scale update's time and memory go, as one call of the device tool's `run` (carry `.whl`):
# the `paper` profile on the compact scene (bf16, channels_last), each run with `--phases` (render, VAE,
# UNets, backward, optimizer timed apart, with each part's peak memory), for the plain configuration and
# each memory option alone and together, on one warm GPU so the figures compare (every update starts
# from the same scene and cameras). Worst case about 150 + 75 s per configuration. Writes setup.log, runs.log and one <run>.md per configuration under $OUT (8 files at most).
set -u
mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl > "$OUT/setup.log" 2>&1
export PYTHONPATH=/tmp/site:$PWD MAX_JOBS=16 PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv >> "$OUT/setup.log" 2>&1
( time timeout 150 python3 -c "from nerfacc.cuda._backend import _C; print('nerfacc CUDA built:', _C is not None)" ) \
  >> "$OUT/setup.log" 2>&1
common=(--device cuda --scene ball --ball-radius 0.5 --precision bf16 --channels-last --profiles paper
        --budget-s 35 --phases)
run() {  # name, extra flags...
  local name=$1; shift
  echo "=== $name: $*" >> "$OUT/runs.log"
  timeout 75 python3 benchmarks/paper_scale.py "${common[@]}" "$@" --out "$OUT/$name" >> "$OUT/runs.log" 2>&1
  rm -f "$OUT/$name.json"
}
# arguments "name:flags" choose the configurations (in order); without any, the six below
configs=("$@")
[ ${#configs[@]} -gt 0 ] || configs=(plain: vae_ckpt:--vae-checkpointing field_recompute:--recompute-field
  "lean:--recompute-field --vae-checkpointing"
  "lean_big_regions:--recompute-field --recompute-chunk 4194304 --vae-checkpointing" plain_tf32:--tf32)
for c in "${configs[@]}"; do
  run "${c%%:*}" ${c#*:}
done
for f in "$OUT"/*.md; do
  echo "== $(basename "$f")"; grep -A7 "^| update | first drawn in | field samples |" "$f"; grep "^Goal" "$f"
done
