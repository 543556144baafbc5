"""CUDA graphs for the frozen UNets' no-gradient forward passes (`FrozenModelOptions.cuda_graph`).

Score distillation calls each frozen UNet once per update, without gradient, with the same few input shapes all run
long. Eager, a UNet forward is one Python call per layer and over a thousand kernel launches; at the paper's small
latents (32x32 for MVDream's 256x256 renders) the GPU waits for the host most of that time
(benchmarks/paper_scale_results_h100.md: the 3D update kept an H100 busy 59-84% of the time). A CUDA graph records
the launches once per input shape and replays them as one, so the host's share goes. The field and renderer cannot
be graphed this way: their sample count changes every step.

Rules of a replay, and how they are kept:
- every tensor argument is copied into a buffer made before the capture (the graph reads those addresses);
- the weights are read where they are, so an in-place update (the optimizer's) is seen; a module whose parameters
  are trained (VSD's LoRA UNet) is not graphed: its forward with gradient must build autograd's graph anyway;
- outputs live in the graph's memory and are overwritten by the next replay, so each call returns copies;
- a call the graph cannot stand for (gradient on, a CPU tensor, an argument that is not a tensor or a hashable
  value, a capture that fails) runs the forward as it is, so the option never changes what is computed.
A graph is kept per input signature: the tensors' shapes, dtypes, strides and devices, the other arguments' values,
and the module's direct children (MVDream's `camera=None` path swaps its camera embedding out).
"""

from __future__ import annotations

import warnings
from typing import Any, Callable

import torch
from torch.utils._pytree import tree_flatten, tree_unflatten

MAX_GRAPHS = 16
"""Graphs kept per module: each holds its forward's working memory, so a caller with ever-new shapes falls back to
eager after this many instead of filling the GPU."""

WARMUP_CALLS = 2
"""Eager calls on a side stream before a capture (PyTorch's advice: lazy initialisation and library workspaces must
not happen inside the capture)."""


def signature(leaves: list, module: torch.nn.Module, device_type: str = "cuda") -> tuple | None:
    """What a captured graph depends on besides the tensors' values; None where a call cannot be graphed (a tensor
    off `device_type`, one that needs gradient, a value that is not hashable)."""
    parts = []
    for leaf in leaves:
        if isinstance(leaf, torch.Tensor):
            if leaf.device.type != device_type or leaf.requires_grad:
                return None
            parts.append(("tensor", tuple(leaf.shape), leaf.dtype, tuple(leaf.stride()), str(leaf.device)))
        else:
            try:
                hash(leaf)
            except TypeError:
                return None
            parts.append(("value", type(leaf).__name__, leaf))
    children = tuple((name, id(child)) for name, child in module._modules.items())
    return tuple(parts), children


class _Graph:
    """One captured forward: its input buffers (in the order of the call's tensor leaves), graph and outputs."""

    def __init__(self, graph: torch.cuda.CUDAGraph, inputs: list[torch.Tensor], outputs: list, spec) -> None:
        self.graph, self.inputs, self.outputs, self.spec = graph, inputs, outputs, spec

    def __call__(self, tensors: list[torch.Tensor]) -> Any:
        for buffer, value in zip(self.inputs, tensors):
            buffer.copy_(value)
        self.graph.replay()
        return tree_unflatten([o.clone() if isinstance(o, torch.Tensor) else o for o in self.outputs], self.spec)


class GraphedForward:
    """`module.forward` replaced by this: replays a CUDA graph per input signature for calls without gradient,
    runs `forward` itself for any other call. `graphs` holds the captured ones, `failed` the signatures whose
    capture failed (run eagerly from then on, with one warning)."""

    def __init__(self, module: torch.nn.Module, forward: Callable) -> None:
        self.module, self.forward = module, forward
        self.graphs: dict[tuple, _Graph] = {}
        self.failed: set[tuple] = set()
        self.pool = None
        # a compiled forward stays recognisable as compiled (`base.is_compiled`: a shared module is not recompiled)
        self.fourdfy_compiled = getattr(forward, "fourdfy_compiled", False)

    def __call__(self, *args, **kwargs):
        if torch.is_grad_enabled():
            return self.forward(*args, **kwargs)
        leaves, spec = tree_flatten((args, kwargs))
        key = signature(leaves, self.module)
        # (the capture check last: it needs CUDA, which a CPU tensor's call never reaches)
        if key is None or key in self.failed or torch.cuda.is_current_stream_capturing():
            return self.forward(*args, **kwargs)
        tensors = [x for x in leaves if isinstance(x, torch.Tensor)]
        graph = self.graphs.get(key)
        if graph is None:
            if len(self.graphs) >= MAX_GRAPHS:
                return self.forward(*args, **kwargs)
            graph = self._capture(key, leaves, spec)
            if graph is None:
                return self.forward(*args, **kwargs)
        return graph(tensors)

    def _capture(self, key: tuple, leaves: list, spec) -> _Graph | None:
        inputs = [x.clone() if isinstance(x, torch.Tensor) else x for x in leaves]

        def run():
            a, kw = tree_unflatten(inputs, spec)
            return self.forward(*a, **kw)

        try:
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                for _ in range(WARMUP_CALLS):
                    run()
            torch.cuda.current_stream().wait_stream(side)
            if self.pool is None:
                self.pool = torch.cuda.graph_pool_handle()  # the module's graphs share one pool: one runs at a time
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph, pool=self.pool):
                out = run()
        except Exception as err:  # noqa: BLE001 - any failure to capture means: run this signature eagerly
            self.failed.add(key)
            warnings.warn(f"frozen.cuda_graph: could not capture {type(self.module).__name__}'s forward for one "
                          f"input signature ({type(err).__name__}: {err}); that signature runs without a CUDA graph",
                          RuntimeWarning, stacklevel=3)
            return None
        outputs, out_spec = tree_flatten(out)
        entry = _Graph(graph, [x for x in inputs if isinstance(x, torch.Tensor)], outputs, out_spec)
        self.graphs[key] = entry
        return entry


def graph_forward(module: torch.nn.Module) -> bool:
    """Replace `module.forward` by a `GraphedForward` (once: a module shared by two priors is wrapped once). False,
    and nothing done, where the module has trainable parameters: its forward is also called with gradient."""
    if isinstance(vars(module).get("forward"), GraphedForward):
        return True
    if any(p.requires_grad for p in module.parameters()):
        return False
    module.forward = GraphedForward(module, module.forward)
    return True


def is_graphed(module: torch.nn.Module) -> bool:
    """Whether `graph_forward` wrapped this module's forward."""
    return isinstance(vars(module).get("forward"), GraphedForward)
