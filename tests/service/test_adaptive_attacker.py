"""An attacker who follows the service's capture reasons (benchmarks/real_photos.py
``--adaptive``): what a reason asks for, and that the instrument really moves."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCH))

import real_photos  # noqa: E402

from synth.realcheck import NEAREST_MM, attack_scene, holdout_photos  # noqa: E402


def test_each_capture_reason_is_followed_and_a_judgement_is_not() -> None:
    retry = real_photos.retry
    assert retry("uncertain", ["face_too_small"]) == pytest.approx(0.7)
    assert retry("uncertain", ["out_of_distribution", "face_too_small"]) == pytest.approx(0.7)
    assert retry("uncertain", ["face_too_close"]) == pytest.approx(1.3)
    assert retry("uncertain", ["pose_too_large"]) is None  # a new presentation
    assert retry("no_face", []) is None
    # Nothing to follow: the face was judged, or the reason is about the score.
    assert retry("spoof", []) is False
    assert retry("live", []) is False
    assert retry("uncertain", ["score_near_threshold"]) is False
    assert retry("uncertain", ["components_disagree"]) is False


def test_closer_instrument_shows_a_larger_face_and_stops_at_the_nearest_distance() -> None:
    photo = holdout_photos()[0]

    def ied(distance: float) -> float:
        lm = attack_scene(photo, "replay_tablet", "d435", 1_300_000, distance).landmarks
        return float(np.linalg.norm(lm[1] - lm[0]))

    far, near = ied(1.0), ied(0.7)
    assert near / far == pytest.approx(1 / 0.7, rel=0.1)
    # The drawn distance stops at NEAREST_MM: two requests beyond it render the same scene.
    nearest = attack_scene(photo, "replay_tablet", "d435", 1_300_000, NEAREST_MM / 1e4)
    again = attack_scene(photo, "replay_tablet", "d435", 1_300_000, NEAREST_MM / 2e4)
    assert nearest.info["distance_mm"] == again.info["distance_mm"]
    assert np.array_equal(nearest.rgb, again.rgb)
    assert ied(NEAREST_MM / 1e4) > near


def test_adaptive_run_presents_again_only_as_the_reasons_ask(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    items = real_photos.holdout_items()[:2]
    monkeypatch.setattr(real_photos, "holdout_items", lambda: items)
    out = real_photos.run(real_photos.DEFAULT_MODEL_PATH, modes=("rgb",), attacks=True, adaptive=2)
    first = [r for r in out["rows"] if r["kind"] != "bona_fide"]
    last = out["adaptive"]["rows"]
    assert len(first) == len(last) == 2 * len(real_photos.PHOTO_ATTACKS)
    for a, b in zip(first, last, strict=True):
        assert (a["photo"], a["kind"]) == (b["photo"], b["kind"])
        if real_photos.retry(a["decision"], a["reasons"]) is False:
            assert b["tries"] == 0 and b["decision"] == a["decision"]
        else:
            assert 1 <= b["tries"] <= 2
    assert out["adaptive"]["re_presentations"] == sum(r["tries"] for r in last)
    # These two photographs' scenes include one the face stage refuses at first: the
    # re-presentation branch really runs.
    assert any(r["tries"] for r in last)
    text = real_photos.markdown(out)
    assert "follows the capture reasons" in text
