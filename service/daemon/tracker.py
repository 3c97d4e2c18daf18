"""Per-face tracks across frames, and the temporal decision of each track.

Matching: greedy by IoU (highest first) between this frame's faces and the live tracks;
an unmatched face starts a track, a track unseen for ``max_missed_frames`` ends.

Aggregation: a track keeps, for its last ``window`` *scored* frames (faces with quality
reasons carry no score and do not vote), each frame's score and its margin ``score − t``
over the threshold ``t`` that frame was decided at (it follows the modality subset used, so
it differs from frame to frame). The reported aggregated score is the mean score; the
decision uses the mean margin, so a frame that drops a modality cannot flip the band just
by changing the threshold. With the latest frame's threshold ``t`` and the operating
point's margin ``m``:

- the track is in the live band when the mean margin ≥ m, the spoof band when < −m
  (each edge at most half-way from ``t`` to 1 or 0, so both stay reachable) and below the
  latest frame's spoof point (``spoof_below``, see :mod:`service.pipeline`), so a track is
  never ``spoof`` where a single frame would be ``uncertain``;
- a track becomes ``live`` only after ``min_live_frames`` consecutive frames in the live
  band, ``spoof`` after ``min_spoof_frames`` in the spoof band; until then ``uncertain``;
- hysteresis: a decided track keeps its decision until the score crosses the threshold
  by ``hysteresis`` more the other way (live → below t − m − h, spoof → above t + m + h)
  and stays there for the same number of frames.

So a single good frame never unlocks ``live``, and one bad frame never flips a decided
track. Memory is bounded (``max_tracks`` tracks × ``window`` scores).
"""

from __future__ import annotations

import itertools
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from service.daemon.config import TrackerConfig
from service.daemon.types import Decision, FaceObservation, OperatingPoint


def iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    ix1, iy1 = max(a[0], b[0]), max(a[1], b[1])
    ix2, iy2 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, ix2 - ix1) * max(0.0, iy2 - iy1)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


@dataclass
class Track:
    track_id: int
    box: tuple[float, float, float, float]
    window: int
    scores: deque[float] = field(init=False)
    margins: deque[float] = field(init=False)  # score − the frame's threshold
    decision: Decision = "uncertain"
    frames: int = 0  # frames the face was seen
    missed: int = 0  # consecutive frames not seen
    streak_band: str = ""  # band of the current run of frames
    streak: int = 0
    last: FaceObservation | None = None
    changed: bool = False  # decision changed on the last update
    previous_decision: Decision = "uncertain"

    def __post_init__(self) -> None:
        self.scores = deque(maxlen=self.window)
        self.margins = deque(maxlen=self.window)

    @property
    def score(self) -> float | None:
        """The aggregated score (mean of the window), None before any scored frame."""
        return float(np.mean(self.scores)) if self.scores else None

    @property
    def margin(self) -> float | None:
        """Mean of the window's per-frame margins, None before any scored frame."""
        return float(np.mean(self.margins)) if self.margins else None


@dataclass(frozen=True)
class TrackUpdate:
    """A track as it stands after one frame (what outputs report)."""

    track_id: int
    box: tuple[float, float, float, float]
    score: float | None
    frame_score: float | None
    decision: Decision
    frame_decision: Decision
    changed: bool
    previous_decision: Decision
    frames: int
    reasons: list[str]
    landmarks: list[list[float]] | None


class FaceTracker:
    def __init__(self, config: TrackerConfig, operating_point: OperatingPoint) -> None:
        self.config = config
        self.op = operating_point
        self.tracks: dict[int, Track] = {}
        self._ids = itertools.count(1)

    def reset(self) -> None:
        """Forget every track (the source was reopened: faces may have changed)."""
        self.tracks.clear()

    def _band(
        self,
        score: float | None,
        decision: Decision,
        threshold: float | None = None,
        spoof_below: float | None = None,
    ) -> str:
        if score is None:
            return "none"
        # The frame's own threshold follows the modality subset actually used.
        t = self.op.threshold if threshold is None else threshold
        m, h = self.op.margin, self.config.hysteresis
        h_live = h if decision == "live" else 0.0
        # bands stay reachable when the threshold sits near 0 or 1 (at most half-way out)
        live_cut = min(t + m + (h if decision == "spoof" else 0.0), t + (1.0 - t) / 2.0)
        spoof_cut = max(t - m - h_live, t / 2.0)
        if spoof_below is not None:
            spoof_cut = min(spoof_cut, spoof_below - h_live)
        if score >= live_cut:
            return "live"
        if score < spoof_cut:
            return "spoof"
        return "between"

    def _advance(self, track: Track, obs: FaceObservation) -> None:
        track.box = obs.box
        track.last = obs
        track.frames += 1
        track.missed = 0
        if obs.score is None:
            return  # an unscored frame neither builds nor breaks a streak
        # The frame's own threshold follows the modality subset actually used.
        t = self.op.threshold if obs.threshold is None else float(obs.threshold)
        track.scores.append(float(obs.score))
        track.margins.append(float(obs.score) - t)
        margin = track.margin
        assert margin is not None
        # the windowed margin, placed on the latest frame's scale
        band = self._band(t + margin, track.decision, t, obs.spoof_below)
        if band == track.streak_band:
            track.streak += 1
        else:
            track.streak_band, track.streak = band, 1
        new = track.decision
        if band == "live" and track.streak >= self.config.min_live_frames:
            new = "live"
        elif band == "spoof" and track.streak >= self.config.min_spoof_frames:
            new = "spoof"
        elif band == "between" and track.decision != "uncertain":
            # inside the hysteresis band a decided track keeps its decision
            new = track.decision
        if new != track.decision:
            track.previous_decision, track.decision = track.decision, new
            track.changed = True

    def update(self, faces: list[FaceObservation]) -> list[TrackUpdate]:
        """Match ``faces`` to tracks, update them, end stale ones; one update per face."""
        for track in self.tracks.values():
            track.changed = False
        pairs = sorted(
            (
                (iou(face.box, track.box), fi, tid)
                for fi, face in enumerate(faces)
                for tid, track in self.tracks.items()
            ),
            reverse=True,
        )
        assigned: dict[int, int] = {}
        used_tracks: set[int] = set()
        for overlap, fi, tid in pairs:
            if overlap < self.config.iou_match:
                break
            if fi in assigned or tid in used_tracks:
                continue
            assigned[fi] = tid
            used_tracks.add(tid)
        for fi, face in enumerate(faces):
            if fi not in assigned:
                track = Track(next(self._ids), face.box, self.config.window)
                self.tracks[track.track_id] = track
                assigned[fi] = track.track_id
                used_tracks.add(track.track_id)
            self._advance(self.tracks[assigned[fi]], face)
        for tid in list(self.tracks):
            if tid not in used_tracks:
                self.tracks[tid].missed += 1
                if self.tracks[tid].missed > self.config.max_missed_frames:
                    del self.tracks[tid]
        while len(self.tracks) > self.config.max_tracks:  # drop the stalest
            stalest = max(self.tracks.values(), key=lambda t: (t.missed, -t.track_id))
            del self.tracks[stalest.track_id]
        updates = []
        for fi, face in enumerate(faces):
            kept = self.tracks.get(assigned[fi])
            if kept is None:
                continue
            track = kept
            updates.append(
                TrackUpdate(
                    track_id=track.track_id,
                    box=track.box,
                    score=None if track.score is None else round(track.score, 6),
                    frame_score=face.score,
                    decision=track.decision,
                    frame_decision=face.decision,
                    changed=track.changed,
                    previous_decision=track.previous_decision,
                    frames=track.frames,
                    reasons=list(face.reasons),
                    landmarks=face.landmarks,
                )
            )
        return updates
