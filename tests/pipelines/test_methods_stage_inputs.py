"""The `methods` stage as the gate of everything params.yaml names: the content of the files it names (a design, a
rates CSV, a CLIP checkpoint) recorded so that DVC reruns their readers when they change (DVC tracked only the path,
and tables went stale silently), labels two rows of a table would share, variants no generate block lists, bad
entries of a built-in method under `overrides:` and `videos:` entries, all before anything trains."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pipelines import stages
from userstudy.design import load_design

ROOT = Path(__file__).resolve().parents[2]
MAV3D = {"folder": "data/videos/mav3d", "trajectory": "orbit"}

pytestmark = pytest.mark.usefixtures("registry")  # tests/conftest.py: variants do not outlive a test


def _params(tmp_path, methods=("4dfy",), overrides=None, videos=None, **sections):
    params = {"seed": 0, "profile": "tiny", "generate": {"methods": list(methods), "prompts": ["a_panda_dancing"]},
              "overrides": {**{m: {} for m in methods}, **(overrides or {})},
              "videos": {"mav3d": MAV3D} if videos is None else videos,
              "study": {"design": "userstudy/designs/paper.yaml", "rates": "paper"}, **sections}
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return path


# --- 1. files named in params.yaml, tracked by content

def test_the_digest_of_each_named_file_changes_with_its_content_and_only_then(tmp_path):
    design, rates, ckpt = tmp_path / "mydesign.yaml", tmp_path / "rates.csv", tmp_path / "clip.bin"
    shutil.copy(ROOT / "userstudy/designs/paper.yaml", design)
    rates.write_text("comparison,rate\nmav3d,0.7\n")
    ckpt.write_bytes(b"weights v1")
    params = _params(tmp_path, study={"design": str(design), "rates": str(rates)},
                     clip={"model": "ViT-B-32", "pretrained": str(ckpt)})
    out = stages.write_methods(params, tmp_path / "methods")

    def records():
        return {s: json.loads((out / "files" / f"{s}.json").read_text()) for s in ("design", "votes", "clipscore")}

    first = records()
    import hashlib
    assert first == {"design": {"study.design": {"path": str(design),
                                                 "sha256": hashlib.sha256(design.read_bytes()).hexdigest()}},
                     "votes": {"study.rates": {"path": str(rates),
                                               "sha256": hashlib.sha256(rates.read_bytes()).hexdigest()}},
                     "clipscore": {"clip.pretrained": {"path": str(ckpt),
                                                       "sha256": hashlib.sha256(b"weights v1").hexdigest()}}}
    stamps = {p: p.stat().st_mtime_ns for p in (out / "files").iterdir()}
    stages.write_methods(params, out)  # nothing changed: nothing rewritten, so DVC reruns nothing
    assert records() == first and {p: p.stat().st_mtime_ns for p in (out / "files").iterdir()} == stamps

    design.write_text(design.read_text().replace("label: MAV3D,", "label: MAV3D (ours),"))
    rates.write_text("comparison,rate\nmav3d,0.8\n")
    stages.write_methods(params, out)
    second = records()
    assert second["design"] != first["design"] and second["votes"] != first["votes"]
    assert second["clipscore"] == first["clipscore"]  # one file's change reruns its readers only
    ckpt.write_bytes(b"weights v2")
    stages.write_methods(params, out)
    assert records()["clipscore"] != first["clipscore"] and records()["design"] == second["design"]


def test_values_that_name_no_file_record_nothing_and_a_model_folder_is_tracked_by_its_files(tmp_path):
    folder = tmp_path / "clipdir"
    folder.mkdir()
    (folder / "open_clip_config.json").write_text("{}")
    params = _params(tmp_path, clip={"model": f"local-dir:{folder}", "pretrained": "openai"})
    out = stages.write_methods(params, tmp_path / "methods")
    record = json.loads((out / "files" / "clipscore.json").read_text())
    assert list(record) == ["clip.model"]  # "openai" is a tag, "paper" a rate: no file
    assert json.loads((out / "files" / "votes.json").read_text()) == {}
    (folder / "open_clip_model.safetensors").write_bytes(b"w")
    stages.write_methods(params, out)
    assert json.loads((out / "files" / "clipscore.json").read_text()) != record


def test_each_reader_of_a_named_file_depends_on_its_digest_in_dvc_yaml():
    """FILE_PARAMS' stages are dvc.yaml's: each depends on its digest file and tracks the keys as parameters."""
    dvc = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    assert dvc["methods"].get("always_changed") is True  # the digests are written on every repro
    for stage, keys in stages.FILE_PARAMS.items():
        assert f"build/methods/files/{stage}.json" in dvc[stage]["deps"], stage
        for key in keys:
            assert any(key == p or key.startswith(f"{p}.") for p in dvc[stage]["params"]), (stage, key)


@pytest.mark.slow
def test_editing_the_design_file_params_yaml_names_makes_the_design_stage_out_of_date(tmp_path):
    """The reviewer's repro: a design of one's own, `dvc repro -s methods && dvc repro -s design`, a label edited in
    the file; `dvc status design` said it was up to date."""
    for name in ("dvc.yaml", "params.yaml", "pipelines/stages.py", "userstudy/designs", "data/videos/mav3d"):
        src, dst = ROOT / name, tmp_path / name
        dst.parent.mkdir(parents=True, exist_ok=True)
        (shutil.copytree if src.is_dir() else shutil.copy2)(src, dst)
    (tmp_path / ".dvc").mkdir()
    (tmp_path / ".dvc" / "config").write_text("[core]\n    no_scm = true\n    analytics = false\n")
    shutil.copy2(ROOT / "userstudy/designs/paper.yaml", tmp_path / "data/mydesign.yaml")
    params = yaml.safe_load((tmp_path / "params.yaml").read_text())
    params["study"]["design"] = "data/mydesign.yaml"
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    # the stages run `python -m pipelines.stages` from the environment, with this repository's packages
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "PYTHONPATH": str(ROOT)}

    def dvc(*args):
        res = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=tmp_path, env=env, capture_output=True,
                             text=True)
        assert res.returncode == 0, res.stdout + res.stderr
        return res.stdout

    def design_changes():
        status = json.loads(dvc("status", "design", "--json"))
        return {k: v for e in status.get("design", []) if isinstance(e, dict)
                for k, v in e.get("changed deps", {}).items()}

    dvc("repro", "-s", "methods")
    dvc("repro", "-s", "design")
    assert design_changes() == {}
    mine = tmp_path / "data/mydesign.yaml"
    mine.write_text(mine.read_text().replace("label: MAV3D,", "label: MAV3D (videos),"))
    dvc("repro", "-s", "methods")  # runs on every repro, before the design stage
    assert design_changes() == {"build/methods/files/design.json": "modified"}
    dvc("repro", "-s", "design")
    assert "MAV3D (videos)" in (tmp_path / "build/design.yaml").read_text()


# --- 2. a label two rows of one table would share

@pytest.mark.parametrize("overrides, first, second", [
    # two variants with one label
    ({"v1": {"base": "4dfy", "label": "4D-fy, v"}, "v2": {"base": "4dfy", "label": "4D-fy, v"}},
     "'v1' (overrides.v1.label)", "'v2' (overrides.v2.label)"),
    # a variant taking a built-in's label (the design's)
    ({"v1": {"base": "4dfy", "label": "4D-fy"}, "v2": {"base": "4dfy", "label": "other"}},
     "'4dfy' (methods.4dfy.label of userstudy/designs/paper.yaml)", "'v1' (overrides.v1.label)"),
])
def test_a_label_another_row_of_the_table_has_is_refused_naming_both(tmp_path, methods_stage_error, overrides, first,
                                                                     second):
    params = _params(tmp_path, methods=("4dfy", "v1", "v2"), overrides=overrides)
    label = overrides["v1"]["label"]
    line = methods_stage_error(params, tmp_path / "methods")
    # the check of every design reader (userstudy.design.check_table_labels), told where each label comes from
    assert line == f"error: {params}: userstudy/designs/paper.yaml: table2 would have two rows labelled {label!r}: " \
                   f"{first} and {second}; give one of them another label: under overrides: in params.yaml " \
                   "(overrides.<name>.label)", line
    # the design stage refuses it as well (a design stage run on its own)
    with pytest.raises(ValueError, match=f"two rows labelled {label!r}"):
        stages.write_design(params, tmp_path / "design.yaml")


def test_the_same_label_in_two_tables_and_a_method_in_several_sections_are_allowed(tmp_path):
    # single_grid is a row of table3 only; a variant labelled as it is added to table2
    params = _params(tmp_path, methods=("4dfy", "v1"),
                     overrides={"v1": {"base": "4dfy", "label": "w/ single hash grid"}})
    out = stages.write_methods(params, tmp_path / "methods")
    design = stages.write_design(params, tmp_path / "design.yaml", out / "labels.json")
    assert "w/ single hash grid" in design.read_text()


def test_a_design_of_ones_own_with_bare_labels_is_extended_and_relabelled(tmp_path):
    """A design may give a method a bare label (`mav3d: Theirs`); the stages read such an entry as a mapping (an
    AttributeError, a traceback)."""
    own = tmp_path / "own.yaml"
    own.write_text("primary: 4dfy\nmethods: {mav3d: Theirs, wo_3d: Mine}\ncomparisons: [mav3d, wo_3d]\n")
    params = _params(tmp_path, methods=("4dfy", "wo_3d", "v1"), study={"design": str(own)},
                     overrides={"v1": {"base": "4dfy", "label": "Variant"}, "wo_3d": {"label": "Mine, relabelled"}})
    out = stages.write_methods(params, tmp_path / "methods")
    design = load_design(stages.write_design(params, tmp_path / "design.yaml", out / "labels.json"))
    assert [design.label(m) for m in design.comparisons] == ["Theirs", "Mine, relabelled", "Variant"]


def test_the_design_stage_names_a_mistake_of_the_design_file(tmp_path):
    """Refused by the design stage, naming params.yaml and the file, not by every reader of build/design.yaml."""
    own = tmp_path / "own.yaml"
    own.write_text("primary: 4dfy\ncomparisons: [mav3d]\ncolour: red\n")
    params = _params(tmp_path, study={"design": str(own)})
    with pytest.raises(ValueError) as info:
        stages.write_design(params, tmp_path / "design.yaml")
    assert str(info.value).startswith(f"{params}: {own}: unknown key(s) colour"), info.value
    assert not (tmp_path / "design.yaml").exists()


# --- 3. a variant no generate block lists

def test_a_variant_no_generate_block_lists_gets_a_note_and_its_listed_chain_none(tmp_path, capsys):
    params = _params(tmp_path, methods=("4dfy", "v2"),
                     overrides={"v1": {"base": "4dfy"}, "v2": {"base": "v1"}, "lost": {"base": "4dfy"}})
    out = stages.write_methods(params, tmp_path / "methods")
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["note: overrides: defines the variant 'lost', which no generate block lists, so it is neither "
                   "trained nor reported; add it to generate.methods (or generate.extra.methods) to train it, or "
                   "remove the entry"], err
    assert sorted(p.stem for p in (out / "config").iterdir()) == ["4dfy", "v2"]  # a note, not an error


# --- 4. entries of built-in methods and variants' values, named

@pytest.mark.parametrize("overrides, says", [
    ({"single_grid": {"weights.sds_vide": 0.3}}, "overrides.single_grid: unknown config key 'weights.sds_vide'"),
    ({"single_grid": {"weights.sds": -1}}, "overrides.single_grid: weights.sds must be >= 0"),
    ({"single_grid": {"method": "wo_hybrid"}}, "overrides.single_grid: "),
    ({"v1": {"base": "4dfy", "stages.stage3.p_3d": 1.5}},
     "overrides.v1: stages.stage3.p_3d is a probability, from 0 to 1; got 1.5"),
])
def test_a_bad_entry_of_a_listed_method_is_named_before_anything_trains(tmp_path, methods_stage_error, overrides, says):
    methods = ("4dfy", *overrides)
    line = methods_stage_error(_params(tmp_path, methods=methods, overrides=overrides), tmp_path / "methods")
    assert says in line, line
    if "method" in overrides.get("single_grid", {}):
        assert "'method' cannot be set" in line, line


# --- 5. videos entries

def test_a_videos_folder_that_does_not_exist_and_an_unknown_trajectory_are_named(tmp_path, methods_stage_error):
    videos = {"mav3d": MAV3D, "typo": {"folder": "data/videos/mav3dd", "trajectory": "orbit"},
              "released": {"folder": str(tmp_path), "trajectory": "motion_smoth"},
              "file": {"folder": str(_params(tmp_path)), "trajectory": "unknown"}}
    line = methods_stage_error(_params(tmp_path, videos=videos), tmp_path / "methods")
    assert "videos.typo.folder: data/videos/mav3dd does not exist; give the folder of its <prompt slug>.mp4 " \
           "files" in line, line
    assert "videos.released.trajectory: 'motion_smoth' is not a known camera path (did you mean 'motion_smooth'?); " \
           "give one of orbit, motion_smooth, unknown" in line, line
    assert "is a file, not a folder" in line and "videos.mav3d" not in line, line
