#!/usr/bin/env bash
# The checks only a GPU can run, as one script for a lent H100/H200 (the device tool's `run`, with
# `.whl` carried: the wheels the GPU image lacks). Writes eight logs under $OUT, as many as the tool brings
# back (an earlier version wrote ten and lost two); benchmarks/gpu_results.md is written from them.
set -u
source benchmarks/gpu_setup.sh  # pip, the GPU's name and nerfacc's build: $OUT/setup.log
python3 -c "from pipelines.cli import main; main()" info > "$OUT/info.log" 2>&1
timeout 150 python3 -m pytest -q -p no:cacheprovider -rs tests/encodings tests/render > "$OUT/tests_cuda.log" 2>&1
timeout 330 python3 benchmarks/paper_scale.py --device cuda --budget-s 200 --out "$OUT/paper_scale" > "$OUT/paper_scale.log" 2>&1
timeout 60 python3 benchmarks/encoding.py --device cuda --skip-render > "$OUT/encoding.log" 2>&1
timeout 90 python3 benchmarks/eval_render.py --device cuda > "$OUT/eval_render.log" 2>&1
tail -n 4 "$OUT"/*.log
