"""Settings: LIVENESS_ prefix, unknown keys rejected, readable errors, docs in sync."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from service.settings import Settings, SettingsError, load_settings, settings_markdown

DOCS = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for key in list(os.environ):
        if key.upper().startswith("LIVENESS_"):
            monkeypatch.delenv(key)


def test_env_prefix_and_nested_face_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIVENESS_PORT", "9001")
    monkeypatch.setenv("LIVENESS_MAX_UPLOAD_BYTES", "2048")
    monkeypatch.setenv("LIVENESS_PROVIDERS", "cpu")
    monkeypatch.setenv("LIVENESS_FACE__MIN_FACE_PX", "64")
    s = load_settings(host="0.0.0.0")
    assert (s.port, s.max_upload_bytes, s.providers, s.host) == (9001, 2048, "cpu", "0.0.0.0")
    assert s.face.min_face_px == 64
    assert s.store_images is False


def test_unknown_env_variable_is_rejected_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIVENESS_MAX_UPLOAD_MB", "10")
    with pytest.raises(SettingsError, match="LIVENESS_MAX_UPLOAD_MB"):
        load_settings()


def test_unknown_keyword_is_rejected() -> None:
    with pytest.raises(SettingsError, match="colour"):
        load_settings(colour="blue")
    with pytest.raises(ValidationError, match="extra"):
        Settings(colour="blue")  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("env", "value", "needle"),
    [
        ("LIVENESS_PORT", "eighty", "LIVENESS_PORT"),
        ("LIVENESS_PORT", "70000", "less than or equal to 65535"),
        ("LIVENESS_PROVIDERS", "tpu", "'auto', 'cpu' or 'cuda'"),
        ("LIVENESS_STORE_IMAGES", "true", "LIVENESS_STORE_IMAGES"),
        ("LIVENESS_FACE__MIN_FACE_PX", "2", "LIVENESS_FACE__MIN_FACE_PX"),
        ("LIVENESS_UNCERTAIN_MARGIN", "0.7", "LIVENESS_UNCERTAIN_MARGIN"),
    ],
)
def test_bad_value_gives_a_readable_error(
    monkeypatch: pytest.MonkeyPatch, env: str, value: str, needle: str
) -> None:
    monkeypatch.setenv(env, value)
    with pytest.raises(SettingsError) as info:
        load_settings()
    message = str(info.value)
    assert needle in message
    assert "Traceback" not in message
    assert message.startswith("invalid settings:")


def test_configuration_docs_list_every_setting() -> None:
    text = DOCS.read_text()
    for name in Settings.model_fields:
        assert f"LIVENESS_{name.upper()}" in text, name
    # Every table (the service's and the nested face stage's) is generated; regenerate
    # with `python -m service.settings`.
    rows = [line for line in settings_markdown().splitlines() if line.startswith("| `")]
    assert any(r.startswith("| `LIVENESS_FACE__") for r in rows)
    for line in rows:
        assert line in text, f"docs/configuration.md is stale: {line[:60]}"


def test_analysis_slots_default_to_cores_per_inference_thread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from service.settings import analysis_slots

    monkeypatch.setattr("os.sched_getaffinity", lambda _pid: set(range(8)))
    assert analysis_slots(Settings(intra_op_threads=2)) == 4
    assert analysis_slots(Settings(intra_op_threads=1)) == 8
    assert analysis_slots(Settings(intra_op_threads=16)) == 1
    assert analysis_slots(Settings(intra_op_threads=2, max_concurrent_requests=3)) == 3
    monkeypatch.setattr("os.sched_getaffinity", lambda _pid: {0, 1})
    assert analysis_slots(Settings()) == 1  # 2 cores, 2 threads per analysis


def test_every_reason_code_is_documented() -> None:
    """The API reference lists every code a client can see (service.decision.Reason)."""
    from service.decision import Reason

    text = (Path(__file__).resolve().parents[2] / "docs" / "api.md").read_text()
    table = text[text.index("### Reason codes") : text.index("## Errors")]
    missing = [r.value for r in Reason if f"`{r.value}`" not in table]
    assert not missing, missing


def test_no_liveness_variable_is_silently_ignored() -> None:
    """No prefix is reserved for another component: a daemon-looking variable that nothing
    reads is refused like any other unknown name."""
    from service.settings import unknown_env_keys

    env = {"LIVENESS_DAEMON_PORT": "1", "LIVENESS_PORT": "8000", "OTHER": "x"}
    assert unknown_env_keys(env) == ["LIVENESS_DAEMON_PORT"]
