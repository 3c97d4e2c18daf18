"""``liveness predict``: the API's JSON for the same bytes, without a server; a table on
request; bad input is one line on stderr and exit code 2."""

from __future__ import annotations

import json
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
from click.testing import CliRunner

from models import DEFAULT_MODEL_PATH
from service.api import create_app
from service.cli import main
from service.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
LIVE_T1 = ROOT / "tests" / "fixtures" / "minifasnet_samples" / "live_T1.jpg"
PORTRAIT = ROOT / "synth" / "assets" / "holdout" / "004812.jpg"
#: Fields that differ between two answers to the same bytes by design.
VOLATILE = ("request_id", "timings_ms")


@pytest.fixture(autouse=True)
def _no_liveness_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """predict reads LIVENESS_* as serve does; the server here is built from defaults."""
    import os

    for key in list(os.environ):
        if key.upper().startswith("LIVENESS_"):
            monkeypatch.delenv(key)


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
def portrait_with_depth_ir(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A real held-out portrait with registered depth (16-bit PNG) and IR of a live head."""
    from synth.realcheck import holdout_photos, live_depth_ir

    photo = next(p for p in holdout_photos() if p.name == PORTRAIT.stem)
    depth, ir = live_depth_ir(photo)
    out = tmp_path_factory.mktemp("capture")
    cv2.imwrite(str(out / "depth.png"), depth)
    cv2.imwrite(str(out / "ir.png"), ir)
    return {"rgb": PORTRAIT, "depth": out / "depth.png", "ir": out / "ir.png"}


def _predict(*args: str) -> Any:
    return CliRunner().invoke(main, ["predict", *args], catch_exceptions=False)


def _stable(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k not in VOLATILE}


def _api(api: httpx.Client, files: dict[str, Path], **data: str) -> dict[str, Any]:
    r = api.post(
        "/liveness", files={m: (p.name, p.read_bytes()) for m, p in files.items()}, data=data
    )
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


@pytest.mark.parametrize("photo", [PORTRAIT, LIVE_T1], ids=["holdout-portrait", "live_T1"])
def test_predict_json_is_the_api_body_for_the_same_bytes(api: httpx.Client, photo: Path) -> None:
    res = _predict(str(photo), "--json")
    assert res.exit_code == 0, res.output
    body = json.loads(res.stdout)
    expected = _api(api, {"rgb": photo})
    assert set(body) == set(expected)
    assert _stable(body) == _stable(expected)
    assert set(body["timings_ms"]) == set(expected["timings_ms"])
    assert body["request_id"] != expected["request_id"]
    # Real live people, full frames (live_T1 is a phone photo stored sideways with an EXIF
    # orientation): one face each, scored by both components and decided live.
    (face,) = body["faces"]
    assert face["decision"] == "live" and 0.0 <= face["score"] <= 1.0
    assert body["scoring"] == "flexmodal+rgb_expert"
    assert set(face["scores"]) == {"flexmodal", "rgb_expert"}


def test_predict_with_depth_and_ir_matches_the_api(
    api: httpx.Client, portrait_with_depth_ir: dict[str, Path]
) -> None:
    files = portrait_with_depth_ir
    res = _predict(
        str(files["rgb"]), "--depth", str(files["depth"]), "--ir", str(files["ir"]), "--json"
    )
    assert res.exit_code == 0, res.output
    body = json.loads(res.stdout)
    assert body["modalities_received"] == ["rgb", "depth", "ir"]
    assert body["modalities_used"] == ["rgb", "depth", "ir"]
    assert [f["decision"] for f in body["faces"]] == ["live"]
    assert _stable(body) == _stable(_api(api, files))


def test_predict_options_reach_the_pipeline_as_the_api_options(
    api: httpx.Client, portrait_with_depth_ir: dict[str, Path]
) -> None:
    """--operating-point, --depth-scale and --cropped mean what the form fields mean."""
    rgb, depth = portrait_with_depth_ir["rgb"], portrait_with_depth_ir["depth"]
    args = [str(rgb), "--depth", str(depth), "--operating-point", "apcer1"]
    body = json.loads(_predict(*args, "--depth-scale", "0.0005", "--json").stdout)
    expected = _api(api, {"rgb": rgb, "depth": depth}, operating_point="apcer1",
                    depth_scale="0.0005")  # fmt: skip
    assert body["operating_point"]["name"] == "apcer1"
    assert _stable(body) == _stable(expected)
    cropped = json.loads(_predict(str(rgb), "--cropped", "--json").stdout)
    assert cropped["detector"] == "cropped" and len(cropped["faces"]) == 1
    assert _stable(cropped) == _stable(_api(api, {"rgb": rgb}, cropped="true"))


def test_table_shows_each_face_decision_and_score() -> None:
    res = _predict(str(PORTRAIT), "--table")
    assert res.exit_code == 0, res.output
    body = json.loads(_predict(str(PORTRAIT), "--json").stdout)
    (face,) = body["faces"]
    lines = res.stdout.strip().splitlines()
    assert lines[0].startswith(f"model {body['model']['name']} {body['model']['version']}")
    assert "modalities used rgb" in lines[0]
    row = lines[2].split()
    assert row[:3] == ["1", face["decision"], f"{face['score']:.3f}"]
    assert len(lines) == 3


def test_default_output_is_json_when_stdout_is_not_a_terminal() -> None:
    body = json.loads(_predict(str(PORTRAIT)).stdout)  # CliRunner's stdout is no TTY
    assert body["faces"] and "request_id" in body


def test_no_face_is_a_table_line_with_the_reason(tmp_path: Path) -> None:
    noise = np.random.default_rng(0).integers(60, 200, (240, 320, 3), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / "noise.png"), noise)
    res = _predict(str(tmp_path / "noise.png"), "--table")
    assert res.exit_code == 0, res.output
    assert res.stdout.strip().splitlines()[1] == "no face scored (reasons: no_face)"


def _bad(res: Any, *needles: str) -> str:
    assert res.exit_code == 2, res.output
    assert res.stdout == ""
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert "Traceback" not in res.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return str(lines[0])


def test_missing_file_is_one_line_and_exit_2(tmp_path: Path) -> None:
    _bad(_predict(str(tmp_path / "nope.jpg")), "rgb", "no such file", "nope.jpg")
    _bad(_predict(str(PORTRAIT), "--ir", str(tmp_path / "ir.png")), "ir: no such file")
    _bad(_predict(str(tmp_path)), "is not a file")


def test_undecodable_image_is_one_line_and_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "photo.jpg"
    bad.write_bytes(b"this is not a JPEG at all")
    _bad(_predict(str(bad)), "rgb:", "not a PNG, JPEG or NumPy .npy image")
    truncated = tmp_path / "cut.jpg"
    truncated.write_bytes(PORTRAIT.read_bytes()[:4000])
    _bad(_predict(str(truncated)), "rgb:", "truncated")


def test_size_mismatch_is_one_line_and_exit_2(tmp_path: Path) -> None:
    cv2.imwrite(str(tmp_path / "depth.png"), np.full((100, 80), 600, np.uint16))
    line = _bad(_predict(str(PORTRAIT), "--depth", str(tmp_path / "depth.png")), "depth:")
    assert "does not match" in line and "100" in line


def test_wrong_dtype_option_and_policy_errors_are_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cv2.imwrite(str(tmp_path / "depth8.png"), np.full((50, 50), 60, np.uint8))
    _bad(_predict(str(PORTRAIT), "--depth", str(tmp_path / "depth8.png")), "16-bit")
    _bad(_predict(str(PORTRAIT), "--operating-point", "lenient"), "unknown operating point")
    _bad(_predict(str(PORTRAIT), "--depth-scale", "5"), "depth_scale")
    _bad(_predict(), "give an RGB image")
    monkeypatch.setenv("LIVENESS_ACCEPTED_MODALITIES", "rgb+depth+ir")
    _bad(_predict(str(PORTRAIT)), "rgb+depth+ir", "sent rgb")


def test_console_script_error_is_one_line_without_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "photo.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 10)
    exe = Path(sys.executable).with_name("liveness")
    r = subprocess.run([str(exe), "predict", str(bad)], capture_output=True, text=True,
                       timeout=120)  # fmt: skip
    assert r.returncode == 2, r
    assert r.stdout == ""
    assert r.stderr.strip().splitlines() == ["Error: rgb: corrupt PNG header"], r.stderr
