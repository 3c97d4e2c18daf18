"""Synthetic RealSense recordings replay through the real pyrealsense2 pipeline unchanged."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

rs = pytest.importorskip("pyrealsense2", reason="pyrealsense2 (and libusb-1.0-0) not installed")


def test_recording_replays_with_the_same_pixels(tmp_path: Path) -> None:
    from synth import render_sequence
    from synth.recordings import write_recordings

    n = 4
    (path,) = write_recordings(tmp_path, "sr305", n_frames=n, seed=2, species=("bona_fide",))
    truth = json.loads((tmp_path / "recordings.json").read_text())[path.name]
    assert truth["species"] == "bona_fide" and truth["label"] == 1
    assert len(truth["landmarks"]) == n
    expected = render_sequence("bona_fide", "sr305", n, seed=2000)

    cfg = rs.config()
    cfg.enable_device_from_file(str(path), repeat_playback=False)
    pipe = rs.pipeline()
    profile = pipe.start(cfg)
    got = []
    try:
        profile.get_device().as_playback().set_real_time(False)
        scale = profile.get_device().first_depth_sensor().get_depth_scale()
        while True:
            ok, fs = pipe.try_wait_for_frames(2000)
            if not ok:
                break
            got.append(
                (
                    np.asanyarray(fs.get_color_frame().get_data()).copy(),
                    np.asanyarray(fs.get_depth_frame().get_data()).copy(),
                    np.asanyarray(fs.get_infrared_frame().get_data()).copy(),
                )
            )
    finally:
        pipe.stop()
    assert abs(scale - 0.001) < 1e-6
    assert len(got) >= n - 1  # playback may drop the first frame set
    for rgb, depth, ir in got:
        # Sensor noise differs every frame, so RGB identifies the frame.
        match = [s for s in expected if np.array_equal(s.rgb, rgb)]
        assert len(match) == 1, "replayed RGB matches no rendered frame"
        assert np.array_equal(match[0].depth, depth) and np.array_equal(match[0].ir, ir)
        assert depth.any()
