"""`write_artifact` refuses a camera path that is none of the known ones (`artifacts.TRAJECTORIES`: orbit,
motion_smooth, unknown) before it writes anything; only `render` and `import-videos` used to check it, so any other
writer could record a typo that every manifest reader then shows and pairs by."""

from __future__ import annotations

import pytest
from eval_helpers import make_frames

import evaluation.importer as importer
from evaluation.artifacts import TRAJECTORIES, ArtifactError, read_artifact, write_artifact
from evaluation.render import TRAJECTORIES as RENDER_TRAJECTORIES

SRC = {"kind": "import", "file": "x.mp4", "sha256": "0" * 64}
KNOWN = "give one of orbit, motion_smooth, unknown (unknown: the videos' camera path is not known)"


@pytest.mark.parametrize(("trajectory", "message"), [
    ("orbitt", f"trajectory 'orbitt' is not a known camera path (did you mean 'orbit'?); {KNOWN}"),
    ("spiral", f"trajectory 'spiral' is not a known camera path; {KNOWN}"),
    ("", f"trajectory '' is not a known camera path; {KNOWN}"),
])
def test_an_unknown_trajectory_is_refused_and_nothing_is_written(tmp_path, trajectory, message):
    with pytest.raises(ArtifactError) as err:
        write_artifact(tmp_path / "out", "mav3d", "A panda dancing.", make_frames(2, 16, 16), source=SRC,
                       trajectory=trajectory, fps=15)
    assert str(err.value) == message
    assert not (tmp_path / "out").exists()  # refused before the method folder or a temporary is made


@pytest.mark.parametrize("trajectory", TRAJECTORIES)
def test_every_known_trajectory_is_written_and_read_back(tmp_path, trajectory):
    art = write_artifact(tmp_path, "mav3d", "A panda dancing.", make_frames(2, 16, 16), source=SRC,
                         trajectory=trajectory, fps=15)
    assert read_artifact(art.folder).trajectory == trajectory


def test_one_list_of_camera_paths_for_write_render_and_import():
    # the same objects, not equal copies: a path added in one place is known everywhere
    assert importer.TRAJECTORIES is TRAJECTORIES
    assert set(RENDER_TRAJECTORIES) < set(TRAJECTORIES) and TRAJECTORIES[-1] == "unknown"
    assert importer.trajectory_problem("Orbit") == f"'Orbit' is not a known camera path (did you mean 'orbit'?); {KNOWN}"
