"""FrozenModelOptions.cuda_graph (method/guidance/cuda_graphs.py): what a graph is keyed by, when a call runs its
forward as it is, which modules are wrapped; on CUDA, that graphed priors compute exactly what eager ones do."""

import pytest
import torch
from torch.utils._pytree import tree_flatten

from method.cameras import cameras_from_spherical, sample_multiview_groups, sample_single_views
from method.guidance.base import FrozenModelOptions, compiled
from method.guidance.cuda_graphs import GraphedForward, graph_forward, is_graphed, signature


def key(module, *args, **kwargs):
    leaves, _ = tree_flatten((args, kwargs))
    return signature(leaves, module, device_type="meta")


def test_signature_tells_apart_what_a_graph_depends_on_and_nothing_else():
    """Shapes, dtypes, strides and other arguments' values select a graph; tensor values do not (they are copied
    into the graph's buffers). A swapped child (MVDream's camera=None path) selects another graph."""
    unet = torch.nn.Module()
    unet.class_embedding = torch.nn.Linear(2, 2)
    x = torch.empty(2, 4, 8, 8, device="meta")
    t = torch.empty(2, dtype=torch.long, device="meta")
    base = key(unet, x, t, encoder_hidden_states=torch.empty(2, 3, 5, device="meta"),
               cross_attention_kwargs={"num_views": 4})
    assert base is not None
    assert base == key(unet, torch.empty_like(x), torch.empty_like(t),
                       encoder_hidden_states=torch.empty(2, 3, 5, device="meta"),
                       cross_attention_kwargs={"num_views": 4})
    others = [key(unet, torch.empty(4, 4, 8, 8, device="meta"), t, encoder_hidden_states=torch.empty(2, 3, 5, device="meta"),
                  cross_attention_kwargs={"num_views": 4}),
              key(unet, x.to(torch.bfloat16), t, encoder_hidden_states=torch.empty(2, 3, 5, device="meta"),
                  cross_attention_kwargs={"num_views": 4}),
              key(unet, x.to(memory_format=torch.channels_last), t,
                  encoder_hidden_states=torch.empty(2, 3, 5, device="meta"), cross_attention_kwargs={"num_views": 4}),
              key(unet, x, t, encoder_hidden_states=torch.empty(2, 3, 5, device="meta"),
                  cross_attention_kwargs={"num_views": 1}),
              key(unet, x, t, encoder_hidden_states=torch.empty(2, 3, 5, device="meta"))]
    assert None not in others and len({base, *others}) == len(others) + 1
    saved, unet.class_embedding = unet.class_embedding, None
    assert key(unet, x, t, encoder_hidden_states=torch.empty(2, 3, 5, device="meta"),
               cross_attention_kwargs={"num_views": 4}) != base
    unet.class_embedding = saved
    # calls no graph can stand for
    assert key(unet, torch.empty(2, 4, 8, 8), t) is None  # a tensor on another device
    assert key(unet, torch.empty(2, 4, device="meta", requires_grad=True)) is None
    assert key(unet, x, extra=[1, 2]) is not None  # a list is flattened into hashable leaves
    assert key(unet, x, extra={1, 2}) is None  # a set is one leaf, and not hashable


def test_a_wrapped_forward_on_cpu_or_with_gradient_runs_as_it_is():
    """No CUDA: the wrapper is a pass-through that records no graph, with and without gradient."""
    lin = torch.nn.Linear(3, 2).requires_grad_(False)
    assert graph_forward(lin) and is_graphed(lin)
    x = torch.randn(4, 3)
    with torch.no_grad():
        assert torch.equal(lin(x), x @ lin.weight.T + lin.bias)
    y = lin(x.requires_grad_(True))
    y.sum().backward()
    assert x.grad is not None and vars(lin)["forward"].graphs == {}


def test_only_frozen_modules_are_wrapped_once_and_a_compiled_forward_stays_known():
    trained = torch.nn.Linear(3, 2)  # trainable weights: called with gradient too (VSD's LoRA UNet)
    assert not graph_forward(trained) and not is_graphed(trained)
    frozen = torch.nn.Linear(3, 2).requires_grad_(False)
    graph_forward(frozen)
    wrapper = vars(frozen)["forward"]
    graph_forward(frozen)  # a module shared by two priors
    assert vars(frozen)["forward"] is wrapper and isinstance(wrapper, GraphedForward)
    assert wrapper.forward.__self__ is frozen  # not a wrapper of a wrapper
    comp = torch.nn.Linear(3, 2).requires_grad_(False)
    comp.forward = compiled(comp.forward)
    graph_forward(comp)
    from method.guidance.base import is_compiled

    assert is_compiled(comp)  # so a second prior does not compile the wrapper


def test_cuda_graph_is_ignored_on_cpu(tiny_root):
    from method.guidance import MVDreamGuidance
    from method.guidance.tiny import tiny_mvdream_config

    g = MVDreamGuidance(tiny_mvdream_config(frozen=FrozenModelOptions(half_precision=False, cuda_graph=True)))
    assert not is_graphed(g.unet)


@pytest.mark.slow
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA: CUDA graphs")
def test_graphed_priors_compute_what_eager_ones_do_on_cuda(tiny_root, make_rgb):
    """All three priors in bf16 with frozen.cuda_graph against the same priors eager: over three updates with
    other draws and steps (the first captures, the later ones replay with new inputs), the noise predictions,
    losses and render gradients are identical, the frozen UNets were graphed (VSD's LoRA UNet not) and replayed
    one graph per input shape."""
    from method.guidance import MVDreamGuidance, VSDGuidance, ZeroscopeGuidance
    from method.guidance.tiny import tiny_mvdream_config, tiny_vsd_config, tiny_zeroscope_config

    eager = FrozenModelOptions(half_precision=True, half_dtype="bfloat16")
    graphed = FrozenModelOptions(half_precision=True, half_dtype="bfloat16", cuda_graph=True)
    single = sample_single_views(1, generator=torch.Generator().manual_seed(0))
    cases = [(MVDreamGuidance, tiny_mvdream_config, sample_multiview_groups(1, generator=torch.Generator().manual_seed(0)),
              (4, 16, 16), ["loss_sds"], ["eps"]),
             (VSDGuidance, tiny_vsd_config, single, (1, 32, 32), ["loss_vsd", "loss_lora"],
              ["eps_pretrained", "eps_lora"]),
             (ZeroscopeGuidance, tiny_zeroscope_config, cameras_from_spherical(torch.zeros(4), 0.0, 2.8, 40.0),
              (4, 16, 24), ["loss_sds_video"], ["eps"])]
    for cls, make_cfg, cams, shape, losses, preds in cases:
        results = []
        for frozen in (eager, graphed):
            g = cls(make_cfg(frozen=frozen), device="cuda")
            runs = []
            for step in range(3):
                rgb = make_rgb(*shape, seed=step)
                out = g(rgb, cams, "a corgi", step, generator=torch.Generator().manual_seed(10 + step),
                        stage="stage2")
                sum(out[k] for k in losses).backward()
                runs.append({**{k: out[k].detach().float().cpu() for k in losses},
                             **{k: g.last[k].float().cpu() for k in preds}, "render_grad": rgb.grad.float()})
            results.append((g, runs))
        (_, plain), (g, graph_runs) = results
        assert is_graphed(g.unet) and len(vars(g.unet)["forward"].graphs) == 1, cls
        assert not vars(g.unet)["forward"].failed, cls
        if cls is VSDGuidance:
            assert not is_graphed(g.unet_lora)
        for a, b in zip(plain, graph_runs):
            for name in a:
                assert torch.equal(a[name], b[name]), (cls.__name__, name)
        assert not torch.equal(plain[0]["render_grad"], plain[1]["render_grad"])  # the updates differ
