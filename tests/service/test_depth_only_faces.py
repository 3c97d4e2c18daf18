"""A face that only the depth map shows is never decided live.

When colour was usable and the face detector found no face in it, the depth-assisted
detector's head-sized blob may be a small print or screen held up, the back of a head or
an object: nothing confirms a live face, so a live score becomes ``uncertain``
(``face_only_in_depth``); an accusation stands. Without colour (depth and IR cameras) the
depth detector's faces are decided as usual.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from models import DEFAULT_MODEL_PATH
from service.engine import Scored
from service.expert_eval import SEED_BASE, real_photos
from service.oneshot import LocalScorer
from service.settings import Settings
from synth import render_scene
from synth.bundle import scene_to_bundle
from synth.realcheck import attack_scene


@pytest.fixture(scope="module")
def pipeline() -> Any:
    return LocalScorer(Settings(model_path=DEFAULT_MODEL_PATH, max_faces=1)).pipeline


def _small_print() -> Any:
    """A 4×6-inch curved print of a held-out real person, held up far from the camera: its
    face is too small for the detector, the sheet is a head-sized blob in depth."""
    for i, photo in enumerate(real_photos("test")):
        if photo.name == "029348":
            scene = attack_scene(photo, "print_curved", "d435", SEED_BASE["test"] + i)
            return scene_to_bundle(scene)
    raise AssertionError("held-out photograph 029348 is missing")


def _scoring(score: float) -> Any:
    """An engine.score stand-in: every face gets ``score``."""

    def fake(crops: Any) -> list[Scored]:
        return [Scored(score) for _ in crops]

    return fake


@pytest.mark.parametrize(("score", "decision"), [(0.999, "uncertain"), (1e-5, "spoof")])
def test_a_face_only_depth_shows_is_never_live(
    pipeline: Any, monkeypatch: pytest.MonkeyPatch, score: float, decision: str
) -> None:
    bundle = _small_print()
    real = pipeline.analyze(bundle, cropped=False)
    assert real.detector == "depth" and "rgb" in real.modalities_used
    assert real.faces and real.faces[0].decision != "live", real.faces
    monkeypatch.setattr(pipeline.engine, "score", _scoring(score))
    face = pipeline.analyze(bundle, cropped=False).faces[0]
    assert face.decision == decision, face
    assert ("face_only_in_depth" in face.reasons) == (decision == "uncertain"), face


def test_without_colour_the_depth_detector_decides_as_usual(
    pipeline: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    live = scene_to_bundle(render_scene("bona_fide", "d435", 3_000_000_011, split="test"))
    dark = dataclasses.replace(live, rgb=None, ir=None)
    monkeypatch.setattr(pipeline.engine, "score", _scoring(0.999))
    analysis = pipeline.analyze(dark, cropped=False)
    assert analysis.detector == "depth" and analysis.modalities_used == ["depth"]
    face = analysis.faces[0]
    assert "face_only_in_depth" not in face.reasons, face
    assert face.decision == "live", face
