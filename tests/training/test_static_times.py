"""The time a static (3D or IMG) update renders at: t = 0 in stages 1-2, one of the clip's frame times in stage 3.

In stage 3 the release renders a static update at a frame time of a clip (`dynamic_time: frame`), so that the
hybrid SDS supervises the scene at every moment, not only at t = 0. A trainer that kept t = 0 there would pass the
other trainer tests, which look only at which grids move.
"""

import torch

from method.training.trainer import Trainer

from oracle_setup import oracle_priors, small_oracle_config


def _render_times(tr: Trainer, stage_index: int, steps: int) -> list[tuple[str, torch.Tensor]]:
    """(update, times) of each render the training steps make."""
    seen: list[torch.Tensor] = []
    render = tr.render

    def spy(cams, times, *args, **kwargs):
        seen.append(times.detach().clone())
        return render(cams, times, *args, **kwargs)

    tr.render = spy
    tr._build_optimizer(stage_index)
    out = []
    for step in range(steps):
        before = len(seen)
        rec = tr.train_step(stage_index, step)
        assert len(seen) == before + 1, "one render per update"
        out.append((rec["update"], seen[-1]))
    return out


def test_stage_3_static_updates_render_at_a_frame_time_shared_by_their_views(tmp_path):
    cfg = small_oracle_config()
    assert cfg.stages[2].dynamic_time == "frame" and cfg.stages[0].dynamic_time == "zero"
    tr = Trainer(cfg, "blobs", tmp_path, priors=oracle_priors(), progress=False)
    records = _render_times(tr, 2, 40)
    static = [t for u, t in records if u in ("3d", "img")]
    assert len(static) >= 10, [u for u, _ in records]
    multiview = [t for u, t in records if u == "3d"]
    assert multiview and all(t.numel() == 4 for t in multiview)
    for t in static:
        assert torch.all(t == t[0]), t  # the views of one update share one time
        assert 0.0 <= float(t[0]) < 1.0
    firsts = torch.stack([t[0] for t in static])
    # frame times t0 + k/16 spread over the whole clip: not t = 0, and in at least three of its four quarters
    assert float(firsts.max()) > 0.0
    assert len(set((firsts * 4).floor().long().tolist())) >= 3, firsts
    # video updates render a whole clip: 16 evenly spaced times, 1/16 apart
    videos = [t for u, t in records if u == "video"]
    assert videos
    for t in videos:
        gaps = t[1:] - t[:-1]
        assert torch.allclose(gaps, torch.full_like(gaps, 1 / cfg.render.video_frames), atol=1e-6)


def test_stages_1_and_2_render_static_updates_at_time_zero(tmp_path):
    cfg = small_oracle_config()
    tr = Trainer(cfg, "blobs", tmp_path, priors=oracle_priors(), progress=False)
    for stage_index in (0, 1):
        records = _render_times(tr, stage_index, 6)
        assert records
        for update, t in records:
            assert update in ("3d", "img")
            assert torch.all(t == 0.0), (stage_index, update, t)
