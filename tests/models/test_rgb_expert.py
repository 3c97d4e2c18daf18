"""The RGB expert (MiniFASNet V2 + V1SE): architecture, conversion, shipped files, crop."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort
import pytest
import torch

from models.rgb_expert import EXPERT_DIR
from models.rgb_expert.convert import ARCHITECTURE_FILE, VARIANTS, export
from models.rgb_expert.crop import (
    MTCNN_TO_PUBLISHER,
    crop_window,
    expert_crop,
    fit_mapping,
    publisher_box,
)
from models.rgb_expert.net import MiniFASNet

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "tests" / "fixtures" / "minifasnet_samples"
#: sha256 of the publisher's state dicts (third_party SOURCE.md).
SOURCE_SHA256 = {
    "minifasnet_v2.onnx": "a5eb02e1843f19b5386b953cc4c9f011c3f985d0ee2bb9819eea9a142099bec0",
    "minifasnet_v1se.onnx": "84ee1d37d96894d5e82de5a57df044ef80a58be2b218b5ed7cdfd875ec2f5990",
}


def _random_state(shapes: dict[str, list[int]], seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in shapes.items():
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(0)
        elif key.endswith("running_var"):
            state[key] = torch.rand(shape, generator=g) + 0.5
        elif key.endswith("running_mean"):
            state[key] = torch.randn(shape, generator=g) * 0.1
        else:
            fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else 1
            state[key] = torch.randn(shape, generator=g) / np.sqrt(fan_in)
    # As published: every key carries DataParallel's prefix.
    return {f"module.{k}": v for k, v in state.items()}


@pytest.fixture(scope="module")
def architecture() -> dict[str, dict[str, list[int]]]:
    return json.loads((EXPERT_DIR / ARCHITECTURE_FILE).read_text())


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: v.onnx)
def test_architecture_loads_strictly_and_exports_with_parity(architecture, variant, tmp_path):
    shapes = architecture[variant.onnx]
    state = _random_state(shapes, seed=len(variant.onnx))
    net = MiniFASNet(state)
    assert {k: list(v.shape) for k, v in net.state_dict().items()} == shapes
    se_blocks = [k for k in shapes if ".se_module.fc1." in k]
    assert bool(se_blocks) == ("v1se" in variant.onnx)

    path = tmp_path / variant.onnx
    export(net, variant, "0" * 64, path)
    x = np.random.default_rng(3).uniform(0, 255, (4, 80, 80, 3)).astype(np.float32)
    with torch.no_grad():
        want = net(torch.from_numpy(x).permute(0, 3, 1, 2)).numpy()
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    logits, probs = sess.run(["logits", "probs"], {"image": x})
    assert not net.training  # exporting must not leave the network in training mode
    scale = float(np.abs(want).max())
    np.testing.assert_allclose(logits, want, rtol=1e-4, atol=1e-5 * scale)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)


def test_state_dict_with_missing_or_extra_keys_is_refused(architecture):
    state = _random_state(architecture["minifasnet_v2.onnx"], seed=1)
    missing = {k: v for k, v in state.items() if not k.endswith("prelu.weight")}
    with pytest.raises((RuntimeError, KeyError)):
        MiniFASNet(missing)
    extra = dict(state, **{"module.conv1.extra.weight": torch.zeros(1)})
    with pytest.raises(RuntimeError, match="Unexpected key"):
        MiniFASNet(extra)


def _readme_sha256() -> dict[str, str]:
    text = (EXPERT_DIR / "README.md").read_text()
    return dict(re.findall(r"`(minifasnet_\w+\.onnx)`\s*\|\s*([0-9a-f]{64})", text))


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: v.onnx)
def test_shipped_files_match_readme_and_source(variant):
    path = EXPERT_DIR / variant.onnx
    assert hashlib.sha256(path.read_bytes()).hexdigest() == _readme_sha256()[variant.onnx]
    meta = ort.InferenceSession(str(path)).get_modelmeta().custom_metadata_map
    assert meta["source_sha256"] == SOURCE_SHA256[variant.onnx]
    assert float(meta["crop_scale"]) == variant.scale
    assert meta["channel_order"] == "BGR" and meta["real_class"] == "1"
    assert (EXPERT_DIR / "LICENSE").read_text().startswith(" " * 33 + "Apache License")


def test_shipped_expert_separates_the_publishers_real_samples():
    """The publisher's own sample photographs (a live person, a poster, a tablet replay),
    scored through the shipped ONNX files on crops of the publisher's recorded boxes."""
    boxes = json.loads((EXPERT_DIR / "reference_boxes.json").read_text())
    real = {}
    for name in ("live_T1", "poster_F1", "replay_F2"):
        rel = f"tests/fixtures/minifasnet_samples/{name}.jpg"
        bgr = cv2.imread(str(ROOT / rel))
        total = 0.0
        for variant in VARIANTS:
            sess = ort.InferenceSession(str(EXPERT_DIR / variant.onnx))
            crop = expert_crop(bgr, boxes[rel], variant.scale)[None].astype(np.float32)
            total += float(sess.run(["probs"], {"image": crop})[0][0, 1])
        real[name] = total / len(VARIANTS)
    assert real["live_T1"] > 0.9, real
    assert real["poster_F1"] < 0.2 and real["replay_F2"] < 0.3, real


def test_crop_window_caps_scale_and_shifts_inside():
    # A box in the middle of a big image: plain scaling about the centre.
    left, top, right, bottom = crop_window((1000, 1000), (450, 450, 100, 100), 2.7)
    assert (left, top, right, bottom) == (365, 365, 635, 635)
    # Near the left/top edge: shifted back inside, size kept.
    left, top, right, bottom = crop_window((1000, 1000), (0, 10, 100, 100), 4.0)
    assert left == 0 and top == 0 and right - left == 400 and bottom - top == 400
    # Too big for the image: the scale is capped so the crop fits.
    left, top, right, bottom = crop_window((300, 200), (50, 50, 100, 100), 4.0)
    assert left >= 0 and top >= 0 and right <= 199 and bottom <= 299
    assert right - left == 199
    with pytest.raises(ValueError, match="empty face box"):
        crop_window((100, 100), (10, 10, 0, 5), 2.7)
    crop = expert_crop(np.zeros((120, 90, 3), np.uint8), (20, 30, 40, 40), 2.7)
    assert crop.shape == (80, 80, 3)


def test_mapping_refits_to_the_shipped_constants():
    m = MTCNN_TO_PUBLISHER
    mtcnn = [(10.0, 20.0, 110.0, 160.0), (50.0, 40.0, 90.0, 96.0)]
    pairs = [(b, publisher_box(b)) for b in mtcnn]
    fitted = fit_mapping(pairs)
    assert fitted == m
    x, y, w, h = publisher_box((0, 0, 100, 100))
    assert (w, h) == pytest.approx((100 * m.sx, 100 * m.sy))
    assert y + h / 2 == pytest.approx(50 + 100 * m.dy)


def _iou(a, b) -> float:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    iw = max(0.0, min(ax + aw, bx + bw) - max(ax, bx))
    ih = max(0.0, min(ay + ah, by + bh) - max(ay, by))
    inter = iw * ih
    return inter / (aw * ah + bw * bh - inter)


def test_flexlive_detector_reproduces_the_publishers_boxes_on_real_photographs():
    """MTCNN box → mapping ≈ the publisher's detector box (recorded on the same real
    photographs with ``models/rgb_expert/reference_boxes.py``)."""
    from service.face.config import FaceStageConfig
    from service.face.detectors.mtcnn import MTCNNDetector

    det = MTCNNDetector(FaceStageConfig())
    boxes = json.loads((EXPERT_DIR / "reference_boxes.json").read_text())
    ious, raw = [], []
    for rel, ref in boxes.items():
        if "/faces/" in rel and int(Path(rel).stem) % 6:
            continue  # the canonical face library: every 6th is enough here
        rgb = cv2.cvtColor(cv2.imread(str(ROOT / rel)), cv2.COLOR_BGR2RGB)
        found = det.detect(rgb, max_faces=1, min_face_px=20)
        assert found, rel
        b = found[0].box
        ious.append(_iou(publisher_box(b), ref))
        raw.append(_iou((b[0], b[1], b[2] - b[0], b[3] - b[1]), ref))
    assert len(ious) >= 40
    assert np.median(ious) > 0.9 and np.percentile(ious, 10) > 0.8
    # The mapping is what makes the boxes agree: raw MTCNN boxes are clearly off.
    assert np.median(ious) > np.median(raw) + 0.05
