"""`DamagedManifest` carries what is wrong as fields (the manifest's path, the reason, whether ckpt/last.pt is beside
it), so that each caller words the way on with its own options: `str()` is `fourdfy generate`'s one line (--resume),
unchanged, and a sweep builds its own from the same fields instead of rewriting generate's text."""

from __future__ import annotations

import json
import pickle

import pytest

from pipelines.generate import DamagedManifest, read_manifest


def _damage(run, content: bytes, last: bool):
    run.mkdir(parents=True, exist_ok=True)
    (run / "manifest.json").write_bytes(content)
    if last:
        (run / "ckpt").mkdir(exist_ok=True)
        (run / "ckpt" / "last.pt").write_bytes(b"a checkpoint")  # only its presence decides the way on


@pytest.mark.parametrize("content, reason", [
    (b'{"method": "4dfy", "prompt": "A pan', "not valid JSON: "),  # + json's own words
    (b"\xff\xfe{", "not UTF-8 text"),
    (b"[1, 2]", "a JSON list, not an object"),
    (b'"done"', "a JSON str, not an object"),
])
def test_the_fields_say_which_file_what_is_wrong_and_whether_last_pt_is_there(tmp_path, content, reason):
    if reason == "not valid JSON: ":
        with pytest.raises(json.JSONDecodeError) as parse:
            json.loads(content)
        reason += str(parse.value)
    run = tmp_path / "run"
    for last in (True, False):
        if not last:
            (run / "ckpt" / "last.pt").unlink()
        _damage(run, content, last)
        with pytest.raises(DamagedManifest) as info:
            read_manifest(run)
        err = info.value
        assert (err.path, err.run, err.reason, err.has_last) == (run / "manifest.json", run, reason, last)


def test_str_is_generates_one_line_as_before(tmp_path):
    """The text `fourdfy generate` prints, word for word as it was before the fields."""
    run = tmp_path / "run"
    path = run / "manifest.json"
    _damage(run, b"[]", last=True)
    with pytest.raises(DamagedManifest) as info:
        read_manifest(run)
    assert str(info.value) == (
        f"{path} is damaged (a JSON list, not an object); a run continues from its checkpoints, not its manifest: "
        f"remove {path} and run the command again with --resume (or --auto-resume) to continue from ckpt/last.pt; "
        "the manifest is written again when the run ends (at once if last.pt is the final checkpoint)")
    (run / "ckpt" / "last.pt").unlink()
    with pytest.raises(DamagedManifest) as info:
        read_manifest(run)
    assert str(info.value) == (f"{path} is damaged (a JSON list, not an object); there is no ckpt/last.pt beside it "
                               f"to continue from: move {run} away and train the run again")


def test_another_caller_words_the_way_on_from_the_fields(tmp_path):
    err = DamagedManifest(tmp_path / "run" / "manifest.json", "not UTF-8 text", has_last=True)
    said = err.message(resume_words="do A", retrain_words="do B")
    assert said == (f"{err.path} is damaged (not UTF-8 text); a run continues from its checkpoints, not its manifest: "
                    f"remove {err.path} and do A to continue from ckpt/last.pt; the manifest is written again when "
                    "the run ends (at once if last.pt is the final checkpoint)")
    assert "--resume" in str(err)  # the error itself keeps generate's words
    other = err.reworded("do A", "do B")
    assert isinstance(other, DamagedManifest) and str(other) == said
    assert (other.path, other.reason, other.has_last) == (err.path, err.reason, err.has_last)
    gone = DamagedManifest(tmp_path / "run" / "manifest.json", "not UTF-8 text", has_last=False)
    assert gone.message(retrain_words="do B").endswith(f"move {tmp_path / 'run'} away and do B")


def test_it_pickles_with_its_fields_and_its_words(tmp_path):
    """An exception pickles as cls(*args): with the text as its only arg it could not be rebuilt (a job's error
    crosses processes)."""
    err = DamagedManifest(tmp_path / "manifest.json", "not UTF-8 text", has_last=False).reworded("x", "y")
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is DamagedManifest and str(back) == str(err)
    assert (back.path, back.reason, back.has_last) == (err.path, err.reason, err.has_last)
