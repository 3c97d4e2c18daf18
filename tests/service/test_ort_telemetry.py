"""ONNX Runtime telemetry is turned off before every session the service opens.

ONNX Runtime has no getter for the setting, so the test watches the calls: each kind of
session (the FlexLive model, the face detector, the RGB expert) must be preceded by
``onnxruntime.disable_telemetry_events()``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import onnxruntime as ort
import pytest


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    seen: list[str] = []
    real_session = ort.InferenceSession

    def session(*args: Any, **kwargs: Any) -> Any:
        seen.append("session")
        return real_session(*args, **kwargs)

    monkeypatch.setattr(ort, "disable_telemetry_events", lambda: seen.append("telemetry-off"))
    monkeypatch.setattr(ort, "InferenceSession", session)
    return seen


def _each_session_after_telemetry_off(calls: list[str]) -> None:
    assert "session" in calls
    for i, call in enumerate(calls):
        if call == "session":
            assert "telemetry-off" in calls[:i], calls


def test_the_engine_turns_telemetry_off_before_its_session(
    calls: list[str], test_model_path: Path
) -> None:
    from service.engine import InferenceEngine

    engine = InferenceEngine.load(test_model_path, providers="cpu", intra_op_threads=1)
    engine.close()
    _each_session_after_telemetry_off(calls)


def test_the_face_detector_turns_telemetry_off(calls: list[str]) -> None:
    from service.face.config import FaceStageConfig
    from service.face.detectors.mtcnn import MTCNNDetector

    MTCNNDetector(FaceStageConfig())
    assert calls.count("session") == 3  # P-, R- and O-Net
    _each_session_after_telemetry_off(calls)


def test_the_rgb_expert_turns_telemetry_off(calls: list[str]) -> None:
    from service.rgb_expert import RgbExpert

    RgbExpert.load()
    _each_session_after_telemetry_off(calls)


def test_the_real_call_exists_in_the_installed_onnxruntime() -> None:
    from service.onnx_runtime import disable_telemetry

    assert callable(ort.disable_telemetry_events)
    disable_telemetry()  # the real one, twice: idempotent
    disable_telemetry()


def test_evaluation_sessions_are_made_the_same_way(calls: list[str], test_model_path: Path) -> None:
    """Evaluation and the benchmarks open their sessions through the same factory."""
    from models.evaluate import session

    sess = session(test_model_path, threads=1)
    _each_session_after_telemetry_off(calls)
    assert sess.get_session_options().inter_op_num_threads == 1
    assert sess.get_session_options().intra_op_num_threads == 1
