# Sourced by the GPU scripts (benchmarks/gpu_*.sh) on a lent GPU machine, in the repository root, with `.whl`
# carried: installs the wheels the GPU image lacks, sets the environment, records the GPU and builds nerfacc's
# CUDA kernels (JIT, about a minute) once, up front. All of it goes to one file, $OUT/setup.log: the device
# tool brings back at most eight. Worst case: 150 s for the build.
mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl > "$OUT/setup.log" 2>&1
export PYTHONPATH=/tmp/site:$PWD MAX_JOBS=16 PYTHONUNBUFFERED=1
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
  python3 -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__, torch.cuda.get_device_name())"
} >> "$OUT/setup.log" 2>&1
( time timeout 150 python3 -c "from nerfacc.cuda._backend import _C; print('nerfacc CUDA built:', _C is not None)" ) \
  >> "$OUT/setup.log" 2>&1
