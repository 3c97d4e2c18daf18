"""The daemon with the real pipeline: synthetic scenes → SDK recording → face stage +
bundled ONNX model → tracks → decisions; and the ``liveness daemon`` command itself.

Expected decisions are asserted exactly: a bona fide sequence ends ``live``, a print and a
replay end ``spoof``, each with one event per frame and exactly one decision event.
``LIVENESS_MODEL_PATH`` selects another model, as it does for the CLI.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from models import DEFAULT_MODEL_PATH
from sensors.config import RecordingConfig, create_source
from service.daemon.config import DaemonConfig
from service.daemon.outputs import JsonlOutput, Output
from service.daemon.runner import LivenessDaemon

#: the bundled model, or the one LIVENESS_MODEL_PATH names (as the CLI would use)
MODEL_PATH = Path(os.environ.get("LIVENESS_MODEL_PATH") or DEFAULT_MODEL_PATH)
# The bundled model ships in the repository: its absence is a failure, not a skip.
assert MODEL_PATH.is_file(), f"model missing: {MODEL_PATH}"

N_FRAMES = 24
PROFILE = "d435"
CASES = [("bona_fide", "live"), ("print_flat", "spoof"), ("replay_tablet", "spoof")]


@pytest.fixture(scope="module")
def synthetic_recordings(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    pytest.importorskip("pyrealsense2")
    import synth
    from sensors.recorder import write_recording
    from synth.bundle import scene_to_bundle

    root = tmp_path_factory.mktemp("synth-rec")
    out = {}
    for k, (species, _) in enumerate(CASES):
        scenes = synth.render_sequence(species, PROFILE, N_FRAMES, 3 + k, fps=30)
        bundles = [scene_to_bundle(s, i, 30) for i, s in enumerate(scenes)]
        out[species] = write_recording(root / f"{species}.db3", bundles, fps=30)
    return out


@pytest.fixture(scope="module")
def analyzer() -> Any:
    from service.daemon.analysis import build_pipeline_analyzer

    a = build_pipeline_analyzer(MODEL_PATH)
    yield a
    a.close()


class Decisions(Output):
    name = "decisions"

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def decision(self, event: dict[str, Any]) -> None:
        self.events.append(event)

    def close(self, timeout: float) -> None:
        pass


@pytest.mark.parametrize(("species", "expected"), CASES)
def test_recorded_sequence_ends_with_the_expected_decision(
    synthetic_recordings: dict[str, Path],
    analyzer: Any,
    tmp_path: Path,
    species: str,
    expected: str,
) -> None:
    jsonl = tmp_path / "events.jsonl"
    decisions = Decisions()
    daemon = LivenessDaemon(
        lambda: create_source(RecordingConfig(path=synthetic_recordings[species])),
        analyzer,
        [JsonlOutput(jsonl), decisions],
        DaemonConfig(http_port=None),
    )
    summary = daemon.run()
    events = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert len(events) == N_FRAMES == summary.frames_processed
    assert summary.frames_dropped == 0
    with_faces = [e for e in events if e["faces"]]
    assert len(with_faces) >= N_FRAMES - 2, "the face stage should find the face"
    # The presented face (the largest, listed first) is one track all along; a scene may
    # also show a weak second detection (a holder behind a print), tracked apart.
    assert {e["faces"][0]["track_id"] for e in with_faces} == {1}
    assert events[-1]["faces"][0]["decision"] == expected
    decided = [d["decision"] for d in decisions.events]
    assert decided and set(decided) == {expected}, decided


def test_cli_runs_until_sigterm_and_flushes(tmp_path: Path) -> None:
    """``liveness daemon`` on a looping recording: SIGTERM → exit 0, complete JSONL."""
    pytest.importorskip("pyrealsense2")
    from daemon_testing import marker_bundles

    from sensors.recorder import write_recording

    recording = write_recording(tmp_path / "loop.db3", marker_bundles([0.9] * 10), fps=30)
    jsonl = tmp_path / "events.jsonl"
    cmd = [
        sys.executable,
        "-m",
        "service.cli",
        "daemon",
        "--source",
        f"recording:{recording}",
        "--on-end",
        "reopen",
        "--output",
        f"jsonl:{jsonl}",
        "--port",
        "0",
    ]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if jsonl.exists() and len(jsonl.read_text().splitlines()) >= 15:
                break
            assert proc.poll() is None, proc.communicate()[1]
            time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "stopping: signal SIGTERM" in err
    lines = jsonl.read_text().splitlines()
    assert len(lines) >= 15 and all(json.loads(line)["type"] == "frame" for line in lines)
    assert "preview at http://127.0.0.1:" in err


def test_cli_rejects_bad_source_and_output() -> None:
    from click.testing import CliRunner

    from service.cli import main

    result = CliRunner().invoke(main, ["daemon", "--source", "webcam:0"])
    assert result.exit_code == 2 and "unknown source type 'webcam'" in result.output
    result = CliRunner().invoke(main, ["daemon", "--source", "camera:0", "--output", "kafka:x"])
    assert result.exit_code == 2 and "bad output" in result.output
