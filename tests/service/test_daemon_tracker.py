"""Per-face tracks and temporal aggregation: IoU matching, windowed score, hysteresis."""

from __future__ import annotations

from service.daemon.config import TrackerConfig
from service.daemon.tracker import FaceTracker, iou
from service.daemon.types import FaceObservation, OperatingPoint

OP = OperatingPoint("test", threshold=0.5, margin=0.05)


def face(x: float, score: float | None, y: float = 10.0, reasons: list[str] | None = None):
    decision = "uncertain" if score is None else ("live" if score >= 0.55 else "spoof")
    return FaceObservation((x, y, x + 50, y + 50), score, decision, reasons or [])


def run(tracker: FaceTracker, scores: list[float | None], x: float = 10.0):
    return [tracker.update([face(x, s)])[0] for s in scores]


def test_iou() -> None:
    assert iou((0, 0, 10, 10), (0, 0, 10, 10)) == 1.0
    assert iou((0, 0, 10, 10), (20, 20, 30, 30)) == 0.0
    assert abs(iou((0, 0, 10, 10), (5, 0, 15, 10)) - 1 / 3) < 1e-9


def test_live_only_after_enough_consistent_frames() -> None:
    tracker = FaceTracker(TrackerConfig(min_live_frames=5, window=5), OP)
    updates = run(tracker, [0.9] * 6)
    assert [u.decision for u in updates] == ["uncertain"] * 4 + ["live", "live"]
    assert [u.changed for u in updates] == [False] * 4 + [True, False]
    assert updates[-1].previous_decision == "uncertain"
    assert len({u.track_id for u in updates}) == 1


def test_spoof_is_called_faster_than_live() -> None:
    tracker = FaceTracker(TrackerConfig(min_live_frames=10, min_spoof_frames=3), OP)
    updates = run(tracker, [0.1] * 3)
    assert updates[-1].decision == "spoof" and updates[-1].changed


def test_one_good_frame_does_not_unlock_live_and_one_bad_does_not_flip_it() -> None:
    tracker = FaceTracker(TrackerConfig(min_live_frames=4, min_spoof_frames=3, window=8), OP)
    # alternating scores average into the uncertain band: never live
    updates = run(tracker, [0.9, 0.1] * 6)
    assert {u.decision for u in updates} <= {"uncertain", "spoof"}
    assert "live" not in {u.decision for u in updates}

    tracker = FaceTracker(TrackerConfig(min_live_frames=4, min_spoof_frames=3, window=8), OP)
    updates = run(tracker, [0.9] * 8 + [0.0] + [0.9] * 3)
    assert updates[7].decision == "live"
    assert all(u.decision == "live" for u in updates[7:])


def test_hysteresis_needs_a_clear_crossing_to_change_a_decided_track() -> None:
    config = TrackerConfig(min_live_frames=3, min_spoof_frames=3, window=1, hysteresis=0.1)
    tracker = FaceTracker(config, OP)
    run(tracker, [0.9] * 3)
    assert tracker.tracks[1].decision == "live"
    # 0.42 is in the spoof band for an undecided track (< 0.45) but not below 0.35
    assert run(tracker, [0.42] * 10)[-1].decision == "live"
    updates = run(tracker, [0.3] * 3)
    assert updates[-1].decision == "spoof" and updates[-1].changed
    assert updates[-1].previous_decision == "live"


def test_unscored_frames_neither_build_nor_break_a_streak() -> None:
    tracker = FaceTracker(TrackerConfig(min_live_frames=3, window=3), OP)
    updates = run(tracker, [0.9, None, 0.9, None, 0.9])
    assert updates[-1].decision == "live"
    assert updates[1].frame_score is None and updates[1].score is not None


def test_two_faces_two_tracks_and_stale_tracks_end() -> None:
    tracker = FaceTracker(
        TrackerConfig(min_live_frames=2, min_spoof_frames=2, max_missed_frames=2), OP
    )
    for _ in range(2):
        updates = tracker.update([face(10, 0.9), face(300, 0.1)])
    assert {u.track_id: u.decision for u in updates} == {1: "live", 2: "spoof"}
    # the faces move a little: same tracks
    updates = tracker.update([face(14, 0.9), face(305, 0.1)])
    assert [u.track_id for u in updates] == [1, 2]
    for _ in range(3):
        tracker.update([face(16, 0.9)])
    assert list(tracker.tracks) == [1]
    # a face far from every track starts a new one
    assert tracker.update([face(500, 0.9, y=300)])[0].track_id == 3


def test_track_count_is_bounded() -> None:
    tracker = FaceTracker(TrackerConfig(max_tracks=3, max_missed_frames=100), OP)
    for i in range(10):
        tracker.update([face(i * 100.0, 0.9, y=i * 100.0)])
    assert len(tracker.tracks) == 3


def test_the_frames_own_threshold_decides() -> None:
    # A score of 0.7 is live at the global 0.5 but spoof at a subset threshold of 0.9.
    tracker = FaceTracker(TrackerConfig(min_live_frames=3, min_spoof_frames=3), OP)
    obs = [FaceObservation((10, 10, 60, 60), 0.7, "spoof", threshold=0.9) for _ in range(3)]
    assert [tracker.update([o])[0].decision for o in obs][-1] == "spoof"
    tracker = FaceTracker(TrackerConfig(min_live_frames=3, min_spoof_frames=3), OP)
    assert run(tracker, [0.7] * 3)[-1].decision == "live"


def test_frames_with_different_subset_thresholds_are_compared_by_margin() -> None:
    # Every frame is 0.1 above its own threshold (depth 0.69, ir 0.34): clearly live. The
    # mean score (0.615) would sit in the spoof band of a depth frame and the live band of
    # an ir frame, flipping the streak each frame and never deciding.
    tracker = FaceTracker(TrackerConfig(min_live_frames=3, min_spoof_frames=3, window=8), OP)
    obs = [
        FaceObservation((10, 10, 60, 60), t + 0.1, "live", threshold=t) for t in [0.69, 0.34] * 4
    ]
    decisions = [tracker.update([o])[0].decision for o in obs]
    assert decisions == ["uncertain"] * 2 + ["live"] * 6


def test_a_track_is_spoof_only_below_the_frames_spoof_point() -> None:
    # 0.3 is below t − m = 0.45 but above the frame's spoof point 0.2: each frame is
    # uncertain, and so is the track; below the spoof point it is spoof.
    tracker = FaceTracker(TrackerConfig(min_live_frames=3, min_spoof_frames=3), OP)
    obs = [FaceObservation((10, 10, 60, 60), 0.3, "uncertain", spoof_below=0.2)] * 5
    assert {tracker.update([o])[0].decision for o in obs} == {"uncertain"}
    tracker = FaceTracker(TrackerConfig(min_live_frames=3, min_spoof_frames=3), OP)
    obs = [FaceObservation((10, 10, 60, 60), 0.1, "spoof", spoof_below=0.2)] * 3
    assert [tracker.update([o])[0].decision for o in obs][-1] == "spoof"
