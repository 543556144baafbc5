"""dvc.yaml's import stages: a video added to a method's `videos:` folder makes its stage out of date, so the next
`dvc repro` imports it (before, the stage depended on the importer's code alone and never saw new videos)."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def changed_deps(project: Path, target: str) -> dict:
    """`dvc status` of one stage, run as a user would in `project`: {path: change} of its dependencies that differ
    from dvc.lock."""
    status = json.loads(subprocess.run([sys.executable, "-m", "dvc", "status", target, "--json"], cwd=project,
                                       capture_output=True, text=True, check=True).stdout)
    out = {}
    for entry in status.get(target, []):
        if isinstance(entry, dict):
            out.update(entry.get("changed deps", {}))
    return out


def test_a_video_added_to_a_methods_folder_makes_its_import_stage_out_of_date(tmp_path):
    # the pipeline's definition, lock and the import stage's own dependencies, in a project of their own
    for name in ("dvc.yaml", "dvc.lock", "params.yaml", "evaluation", "data/videos"):
        src, dst = ROOT / name, tmp_path / name
        if src.is_dir():
            shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst)
    (tmp_path / ".dvc").mkdir()
    (tmp_path / ".dvc" / "config").write_text("[core]\n    no_scm = true\n    analytics = false\n")
    folder = "data/videos/mav3d"
    assert folder not in changed_deps(tmp_path, "import@mav3d")  # as dvc.lock recorded it
    (tmp_path / folder / "a_panda_dancing.mp4").write_bytes(b"a new video")
    assert changed_deps(tmp_path, "import@mav3d").get(folder) == "modified"


def test_the_import_stage_records_each_methods_camera_path(tmp_path):
    """`videos:` gives a folder and the camera path its videos show; the stage passes both (it used to label
    every imported video an orbit)."""
    import yaml

    for name in ("dvc.yaml", "params.yaml"):
        shutil.copy2(ROOT / name, tmp_path / name)
    shutil.copytree(ROOT / "evaluation", tmp_path / "evaluation", ignore=shutil.ignore_patterns("__pycache__"))
    params = yaml.safe_load((tmp_path / "params.yaml").read_text())
    assert params["videos"]["mav3d"] == {"folder": "data/videos/mav3d", "trajectory": "orbit"}
    params["videos"]["released"] = {"folder": "data/videos/released", "trajectory": "motion_smooth"}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    (tmp_path / "data" / "videos" / "released").mkdir(parents=True)
    (tmp_path / ".dvc").mkdir()
    (tmp_path / ".dvc" / "config").write_text("[core]\n    no_scm = true\n    analytics = false\n")
    res = subprocess.run([sys.executable, "-m", "dvc", "repro", "--dry", "--single-item", "import@released"],
                         cwd=tmp_path, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    cmd = next(line for line in res.stdout.splitlines() if "import-videos" in line)
    assert "import-videos data/videos/released --method released" in cmd and "--trajectory motion_smooth" in cmd


def test_a_new_export_in_data_study_makes_the_votes_stage_out_of_date(tmp_path):
    """Real votes live in data/study/, the folder the votes stage depends on: exporting a new file there (or
    replacing one) makes the stage out of date, so the next `dvc repro` analyses it (a path named only in
    params.yaml would not be seen)."""
    for name in ("dvc.yaml", "dvc.lock", "params.yaml", "data/study"):
        src, dst = ROOT / name, tmp_path / name
        if src.is_dir():
            shutil.copytree(src, dst)
        else:
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst)
    (tmp_path / ".dvc").mkdir()
    (tmp_path / ".dvc" / "config").write_text("[core]\n    no_scm = true\n    analytics = false\n")
    assert "data/study" not in changed_deps(tmp_path, "votes")  # as dvc.lock recorded it
    (tmp_path / "data/study/votes.csv").write_text("rater_id,question_id\n")
    assert changed_deps(tmp_path, "votes").get("data/study") == "modified"
