"""The MTCNN ONNX files: re-run the conversion and compare ORT with the torch modules.

Needs torch (dev/training environment) and the facenet-pytorch 2.6.0 wheel: taken from
``$FACENET_PYTORCH_WHEEL``, ``/tmp/fnp``, or fetched with ``pip download --no-deps``;
skipped with the reason when none of those is possible (offline without the wheel).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from models.face_detector import NETS, onnx_path

WHEEL_NAME = "facenet_pytorch-2.6.0-py3-none-any.whl"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    for cand in (os.environ.get("FACENET_PYTORCH_WHEEL"), f"/tmp/fnp/{WHEEL_NAME}"):
        if cand and Path(cand).is_file():
            return Path(cand)
    dest = tmp_path_factory.mktemp("fnp")
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "facenet-pytorch==2.6.0"]
    cmd += ["--timeout", "10", "--retries", "1", "-q", "-d", str(dest)]
    try:
        subprocess.run(cmd, check=True, timeout=90, capture_output=True)
    except (subprocess.SubprocessError, OSError) as exc:
        pytest.skip(f"facenet-pytorch 2.6.0 wheel not available offline: {exc}")
    return dest / WHEEL_NAME


def _inputs(net: str, rng: np.random.Generator) -> np.ndarray:
    h, w = {"pnet": (37, 53), "rnet": (24, 24), "onet": (48, 48)}[net]
    return rng.uniform(0, 255, (3, h, w, 3)).astype(np.float32)


def test_conversion_matches_torch(wheel: Path, tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    from models.face_detector.convert import OUTPUTS, build_nets, convert

    paths = convert(wheel, tmp_path)
    assert sorted(p.name for p in paths) == sorted(f"{n}.onnx" for n in NETS)
    nets = build_nets(wheel)
    rng = np.random.default_rng(0)
    for net in NETS:
        x = _inputs(net, rng)
        with torch.no_grad():
            ref = nets[net]((torch.from_numpy(x).permute(0, 3, 1, 2) - 127.5) * 0.0078125)
        for path in (tmp_path / f"{net}.onnx", onnx_path(net)):  # fresh and shipped files
            sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
            assert [o.name for o in sess.get_outputs()] == OUTPUTS[net]
            outs = sess.run(None, {"image": x})
            for name, r, o in zip(OUTPUTS[net], ref, outs, strict=True):
                assert o.shape == tuple(r.shape), (net, name)
                np.testing.assert_allclose(o, r.numpy(), atol=1e-4, rtol=1e-3, err_msg=net + name)


def test_pnet_output_layout() -> None:
    """P-Net is fully convolutional: stride 2 over 12×12 windows, any H/W."""
    sess = ort.InferenceSession(str(onnx_path("pnet")), providers=["CPUExecutionProvider"])
    reg, prob = sess.run(None, {"image": np.zeros((1, 100, 60, 3), np.float32)})
    assert reg.shape == (1, 4, 45, 25) and prob.shape == (1, 2, 45, 25)
    np.testing.assert_allclose(prob.sum(axis=1), 1.0, atol=1e-5)
