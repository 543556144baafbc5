"""The Triton hash grid equals the PyTorch backend (values and parameter gradients).

On CPU the kernels run in Triton's interpreter, in a subprocess because TRITON_INTERPRET=1 must be
set before triton is imported; on CUDA they run compiled, in-process (skipped without a GPU).
Cases (tests/encodings/triton_cases.py): tiny and paper configs in 3D and 4D, points on cell
borders and at 0 and 1, dense and hashed levels, F=1, and many duplicates of a few points whose
backward atomic adds hit the same table entries.
"""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import triton_cases  # noqa: E402

from method import backends  # noqa: E402
from method.encodings import HashGridEncoding  # noqa: E402


@pytest.fixture(scope="module")
def interpreter_results() -> dict:
    env = dict(os.environ, TRITON_INTERPRET="1", OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, str(HERE / "triton_cases.py"), "cpu"], env=env, capture_output=True,
                          text=True, timeout=600, cwd=HERE.parent.parent)
    lines = [l for l in proc.stdout.splitlines() if l.startswith("RESULTS ")]
    assert proc.returncode == 0 and lines, f"interpreter run failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
    return json.loads(lines[-1][len("RESULTS "):])


@pytest.mark.parametrize("case", list(triton_cases.CASES))
def test_triton_matches_torch_in_interpreter(case, interpreter_results):
    assert interpreter_results[case] == "ok", interpreter_results[case]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device: compiled Triton kernels not run")
@pytest.mark.parametrize("case", list(triton_cases.CASES))
def test_triton_matches_torch_on_cuda(case):
    triton_cases.run_case(case, "cuda")


def test_triton_backend_on_cpu_without_interpreter_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    enc = HashGridEncoding(3, n_levels=2, log2_hashmap_size=8, backend="triton")
    with pytest.raises(RuntimeError, match="TRITON_INTERPRET=1"):
        enc(torch.rand(4, 3))


def test_triton_backend_rejects_unsupported_shapes():
    with pytest.raises(ValueError, match="power-of-two"):
        HashGridEncoding(3, n_levels=2, n_features_per_level=3, log2_hashmap_size=8, backend="triton")(
            torch.rand(2, 3))


@pytest.mark.parametrize("tcnn,triton,device,expected", [
    (True, True, "cuda", "tcnn"), (False, True, "cuda", "triton"), (False, False, "cuda", "torch"),
    (True, True, "cpu", "torch")])
def test_auto_backend_order(monkeypatch, tcnn, triton, device, expected):
    monkeypatch.setattr(backends, "tcnn_module", lambda: object() if tcnn else None)
    monkeypatch.setattr(backends, "triton_module", lambda: object() if triton else None)
    monkeypatch.setattr(backends, "_triton_failure", [])
    assert backends.hash_grid_backend(device) == expected
    assert backends.hash_grid_backend(torch.device(device)) == expected


def test_auto_falls_back_to_torch_when_triton_cannot_run(monkeypatch):
    """e.g. Triton finds no C compiler for its launcher: `auto` warns once and computes with PyTorch."""
    monkeypatch.setattr(backends, "_triton_failure", [])
    monkeypatch.setattr(backends, "_warned", set())
    monkeypatch.setattr(backends, "hash_grid_backend", lambda device: "triton")

    def broken(self, x):
        raise RuntimeError("Failed to find C compiler")

    monkeypatch.setattr(HashGridEncoding, "_forward_triton", broken)
    auto = HashGridEncoding(3, n_levels=3, log2_hashmap_size=8, backend="auto")
    ref = HashGridEncoding(3, n_levels=3, log2_hashmap_size=8, backend="torch")
    ref.load_state_dict(auto.state_dict())
    x = torch.rand(50, 3)
    with pytest.warns(RuntimeWarning, match="Triton hash grid failed"):
        out = auto(x)
    assert torch.equal(out, ref(x))
    assert backends._triton_failure and "C compiler" in backends._triton_failure[0]
    explicit = HashGridEncoding(3, n_levels=3, log2_hashmap_size=8, backend="triton")
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    with pytest.raises(RuntimeError, match="C compiler"):
        explicit(x)


@pytest.mark.parametrize("d", [3, 4])
@pytest.mark.parametrize("backward", [False, True])
def test_kernels_compile_for_cuda_without_a_gpu(d, backward, tmp_path):
    """The compiled (not interpreted) path: Triton lowers the kernel to PTX and cubin for an sm_90
    target with no GPU present, so compile-mode errors show here too; positions are computed in
    float64 and rounded to float32 once (the fmaf equivalence)."""
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    from method.encodings import triton_hashgrid as tg

    pointers = ["x_ptr", "params_ptr", "out_ptr", "grad_out_ptr", "grad_params_ptr", "scale_ptr"]
    signature = {**{p: "*fp32" for p in pointers}, "res_ptr": "*i64", "offset_ptr": "*i64", "size_ptr": "*i64",
                 "hashed_ptr": "*i32", "N": "i32", **{c: "constexpr" for c in ("L", "D", "F", "BLOCK", "BACKWARD")}}
    signature["SEM"] = "constexpr"

    def compiled(sem):
        src = ASTSource(fn=tg._hashgrid_kernel, signature=signature,
                        constexprs={"L": 16, "D": d, "F": 2, "BLOCK": 128, "BACKWARD": backward, "SEM": sem})
        return triton.compile(src, target=GPUTarget("cuda", 90, 32))

    kernel = compiled(tg.ATOMIC_SEM)
    ptx = kernel.asm["ptx"]
    assert kernel.asm["cubin"] and "cvt.rn.f32.f64" in ptx
    adds = re.findall(r"\b(?:atom|red)\.global\.[\w.]*add\.f32", ptx)
    assert len(adds) == (2 ** d * 2 if backward else 0), adds  # one per corner and feature, only in backward
    if not backward:
        return
    # the adds are relaxed: in the machine code, plain reductions (REDG), without the GPU-wide barrier
    # (MEMBAR) and L1 invalidation (CCTL) that Triton's default order, acq_rel, puts around each of them
    assert all(".relaxed." in a for a in adds), adds
    nvdisasm = Path(triton.__file__).parent / "backends" / "nvidia" / "bin" / "nvdisasm"
    assert nvdisasm.is_file(), "Triton's wheel ships nvdisasm"

    def sass(kernel):
        cubin = tmp_path / "kernel.cubin"
        cubin.write_bytes(kernel.asm["cubin"])
        text = subprocess.run([str(nvdisasm), str(cubin)], capture_output=True, text=True, check=True).stdout
        return {op: len(re.findall(rf"\b{op}\b", text)) for op in ("REDG", "ATOMG", "MEMBAR", "CCTL")}

    assert sass(kernel) == {"REDG": 2 ** d * 2, "ATOMG": 0, "MEMBAR": 0, "CCTL": 0}
    default = sass(compiled("acq_rel"))  # the reference benchmarks/encoding.py times: what this replaced
    assert default["MEMBAR"] == default["ATOMG"] == 2 ** d * 2 and default["REDG"] == 0
