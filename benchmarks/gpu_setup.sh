# Sourced by the GPU scripts (benchmarks/gpu_*.sh) on a lent GPU machine, in the repository root, with `.whl`
# carried: installs the wheels the GPU image lacks, sets the environment, records the GPU and builds nerfacc's
# CUDA kernels (JIT, about a minute) once, up front. All of it goes to one file, $OUT/setup.log: the device
# tool brings back at most eight. Worst case: 150 s for the build.
# torch.compile's and Triton's caches live in /tmp/inductor-cache; a cache brought back by an earlier call
# (`save_compile_cache`, below) and carried as `.inductor-cache` (its .tgz.NN parts) is unpacked there first, so
# compiled priors load instead of compiling again (the video prior's parts took over 150 s cold, VSD's about
# 250 s, on the H100's 16 cores; the cache is keyed by torch, Triton, GPU and graph, so another machine of
# the same kind and image reuses it).
mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl > "$OUT/setup.log" 2>&1
export PYTHONPATH=/tmp/site:$PWD MAX_JOBS=16 PYTHONUNBUFFERED=1
export TORCHINDUCTOR_CACHE_DIR=/tmp/inductor-cache TRITON_CACHE_DIR=/tmp/inductor-cache/triton
mkdir -p /tmp/inductor-cache
if compgen -G ".inductor-cache/inductor-cache.tgz.*" > /dev/null; then
  cat .inductor-cache/inductor-cache.tgz.* | tar -xzf - -C /tmp && echo "compile cache: unpacked" \
    "$(du -sh /tmp/inductor-cache | cut -f1)" >> "$OUT/setup.log"
fi
save_compile_cache() {  # the cache as 15 MiB parts under $OUT (the tool's limit is 16 MiB a file, 8 files)
  tar -C /tmp -czf - inductor-cache | split -b 15m -d - "$OUT/inductor-cache.tgz."
  echo "compile cache: $(du -sh /tmp/inductor-cache | cut -f1), $(ls "$OUT"/inductor-cache.tgz.* | wc -l) part(s)" \
    >> "$OUT/setup.log"
}
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
  python3 -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__, torch.cuda.get_device_name())"
} >> "$OUT/setup.log" 2>&1
( time timeout 150 python3 -c "from nerfacc.cuda._backend import _C; print('nerfacc CUDA built:', _C is not None)" ) \
  >> "$OUT/setup.log" 2>&1
