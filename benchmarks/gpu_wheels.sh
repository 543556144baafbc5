#!/usr/bin/env bash
# Run here (the machine with PyPI), before a device-tool call: downloads into .whl/ (ignored by git) the wheels the
# lent GPU machine's image lacks, which `benchmarks/gpu_setup.sh` installs there without a network. The machine
# cannot reach PyPI, and a new checkout has no .whl, so every GPU session starts with this. The versions are the
# ones every GPU result in benchmarks/ was measured with (gpu_results.md, paper_scale_results_h100.md); all but
# wcwidth's (abi3, x86_64) are pure Python (nerfacc builds its CUDA kernels on the GPU machine); about 9 MiB.
set -euo pipefail
cd "$(dirname "$0")/.."
PACKAGES="diffusers==0.42.1 ftfy==6.3.1 nerfacc==0.5.3 open_clip_torch==3.3.0 peft==0.21.2 wcwidth==0.9.4"
# other versions of these packages left in .whl would make gpu_setup.sh's `pip install .whl/*.whl` see two of one
for pkg in $PACKAGES; do rm -f ".whl/${pkg%%==*}-"*.whl; done
# for the GPU machine, not this one: its image runs CPython 3.12 on x86_64 Linux (/opt/torch/.venv, in h100/ logs)
python3 -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: -d .whl \
  --platform manylinux2014_x86_64 --implementation cp --python-version 3.12 $PACKAGES
ls .whl
du -sh .whl
