"""Evaluation artifacts: eval renders of trained runs, imported videos of other methods, CLIP score.

The artifact contract (one folder per method and prompt: video.mp4, optional depth.mp4,
manifest.json) lives in `evaluation.artifacts`; everything that shows or scores videos reads it.
"""

from .artifacts import Artifact, ArtifactError, find_artifacts, read_artifact, validate_artifact, write_artifact

__all__ = ["Artifact", "ArtifactError", "find_artifacts", "read_artifact", "validate_artifact", "write_artifact"]
