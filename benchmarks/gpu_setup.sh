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
  # a damaged or incomplete set of parts fails gzip's check: then start cold rather than from a partial cache
  if ( set -o pipefail; cat .inductor-cache/inductor-cache.tgz.* | tar -xzf - -C /tmp ) >> "$OUT/setup.log" 2>&1; then
    echo "compile cache: unpacked $(du -sh /tmp/inductor-cache | cut -f1)" >> "$OUT/setup.log"
  else
    echo "compile cache: the carried parts did not unpack; compiling cold" >> "$OUT/setup.log"
    rm -rf /tmp/inductor-cache && mkdir -p /tmp/inductor-cache
  fi
fi
save_compile_cache() {
  # as 15 MiB parts under $OUT, only when all of them can come back: the device tool returns 8 files of at most
  # 16 MiB, 64 MiB in all (and carries 64 MiB, wheels and repository included: about 50 MiB are left for it)
  local tgz=/tmp/inductor-cache.tgz files used size parts
  if ! tar -C /tmp -czf "$tgz" inductor-cache 2>> "$OUT/setup.log"; then
    echo "compile cache: packing failed; not saved" >> "$OUT/setup.log"; rm -f "$tgz"; return
  fi
  files=$(find "$OUT" -type f | wc -l); used=$(du -cb $(find "$OUT" -type f) 2> /dev/null | tail -1 | cut -f1)
  size=$(stat -c %s "$tgz"); parts=$(( (size + 15728639) / 15728640 ))
  if (( files + parts > 8 || used + size > 60 * 1048576 || size > 50 * 1048576 )); then
    echo "compile cache: $((size / 1048576)) MiB compressed in $parts part(s), too much to bring back with" \
      "the $files file(s) already under \$OUT; not saved" >> "$OUT/setup.log"
  else
    split -b 15m -d "$tgz" "$OUT/inductor-cache.tgz."
    echo "compile cache: $((size / 1048576)) MiB compressed, $parts part(s)" >> "$OUT/setup.log"
  fi
  rm -f "$tgz"
}
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
  python3 -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__, torch.cuda.get_device_name())"
} >> "$OUT/setup.log" 2>&1
# nerfacc's CUDA kernels: a build brought back by an earlier call (SAVE_NERFACC=1) and carried in `.nerfacc-build/`
# is loaded instead of building again (77 s in call 12 of paper_scale_results_h100.md), when its name says it was
# built for this torch and GPU: for a call that starts a fresh machine after one that built it (a warm machine keeps
# its build anyway). nerfacc imports a prebuilt `nerfacc.csrc` before it builds, so a module of that
# name loads the carried file; any failure there is an ImportError, and nerfacc then builds as usual.
nerfacc_tag=$(python3 -c "import torch; print(torch.__version__.replace('+', '-') + '-sm'
  + ''.join(map(str, torch.cuda.get_device_capability())))" 2>> "$OUT/setup.log")
nerfacc_so="nerfacc_cuda-${nerfacc_tag:-unknown}.so"
if [ -n "$nerfacc_tag" ] && [ -f ".nerfacc-build/$nerfacc_so" ]; then
  cat > /tmp/site/nerfacc/csrc.py << EOF_SHIM
# written by benchmarks/gpu_setup.sh: nerfacc's CUDA kernels from a carried build
import importlib.util
import sys

try:
    import torch  # noqa: F401  (the extension links against libtorch)

    _spec = importlib.util.spec_from_file_location("nerfacc_cuda", "$PWD/.nerfacc-build/$nerfacc_so")
    _module = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(_module)
except Exception as err:
    raise ImportError(f"the carried nerfacc build did not load: {err}") from err
sys.modules[__name__] = _module
EOF_SHIM
  echo "nerfacc: loading the carried build .nerfacc-build/$nerfacc_so" >> "$OUT/setup.log"
else
  echo "nerfacc: no carried build for ${nerfacc_tag:-this machine} (.nerfacc-build/$nerfacc_so); building" \
    >> "$OUT/setup.log"
fi
( time timeout 150 python3 -c "from nerfacc.cuda._backend import _C; print('nerfacc CUDA built:', _C is not None,
  'from', getattr(_C, '__file__', None))" ) >> "$OUT/setup.log" 2>&1
# SAVE_NERFACC=1: bring the build back for the next session to carry as .nerfacc-build/ (one file, when it fits one
# of the device tool's files, 16 MiB)
if [ "${SAVE_NERFACC:-0}" != 0 ] && [ -n "$nerfacc_tag" ]; then
  built=$(python3 -c "from torch.utils.cpp_extension import _get_build_directory as d; print(d('nerfacc_cuda', False))"
          2>> "$OUT/setup.log")/nerfacc_cuda.so
  if [ -f "$built" ] && (( $(stat -c %s "$built") <= 15 * 1048576 )); then
    cp "$built" "$OUT/$nerfacc_so" && echo "nerfacc: build saved as $nerfacc_so" >> "$OUT/setup.log"
  else
    echo "nerfacc: no build to save at $built, or over 15 MiB" >> "$OUT/setup.log"
  fi
fi
