"""The renderer on analytic scenes: sphere opacity, plane depth, clips, batches, chunking, background."""

import math

import pytest
import torch

from method.cameras import cameras_from_spherical
from method.backends import saved_for_backward_bytes
from method.render import RenderConfig, VolumeRenderer, rays_from_cameras, render_images, render_rays

def black(d):
    return torch.zeros_like(d)


def sphere_field(radius, sigma, centre=(0.0, 0.0, 0.0)):
    c = torch.tensor(centre)

    def field(x, t):
        inside = ((x - c.to(x)) ** 2).sum(-1) <= radius ** 2
        density = torch.where(inside, sigma, 0.0).to(x.dtype)
        return density, torch.ones_like(x) * 0.5
    return field


def test_constant_density_sphere_has_analytic_opacity():
    radius, sigma = 0.7, 2.0
    cams = cameras_from_spherical(torch.tensor([20.0, 140.0]), torch.tensor([10.0, 35.0]), 2.8, 45.0)
    h = w = 20
    # each chord end is off by at most step / 2, so |error| <= sigma * step = 8.5e-4 with this step
    cfg = RenderConfig(num_samples=8192, randomized=True)
    out = render_images(sphere_field(radius, sigma), black, cams, torch.zeros(2), h, w, cfg,
                        generator=torch.Generator().manual_seed(0))
    rays = rays_from_cameras(cams, h, w)
    o, d = rays.origins.double(), rays.directions.double()
    # distance from the sphere centre to each ray's line -> chord length
    along = -(o * d).sum(-1, keepdim=True)
    b2 = ((o + along * d) ** 2).sum(-1)
    chord = 2 * torch.sqrt((radius ** 2 - b2).clamp(min=0))
    expected = 1 - torch.exp(-sigma * chord)
    err = (out["opacity"][..., 0].double() - expected).abs()
    assert err.max() < 1e-3
    assert (chord > 0).float().mean() > 0.2 and (chord == 0).any()  # rays through and past the sphere


def test_depth_of_an_opaque_plane():
    # half-space n.x <= c filled with a huge density: every ray stops at its first sample beyond the plane
    n = torch.nn.functional.normalize(torch.tensor([1.0, 0.3, 0.2]), dim=0)
    c = 0.2

    def plane(x, t):
        return torch.where(x @ n.to(x) <= c, 1e5, 0.0).to(x.dtype), torch.ones_like(x)

    cams = cameras_from_spherical(torch.tensor([10.0, -25.0]), torch.tensor([5.0, 20.0]), 3.0, 30.0)
    h = w = 16
    cfg = RenderConfig(randomized=True)
    out = render_images(plane, black, cams, torch.zeros(2), h, w, cfg, generator=torch.Generator().manual_seed(1))
    rays = rays_from_cameras(cams, h, w)
    o, d = rays.origins.reshape(-1, 3).double(), rays.directions.reshape(-1, 3).double()
    u = torch.rand(len(o), generator=torch.Generator().manual_seed(1)).double()  # the renderer's jitter
    nd = n.double()
    t_plane = (c - o @ nd) / (d @ nd)  # where the ray crosses the plane
    step = cfg.step_size
    depth, opacity = out["depth"].reshape(-1).double(), out["opacity"].reshape(-1).double()
    hits = (t_plane > 0) & ((o + t_plane[:, None] * d).abs() <= 1 - 2 * step).all(-1)
    assert hits.sum() > 100
    assert ((opacity[hits] - 1).abs() < 1e-6).all()
    # right within half a step of the analytic distance...
    assert ((depth[hits] - t_plane[hits]).abs() <= step).all()
    # ...and exactly the first lattice midpoint (k + u + 0.5) * step at or beyond the plane
    k = torch.ceil(t_plane / step - u - 0.5)
    first_mid = (k + u + 0.5) * step
    torch.testing.assert_close(depth[hits], first_mid[hits], atol=2e-5, rtol=0)


class Recorder:
    """A field whose colour is its time input; remembers every call's (x, t)."""

    def __init__(self):
        self.calls = []

    def __call__(self, x, t):
        self.calls.append((x.detach().clone(), t.detach().clone()))
        density = torch.where((x ** 2).sum(-1) <= 0.5 ** 2, 30.0, 0.0).to(x.dtype)
        return density, t.expand(-1, 3).clone()


def test_clip_renders_one_time_per_frame():
    cam = cameras_from_spherical(30.0, 15.0, 3.0, 40.0)
    times = 0.013 + torch.arange(16) / 16
    field = Recorder()
    out = render_images(field, black, cam.repeat(16), times, 12, 12, RenderConfig(num_samples=64, randomized=False))
    opacity = out["opacity"][..., 0]
    covered = opacity > 0.5
    assert covered.any(dim=(1, 2)).all()
    # colour / opacity recovers the time each frame's points were queried at
    ratio = out["rgb"][..., 0] / opacity.clamp(min=1e-6)
    for f in range(16):
        torch.testing.assert_close(ratio[f][covered[f]], torch.full_like(ratio[f][covered[f]], times[f].item()))
    # the same camera: every frame gives the field the same points, each frame at its own time
    t_all = torch.cat([t for _, t in field.calls])[:, 0]
    values, counts = torch.unique(t_all, return_counts=True)
    torch.testing.assert_close(values, times.sort().values)
    assert (counts == counts[0]).all()
    # the same geometry in every frame since the density ignores t
    torch.testing.assert_close(opacity, opacity[:1].expand(16, -1, -1))


def test_four_view_batch_shares_one_time():
    cams = cameras_from_spherical(torch.tensor([0.0, 90.0, 180.0, 270.0]), 15.0, 2.5, 50.0)
    field = Recorder()
    out = render_images(field, black, cams, torch.full((4,), 0.4), 10, 10, RenderConfig(num_samples=64))
    assert out["rgb"].shape == (4, 10, 10, 3) and out["depth"].shape == (4, 10, 10, 1)
    t_all = torch.cat([t for _, t in field.calls])
    assert torch.equal(torch.unique(t_all), torch.tensor([0.4]))


class TinyField(torch.nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.net = torch.nn.Sequential(torch.nn.Linear(4, 32), torch.nn.Tanh(), torch.nn.Linear(32, 4))

    def forward(self, x, t):
        h = self.net(torch.cat([x, t], dim=-1))
        return torch.nn.functional.softplus(h[:, 0] + 2.0 - 4 * (x * x).sum(-1)), torch.sigmoid(h[:, 1:])


def test_chunked_equals_unchunked_with_gradients():
    field = TinyField()
    cams = cameras_from_spherical(torch.tensor([0.0, 120.0]), 20.0, 2.6, 40.0)
    times = torch.tensor([0.2, 0.7])
    cfg = RenderConfig(num_samples=96, randomized=True)
    bgf = lambda d: (d + 1) / 2

    def run(chunk):
        field.zero_grad()
        out = render_images(field, bgf, cams, times, 9, 11, cfg, generator=torch.Generator().manual_seed(3),
                            chunk=chunk)
        (out["rgb"].square().sum() + out["depth"].sum()).backward()
        return out, [p.grad.clone() for p in field.parameters()]

    full, g_full = run(None)
    chunked, g_chunked = run(17)  # not a divisor of the 198 rays
    for k in full:
        torch.testing.assert_close(chunked[k], full[k], atol=1e-6, rtol=0)
    for a, b in zip(g_full, g_chunked):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)
    assert all(g.abs().sum() > 0 for g in g_full)  # gradients reach the field
    with torch.no_grad():  # evaluation chunk from the config
        ev = render_images(field, bgf, cams, times, 9, 11, RenderConfig(num_samples=96, eval_chunk_rays=50),
                           generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(ev["rgb"], full["rgb"].detach(), atol=1e-6, rtol=0)


def test_rays_missing_the_box_show_background_and_skip_the_field():
    field = Recorder()
    away = cameras_from_spherical(0.0, 0.0, 3.0, 30.0)
    away_c2w = away.c2w.clone()
    away_c2w[:, :3, :3] = -away_c2w[:, :3, :3]  # turn around: now it looks away from the box
    away = type(away)(away_c2w, away.fovy, away.azimuth_deg, away.elevation_deg, away.distance)
    bgf = lambda d: (d + 1) / 2
    out = render_images(field, bgf, away, torch.zeros(1), 6, 6, RenderConfig())
    assert out["opacity"].abs().max() == 0 and out["depth"].abs().max() == 0
    dirs = rays_from_cameras(away, 6, 6).directions
    torch.testing.assert_close(out["rgb"], (dirs + 1) / 2)
    assert sum(len(x) for x, _ in field.calls) == 0
    # a wide view: the field only ever sees points inside the box
    field = Recorder()
    render_images(field, bgf, cameras_from_spherical(0.0, 0.0, 3.0, 90.0), torch.zeros(1), 16, 16, RenderConfig())
    x_all = torch.cat([x for x, _ in field.calls])
    assert len(x_all) > 0 and x_all.abs().max() <= 1.0 + 1e-5


def test_background_colour_overrides():
    field = sphere_field(0.5, 50.0)
    cams = cameras_from_spherical(torch.tensor([0.0, 90.0, 180.0]), 0.0, 3.0, 40.0)
    bgf = lambda d: torch.full_like(d, 0.25)
    colors = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    cfg = RenderConfig(num_samples=64, randomized=False)
    plain = render_images(field, bgf, cams, torch.zeros(3), 8, 8, cfg)
    forced = render_images(field, None, cams, torch.zeros(3), 8, 8, cfg, bg_colors=colors)
    mixed = render_images(field, bgf, cams, torch.zeros(3), 8, 8, cfg, bg_colors=colors,
                          bg_mask=torch.tensor([True, False, True]))
    a = plain["opacity"]
    corner = (0, 0)  # the image corners miss the sphere
    assert a[:, 0, 0, 0].max() == 0
    torch.testing.assert_close(forced["rgb"][:, corner[0], corner[1]], colors)
    torch.testing.assert_close(mixed["rgb"][[0, 2], 0, 0], colors[[0, 2]])
    torch.testing.assert_close(mixed["rgb"][1], plain["rgb"][1])
    # rgb = fg + bg * (1 - opacity) at every pixel
    fg = plain["rgb"] - 0.25 * (1 - a)
    torch.testing.assert_close(forced["rgb"], fg + colors[:, None, None] * (1 - a))


def test_dense_pruning_drops_faint_samples_like_the_grid():
    step = RenderConfig().step_size
    faint = -math.log(1 - 0.005) / step  # alpha 0.005 per sample, below the 0.01 threshold
    field = lambda x, t: (torch.full_like(x[:, 0], faint), torch.ones_like(x))
    cams = cameras_from_spherical(0.0, 0.0, 3.0, 20.0)
    plain = render_images(field, black, cams, torch.zeros(1), 4, 4, RenderConfig(randomized=False))
    pruned = render_images(field, black, cams, torch.zeros(1), 4, 4, RenderConfig(randomized=False, dense_pruning=True))
    assert plain["opacity"].min() > 0.5 and pruned["opacity"].max() == 0


def test_config_defaults_are_the_release_values():
    cfg = RenderConfig()
    assert (cfg.num_samples, cfg.box_radius, cfg.eval_chunk_rays, cfg.alpha_thre) == (512, 1.0, 160_000, 0.01)
    occ = cfg.occupancy
    assert (occ.resolution, occ.levels, occ.update_every, occ.ema_decay, occ.occ_thre, occ.warmup_steps) == \
        (32, 1, 16, 0.95, 0.01, 256)
    assert cfg.randomized and not cfg.for_eval().randomized
    with pytest.raises(ValueError):
        RenderConfig(use_occupancy_grid="yes")


def test_volume_renderer_uses_dense_path_on_cpu():
    r = VolumeRenderer(RenderConfig(num_samples=32), device="cpu")
    assert r.grid is None
    assert r.update(0, lambda x, t: torch.zeros(len(x)), dynamic=True) is False
    cams = cameras_from_spherical(0.0, 0.0, 3.0, 40.0)
    out = r.render_images(sphere_field(0.5, 20.0), black, cams, torch.zeros(1), 5, 5, randomized=False)
    assert out["opacity"][0, 2, 2, 0] > 0.9
    o, d = rays_from_cameras(cams, 5, 5).flatten()
    out_rays = r.render_rays(sphere_field(0.5, 20.0), black, o, d, torch.zeros(25), randomized=False)
    torch.testing.assert_close(out_rays["opacity"].reshape(1, 5, 5, 1), out["opacity"])


def test_gradient_subset_keeps_the_image_and_grads_only_the_subset():
    """grad_max_samples: same image; gradients equal those of the full render with every sample outside the
    drawn subset detached (an independent reference: the full graph, masked); less saved for backward."""
    field = TinyField()
    cams = cameras_from_spherical(torch.tensor([0.0, 120.0]), 20.0, 2.6, 40.0)
    times = torch.tensor([0.2, 0.7])
    bgf = lambda d: (d + 1) / 2  # noqa: E731
    cap = 500
    full_cfg = RenderConfig(num_samples=96, randomized=False)  # no jitter: the generator only draws the subset
    sub_cfg = RenderConfig(num_samples=96, randomized=False, grad_max_samples=cap)

    def run(cfg, fn):
        field.zero_grad()
        out, saved = saved_for_backward_bytes(render_images, fn, bgf, cams, times, 9, 11, cfg,
                                              generator=torch.Generator().manual_seed(5))
        (out["rgb"].square().sum() + out["depth"].sum()).backward()
        return out, [p.grad.clone() for p in field.parameters()], saved

    n_samples = []

    def counting(x, t):
        n_samples.append(len(x))
        return field(x, t)

    full, g_full, saved_full = run(full_cfg, counting)
    n = n_samples[0]
    assert n > 4 * cap  # the cap really bites
    keep = torch.zeros(n, dtype=torch.bool)
    seed = int(torch.randint(0, 2 ** 62, (1,), generator=torch.Generator().manual_seed(5)))  # as the renderer
    keep[torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:cap]] = True

    def masked(x, t):  # the reference: every sample evaluated with its graph, the others detached after
        sigma, rgb = field(x, t)
        return torch.where(keep, sigma, sigma.detach()), torch.where(keep[:, None], rgb, rgb.detach())

    ref, g_ref, _ = run(full_cfg, masked)
    sub, g_sub, saved_sub = run(sub_cfg, field)
    for k in full:
        torch.testing.assert_close(sub[k], full[k], atol=1e-6, rtol=0)
    for a, b, c in zip(g_sub, g_ref, g_full):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)
        assert not torch.allclose(a, c)  # and it is not the full gradient
    assert saved_sub < 0.6 * saved_full  # the subset's activations only (plus what compositing keeps)
    gen = torch.Generator().manual_seed(5)
    with torch.no_grad():  # no autograd: no subset, nothing drawn
        render_images(field, bgf, cams, times, 9, 11, sub_cfg, generator=gen)
    assert torch.equal(gen.get_state(), torch.Generator().manual_seed(5).get_state())
    with pytest.raises(ValueError, match="grad_max_samples"):
        RenderConfig(grad_max_samples=0)


def test_gradient_budget_is_the_calls_and_chunks_share_it():
    """With `train_chunk_rays` the passes split `grad_max_samples` by their rays: the render call keeps the
    budget it was given, not one budget per pass."""
    field = TinyField()
    cams = cameras_from_spherical(torch.tensor([0.0, 120.0]), 20.0, 2.6, 40.0)
    times = torch.tensor([0.2, 0.7])
    cap = 301
    with_grad = []

    def counting(x, t):
        if torch.is_grad_enabled():
            with_grad.append(len(x))
        return field(x, t)

    for chunk in (None, 70, 33):
        with_grad.clear()
        cfg = RenderConfig(num_samples=96, randomized=False, grad_max_samples=cap, train_chunk_rays=chunk)
        render_images(counting, lambda d: (d + 1) / 2, cams, times, 9, 11, cfg,
                      generator=torch.Generator().manual_seed(5))
        n_passes = 1 if chunk is None else -(-2 * 9 * 11 // chunk)
        assert len(with_grad) == n_passes and sum(with_grad) == cap, (chunk, with_grad)


@pytest.mark.parametrize("cap,chunk", [(None, None), (None, 70), (400, None)])
def test_recomputing_the_field_gives_the_same_render_and_gradients(cap, chunk):
    """recompute_field (activation checkpointing) in one region: bit-identical image and parameter gradients,
    alone, per ray chunk and with a gradient budget; what the render keeps for backward shrinks to the
    samples' inputs."""
    field = TinyField()
    cams = cameras_from_spherical(torch.tensor([0.0, 120.0]), 20.0, 2.6, 40.0)
    times = torch.tensor([0.2, 0.7])
    calls = []

    def counting(x, t):
        calls.append(torch.is_grad_enabled())
        return field(x, t)

    results = []
    for recompute in (False, True):
        field.zero_grad()
        calls.clear()
        cfg = RenderConfig(num_samples=96, randomized=True, grad_max_samples=cap, train_chunk_rays=chunk,
                           recompute_field=recompute)
        out, saved = saved_for_backward_bytes(render_images, counting, lambda d: (d + 1) / 2, cams, times, 9, 11,
                                              cfg, generator=torch.Generator().manual_seed(5))
        forward_calls = len(calls)
        (out["rgb"].square().sum() + out["depth"].sum()).backward()
        results.append((out, [p.grad.clone() for p in field.parameters()], saved, forward_calls, len(calls)))
    (plain, g_plain, s_plain, f_plain, n_plain), (lean, g_lean, s_lean, f_lean, n_lean) = results
    for k in plain:
        assert torch.equal(plain[k], lean[k]), k
    for a, b in zip(g_plain, g_lean):
        assert torch.equal(a, b)
    assert f_lean == f_plain and n_plain == f_plain  # the same forward passes, and backward adds none ...
    assert n_lean - f_lean == sum(1 for c in calls[:f_lean] if c)  # ... unless recomputing: one per graph pass
    assert s_lean < (0.75 if cap is None else 1.0) * s_plain  # with a budget, the 400 samples' activations only
    with torch.no_grad():  # no autograd: nothing to recompute, the field is called plainly
        calls.clear()
        render_images(counting, lambda d: (d + 1) / 2, cams, times, 9, 11,
                      RenderConfig(num_samples=96, recompute_field=True), generator=torch.Generator().manual_seed(5))
        assert calls == [False]


def test_recompute_regions_bound_what_backward_evaluates_at_once():
    """recompute_chunk: backward re-evaluates the field at most that many samples at a time (what bounds the
    recompute's peak), and the result equals the plain render's up to float summation order."""
    field = TinyField()
    cams = cameras_from_spherical(torch.tensor([0.0, 120.0]), 20.0, 2.6, 40.0)
    times = torch.tensor([0.2, 0.7])
    sizes = []

    def counting(x, t):
        sizes.append((torch.is_grad_enabled(), len(x)))
        return field(x, t)

    results = []
    for recompute in (False, True):
        field.zero_grad()
        sizes.clear()
        cfg = RenderConfig(num_samples=96, recompute_field=recompute, recompute_chunk=1000)
        out = render_images(counting, lambda d: (d + 1) / 2, cams, times, 9, 11, cfg,
                            generator=torch.Generator().manual_seed(5))
        n_forward = len(sizes)
        (out["rgb"].square().sum() + out["depth"].sum()).backward()
        results.append((out, [p.grad.clone() for p in field.parameters()], sizes[:n_forward], sizes[n_forward:]))
    (plain, g_plain, fwd_plain, _), (lean, g_lean, fwd_lean, recomputed) = results
    total = sum(n for _, n in fwd_plain)
    assert len(fwd_plain) == 1 and total > 4 * 1000  # several regions
    assert [n for _, n in fwd_lean] == [min(1000, total - i) for i in range(0, total, 1000)]
    assert sorted(n for _, n in recomputed) == sorted(n for _, n in fwd_lean) and all(g for g, _ in recomputed)
    for k in plain:
        torch.testing.assert_close(lean[k], plain[k], rtol=0, atol=1e-6)
    for a, b in zip(g_lean, g_plain):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6 * float(b.abs().max()))
    with pytest.raises(ValueError, match="recompute_chunk"):
        RenderConfig(recompute_chunk=0)
