#!/usr/bin/env bash
# The checks only a GPU can run, as one script for a lent H100/H200 (the device tool's `run`, with
# `.whl` carried: the wheels the GPU image lacks). Writes logs under $OUT; benchmarks/gpu_results.md
# is written from them.
set -u
mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl > "$OUT/pip.log" 2>&1
export PYTHONPATH=/tmp/site:$PWD MAX_JOBS=16 PYTHONUNBUFFERED=1
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
  python3 -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__, torch.cuda.get_device_name())"; } > "$OUT/gpu.log" 2>&1
# nerfacc builds its CUDA kernels on first use (JIT); once, up front
( time timeout 240 python3 -c "from nerfacc.cuda._backend import _C; print('nerfacc CUDA built:', _C is not None)" ) > "$OUT/nerfacc_build.log" 2>&1
python3 -c "from pipelines.cli import main; main()" info > "$OUT/info.log" 2>&1
timeout 150 python3 -m pytest -q -p no:cacheprovider -rs tests/encodings tests/render > "$OUT/tests_cuda.log" 2>&1
timeout 330 python3 benchmarks/paper_scale.py --device cuda --budget-s 220 --out "$OUT/paper_scale" > "$OUT/paper_scale.log" 2>&1
timeout 60 python3 benchmarks/encoding.py --device cuda --skip-render > "$OUT/encoding.log" 2>&1
timeout 90 python3 benchmarks/eval_render.py --device cuda > "$OUT/eval_render.log" 2>&1
tail -n 4 "$OUT"/*.log
