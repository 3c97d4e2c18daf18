"""The ``flexlive`` Python API: the API's answer for the same capture, from paths, bytes or
arrays; errors as ``InvalidInputError`` naming the field; settings as the server's; and
the Python examples of the docs run as written."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np
import pytest

import flexlive
from flexlive import Analyzer, InvalidInputError, SettingsError
from models import DEFAULT_MODEL_PATH
from service.api import create_app
from service.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
PORTRAITS = [ROOT / "synth" / "assets" / "holdout" / f"{n}.jpg" for n in ("004812", "014852")]
LIVE_T1 = ROOT / "tests" / "fixtures" / "minifasnet_samples" / "live_T1.jpg"
VOLATILE = ("request_id", "timings_ms")


@pytest.fixture(scope="module", autouse=True)
def _no_liveness_env() -> Iterator[None]:
    """The Analyzer reads LIVENESS_* as the server does; the server here uses defaults."""
    saved = {k: v for k, v in os.environ.items() if k.upper().startswith("LIVENESS_")}
    for k in saved:
        del os.environ[k]
    yield
    os.environ.update(saved)


@pytest.fixture(scope="module")
def api(live_server: Any) -> Iterator[httpx.Client]:
    settings = Settings(model_path=DEFAULT_MODEL_PATH)
    with live_server(create_app(settings)) as url, httpx.Client(base_url=url, timeout=60) as c:
        for _ in range(600):
            if c.get("/readyz").status_code == 200:
                break
            time.sleep(0.05)
        yield c


@pytest.fixture(scope="module")
def analyzer() -> Iterator[Analyzer]:
    with Analyzer() as a:
        yield a


def _stable(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k not in VOLATILE}


def _rgb(path: Path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


@pytest.mark.parametrize("photo", [*PORTRAITS, LIVE_T1], ids=lambda p: p.stem)
def test_analyze_path_is_the_api_answer(analyzer: Analyzer, api: httpx.Client, photo: Path) -> None:
    result = analyzer.analyze(rgb=photo)
    r = api.post("/liveness", files={"rgb": (photo.name, photo.read_bytes())})
    assert r.status_code == 200, r.text
    assert _stable(result) == _stable(r.json())
    assert set(result) == set(r.json())
    # Real live people, full frames: a face found, scored and decided.
    assert result["faces"] and all(f["score"] is not None for f in result["faces"])


def test_path_bytes_and_array_inputs_agree(analyzer: Analyzer) -> None:
    photo = PORTRAITS[0]
    by_path = analyzer.analyze(rgb=str(photo))
    by_bytes = analyzer.analyze(rgb=photo.read_bytes())
    by_array = analyzer.analyze(rgb=_rgb(photo))  # RGB order, decoded the same way
    assert _stable(by_path) == _stable(by_bytes)
    assert [f["decision"] for f in by_array["faces"]] == ["live"]
    assert _stable(by_array) == _stable(by_path)
    assert by_path["request_id"] != by_bytes["request_id"]


def test_arrays_with_depth_and_ir_match_the_api_with_pngs(
    analyzer: Analyzer, api: httpx.Client
) -> None:
    from synth.realcheck import holdout_photos, live_depth_ir

    photo = next(p for p in holdout_photos() if p.name == PORTRAITS[0].stem)
    depth, ir = live_depth_ir(photo)
    result = analyzer.analyze(rgb=photo.rgb, depth=depth, ir=ir, depth_scale=0.001)
    assert result["modalities_used"] == ["rgb", "depth", "ir"]
    files = {
        "rgb": ("rgb.png", cv2.imencode(".png", photo.rgb[:, :, ::-1])[1].tobytes()),
        "depth": ("depth.png", cv2.imencode(".png", depth)[1].tobytes()),
        "ir": ("ir.png", cv2.imencode(".png", ir)[1].tobytes()),
    }
    r = api.post("/liveness", files=files, data={"depth_scale": "0.001"})
    assert r.status_code == 200, r.text
    assert _stable(result) == _stable(r.json())
    assert [f["decision"] for f in result["faces"]] == ["live"]


def test_options_and_settings_are_the_servers(analyzer: Analyzer) -> None:
    photo = PORTRAITS[0]
    assert analyzer.analyze(rgb=photo, operating_point="apcer1")["operating_point"]["name"] == (
        "apcer1"
    )
    crop = analyzer.analyze(rgb=photo, cropped=True)
    assert crop["detector"] == "cropped" and crop["scoring"] == "flexmodal"
    with Analyzer(rgb_expert=False, operating_point="apcer5") as plain:
        body = plain.analyze(rgb=photo)
    assert body["scoring"] == "flexmodal" and set(body["faces"][0]["scores"]) == {"flexmodal"}
    assert body["operating_point"]["name"] == "apcer5"
    assert analyzer.model["name"] == body["model"]["name"] == "flexlive-lite"
    assert len(analyzer.model["sha256"]) == 64


def test_bad_input_raises_invalid_input_naming_the_field(
    analyzer: Analyzer, tmp_path: Path
) -> None:
    rgb = _rgb(PORTRAITS[0])
    cases: list[tuple[dict[str, Any], str, str]] = [
        ({"rgb": rgb, "depth": np.zeros((10, 10), np.uint16)}, "depth", "size-mismatch"),
        ({"rgb": rgb, "depth": np.zeros(rgb.shape[:2], np.float32)}, "depth", "unsupported-dtype"),
        ({"rgb": rgb[:, :, 0]}, "rgb", "bad-shape"),
        ({"rgb": b"not an image"}, "rgb", "undecodable-image"),
        ({"rgb": tmp_path / "missing.jpg"}, "rgb", "file-not-found"),
        ({"ir": 3.5}, "ir", "unsupported-type"),
        ({}, "body", "empty-request"),
        ({"rgb": rgb, "operating_point": "lenient"}, "operating_point", "unknown-operating-point"),
        ({"rgb": rgb, "depth_scale": 0}, "depth_scale", "invalid-input"),
    ]
    for kwargs, field, kind in cases:
        with pytest.raises(InvalidInputError) as info:
            analyzer.analyze(**kwargs)
        assert (info.value.field, info.value.kind) == (field, kind), (kwargs.keys(), info.value)
        assert isinstance(info.value, ValueError) and "\n" not in str(info.value)


def test_policy_applies_as_on_the_server() -> None:
    with (
        Analyzer(accepted_modalities="rgb+depth+ir") as strict,
        pytest.raises(InvalidInputError) as info,
    ):
        strict.analyze(rgb=PORTRAITS[0])
    assert info.value.kind == "modality-not-accepted"


def test_unknown_setting_and_missing_model_fail_at_construction(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="operating_pont"):
        Analyzer(operating_pont="eer")
    with pytest.raises(flexlive.ModelLoadError, match="does not exist"):
        Analyzer(model_path=tmp_path / "missing.onnx")
    with pytest.raises(InvalidInputError, match="operating point 'lenient'"):
        Analyzer(operating_point="lenient")


def test_module_level_analyze_reuses_one_default_analyzer(analyzer: Analyzer) -> None:
    first = flexlive.default_analyzer()
    result = flexlive.analyze(rgb=PORTRAITS[1])
    assert flexlive.default_analyzer() is first
    assert _stable(result) == _stable(analyzer.analyze(rgb=PORTRAITS[1]))


def _python_blocks(page: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", (ROOT / "docs" / page).read_text(), re.S)


@pytest.mark.parametrize("page", ["python-api.md", "face-stage.md"])
def test_docs_python_examples_run(page: str) -> None:
    blocks = _python_blocks(page)
    assert blocks, page
    for code in blocks:
        env = {k: v for k, v in os.environ.items() if not k.upper().startswith("LIVENESS_")}
        r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                           text=True, timeout=300, env=env)  # fmt: skip
        assert r.returncode == 0, f"{page}:\n{code}\n{r.stderr}"
        assert "Traceback" not in r.stderr
