#!/usr/bin/env bash
# Where a paper-scale update's time and memory go, as one call of the device tool's `run` (carry `.whl`):
# the `paper` profile on the compact scene (bf16, channels_last), each run with `--phases` (render, VAE,
# UNets, backward, optimizer timed apart, with each part's peak memory), for the plain configuration and
# each memory option alone and together, on one warm GPU so the figures compare (every update starts
# from the same scene and cameras). Writes setup.log, runs.log and one <run>.md per configuration under $OUT
# (five configurations at most: the device tool brings back 8 files).
# Limits: RUN_TIMEOUT=S (default 70) per configuration; COMPILE_TIMEOUT=S (default 200) for one whose flags compile
# UNets, VAE encoders or the field (--compile, --compile-vae, --compile-field: the compilation is paid in its
# warm-up step). Every limit is also cut to end DEADLINE seconds after the script started (default 570, for the
# tool's 600 s and `timeout_s` 590), keeping 20 s for what follows the runs, so the results and a saved cache come
# back even when a configuration runs to its limit. Call 3 of paper_scale_results_h100.md ran an earlier version
# of this script (six configurations, no snapshot, no warm-up run).
set -u
source benchmarks/gpu_setup.sh
common=(--device cuda --scene ball --ball-radius 0.5 --precision bf16 --channels-last --profiles paper
        --budget-s 35 --phases)
deadline=${DEADLINE:-570}
run() {  # name, extra flags...
  local name=$1; shift
  local limit=${RUN_TIMEOUT:-70} left=$(( deadline - 20 - SECONDS ))
  [[ " $* " == *" --compile"[\ -]* ]] && limit=${COMPILE_TIMEOUT:-200}
  (( left < limit )) && limit=$left
  if (( limit < 10 )); then echo "=== $name: skipped, DEADLINE reached" >> "$OUT/runs.log"; return; fi
  echo "=== $name ($limit s at most): $*" >> "$OUT/runs.log"
  timeout -k 5 "$limit" python3 benchmarks/paper_scale.py "${common[@]}" "$@" --out "$OUT/$name" >> "$OUT/runs.log" 2>&1
  rm -f "$OUT/$name.json"
}
# a throwaway first run compiles Triton's kernels into its on-disk cache, so the first configuration does not pay
# for that (on the H100 it got fewer timed repeats and slower figures; paper_scale_results_h100.md); each run
# still pays its own process's first use of cuDNN and cuBLAS in its warm-up step
# (WARMUP=0 skips it: for a single configuration, whose own warm-up step pays the same)
[ "${WARMUP:-1}" = 0 ] || timeout -k 5 60 python3 benchmarks/paper_scale.py "${common[@]}" --repeats 0 --budget-s 5 > /dev/null 2>&1
# arguments "name:flags" choose the configurations (in order); without any, the five below
configs=("$@")
[ ${#configs[@]} -gt 0 ] || configs=(plain: plain_tf32:--tf32 field_recompute:--recompute-field
  vae_ckpt:--vae-checkpointing "lean:--recompute-field --vae-checkpointing")
for c in "${configs[@]}"; do
  if [[ $c == *:* ]]; then run "${c%%:*}" ${c#*:}; else run "$c"; fi  # "name" alone: no flags
done
# ENCODING=1: then the hash grids alone (benchmarks/encoding.py: Triton with relaxed atomic adds against Triton's
# default acq_rel order, in the same run), 60 s at most, within DEADLINE, into encoding.log; ENCODING_POINTS points
# (default 2^21, a render's order of magnitude: at encoding.py's default 65,536 one call takes about a millisecond,
# and call 9 of paper_scale_results_h100.md found the two orders ahead in turn for 3D and 4D)
if [ "${ENCODING:-0}" != 0 ]; then
  left=$(( deadline - 20 - SECONDS )); (( left > 60 )) && left=60
  if (( left < 10 )); then
    echo "encoding skipped: DEADLINE reached" > "$OUT/encoding.log"
  else
    timeout -k 5 "$left" python3 benchmarks/encoding.py --device cuda --skip-render --repeats 5 \
      --points "${ENCODING_POINTS:-2097152}" > "$OUT/encoding.log" 2>&1
    echo "exit status $?" >> "$OUT/encoding.log"
  fi
fi
# TESTS=1: also the CUDA-only tests of the priors (compiled against eager in bf16, all three priors, -rP printing the
# errors measured; CUDA-graphed against eager, exact), 240 s at most, within DEADLINE
if [ "${TESTS:-0}" != 0 ]; then
  left=$(( deadline - 20 - SECONDS )); (( left > 240 )) && left=240
  if (( left < 10 )); then  # `timeout 0` would mean no limit at all
    echo "tests skipped: DEADLINE reached" > "$OUT/tests_cuda.log"
  else
    timeout -k 5 "$left" python3 -m pytest -q -p no:cacheprovider -rs -rP tests/guidance -k cuda > "$OUT/tests_cuda.log" 2>&1
    echo "pytest exit status $?" >> "$OUT/tests_cuda.log"
  fi
fi
# SAVE_CACHE=1: bring back torch.compile's cache for the next call to carry (gpu_setup.sh)
[ "${SAVE_CACHE:-0}" = 0 ] || save_compile_cache
for f in "$OUT"/*.md; do
  echo "== $(basename "$f")"; grep -A7 "^| update | first drawn in | samples with gradient |" "$f"; grep "^Goal" "$f"
  grep "^\*\*Partial" "$f"  # a run its limit cut short
  head -n 1 "$f" | grep -o "'cuda_graph': {[^}]*}"  # shapes graphed and failed per update (--cuda-graph)
done
if [ -f "$OUT/tests_cuda.log" ]; then tail -n 5 "$OUT/tests_cuda.log"; fi
if [ -f "$OUT/encoding.log" ]; then tail -n 6 "$OUT/encoding.log"; fi
exit 0  # the figures above and the files under $OUT are the result, not the last grep's status
