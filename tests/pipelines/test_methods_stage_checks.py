"""The `methods` stage's checks of a method named in `videos:` and a generate block, and of a videos-only plug-in
that params.yaml does not give videos: the first was trained and imported (clipscore then failed after all the
training), the second left out of labels.json and the design without a word."""

import json

import pytest
import yaml

from pipelines import stages


def _params(tmp_path, methods, extra=(), videos=None):
    videos = {"mav3d": {"folder": "data/videos/mav3d", "trajectory": "orbit"}} if videos is None else videos
    params = {"seed": 0, "profile": "tiny",
              "generate": {"methods": list(methods), "prompts": ["a_panda_dancing"],
                           "extra": {"methods": list(extra), "prompts": ["a_cat_singing"] if extra else []}},
              "videos": videos,
              "overrides": {str(m): {} for m in [*methods, *extra]}}
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


def _run(params, out):
    with pytest.raises(SystemExit) as exit_:
        stages.main(["methods", "--params", str(params), "--out", str(out)])
    return exit_.value.code


@pytest.mark.parametrize("block", ["methods", "extra"])
def test_a_trained_method_also_under_videos_is_refused_naming_it(tmp_path, capsys, block):
    videos = {"mav3d": {"folder": "data/videos/mav3d", "trajectory": "orbit"},
              "wo_hybrid": {"folder": "data/videos/wo_hybrid", "trajectory": "orbit"}}
    methods, extra = (["4dfy", "wo_hybrid"], []) if block == "methods" else (["4dfy"], ["wo_hybrid"])
    params = _params(tmp_path, methods, extra, videos=videos)
    code = _run(params, tmp_path / "methods")
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("error: "), err
    key = "generate.methods" if block == "methods" else "generate.extra.methods"
    assert f"method 'wo_hybrid' is both in {key} (trained) and under `videos:` (imported), which gives it two " \
           f"artifacts per prompt; keep it in one of the two places: remove it from {key} to score its imported " \
           "videos, or remove its `videos:` entry to train it" in err[0], err[0]
    assert "'4dfy'" not in err[0]
    assert not (tmp_path / "methods").exists()  # refused before anything is written


def test_a_videos_name_in_a_generate_block_is_named_as_videos_only_not_unknown(tmp_path, capsys):
    videos = {"mav3d": {"folder": "data/videos/mav3d", "trajectory": "orbit"},
              "myvid": {"folder": "data/videos/myvid", "trajectory": "orbit"}}
    params = _params(tmp_path, ["4dfy", "myvid"], videos=videos)
    code = _run(params, tmp_path / "methods")
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    assert "method 'myvid' is a `videos:` method (videos only) and cannot be trained: remove it from " \
           "generate.methods" in err[0], err[0]
    assert "unknown method" not in err[0] and "did you mean" not in err[0] and "known methods" not in err[0]


def test_a_videos_only_plugin_without_videos_gets_a_note_and_the_stage_still_writes(tmp_path, capsys, registry):
    from baselines import Method, register

    register(Method("vidplug", "a baseline we only have videos of", trainable=False,
                    source="entry point 'vidplug' of vidplug-pkg", label="VidPlug"))
    params = _params(tmp_path, ["4dfy"])
    out = stages.write_methods(params, tmp_path / "methods")
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("note: plug-in method 'vidplug' (videos only) has no entry under "
                                               "`videos:`"), err
    assert "add `vidplug: {folder: DIR, trajectory: ...}` under `videos:`" in err[0]
    assert "vidplug" not in json.loads((out / "labels.json").read_text())

    # given under videos:, it is included and no note is printed; built-in MAV3D never gets one
    raw = yaml.safe_load(params.read_text())
    raw["videos"]["vidplug"] = {"folder": str(tmp_path), "trajectory": "orbit"}  # an existing folder
    params.write_text(yaml.safe_dump(raw))
    stages.write_methods(params, out)
    assert capsys.readouterr().err == ""
    assert json.loads((out / "labels.json").read_text())["vidplug"] == "VidPlug"
