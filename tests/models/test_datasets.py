"""Crop-folder datasets: the training pipeline feeds exactly what serving feeds."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from models.datasets.crops import (
    Augment,
    CropCache,
    ModalityDropout,
    hide_eye_glints,
    load_crops,
    normalised8_to_depth,
)
from models.datasets.protocol import ProtocolEntry, read_protocol, write_protocol
from models.datasets.toy import write_toy_dataset
from models.preprocess import FaceCrops, depth_to_unit, preprocess
from models.spec import MODALITIES, PreprocessSpec, all_subsets

torch = pytest.importorskip("torch")

from models.datasets.torch_dataset import PadDataset  # noqa: E402

SPEC = PreprocessSpec(input_size=112)


@pytest.fixture(scope="module")
def toy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_toy_dataset(tmp_path_factory.mktemp("toy"), n_per_split=8)


def test_training_pipeline_equals_serving_preprocess(toy: Path) -> None:
    """Same crop, no augmentation: dataset tensors == models.preprocess on the raw files."""
    entries = read_protocol(toy / "protocols" / "intra" / "train.txt")
    ds = PadDataset(CropCache(toy, entries), SPEC)
    for i in (0, 1):
        e = entries[i]
        # what a service client does: decode the files, BGR → RGB at the boundary
        rgb = cv2.cvtColor(cv2.imread(str(toy / e.rgb)), cv2.COLOR_BGR2RGB)
        depth = cv2.imread(str(toy / e.depth), cv2.IMREAD_UNCHANGED)
        ir = cv2.imread(str(toy / e.ir), cv2.IMREAD_UNCHANGED)
        assert depth.dtype == np.uint16
        served = preprocess(FaceCrops(rgb=rgb, depth=depth, ir=ir, depth_scale=0.001), SPEC)
        item = ds[i]
        for k in (*MODALITIES, "present"):
            np.testing.assert_array_equal(item[k].numpy(), served[k])
        assert item["label"].item() == e.label


def test_rgb_is_converted_from_bgr(tmp_path: Path) -> None:
    red = np.zeros((112, 112, 3), np.uint8)
    red[..., 0] = 200  # R in RGB order
    cv2.imwrite(str(tmp_path / "r.png"), cv2.cvtColor(red, cv2.COLOR_RGB2BGR))
    c = load_crops(tmp_path, ProtocolEntry("r.png", "-", "-", 1))
    assert c.present == ("rgb",)
    assert c.rgb is not None and c.rgb[..., 0].mean() == 200 and c.rgb[..., 2].mean() == 0


def test_modality_dropout_reaches_every_subset_and_zeroes_after_normalisation(toy: Path) -> None:
    cache = CropCache.from_protocol(toy, "intra", "train")
    ds = PadDataset(cache, SPEC, dropout=ModalityDropout())
    seen = set()
    for epoch in range(40):
        ds.set_epoch(epoch)
        item = ds[0]
        present = tuple(m for m, p in zip(MODALITIES, item["present"].tolist(), strict=True) if p)
        assert present, "a sample is never left empty"
        for m, p in zip(MODALITIES, item["present"].tolist(), strict=True):
            if not p:
                assert torch.count_nonzero(item[m]) == 0
        seen.add(present)
    assert seen == set(all_subsets())


def test_paper_dropout_never_drops_rgb() -> None:
    c = FaceCrops(
        rgb=np.zeros((4, 4, 3), np.uint8),
        depth=np.ones((4, 4), np.uint16),
        ir=np.zeros((4, 4), np.uint8),
    )
    drop = ModalityDropout(p_rgb=0.0, p_depth=0.5, p_ir=0.5)
    rng = np.random.default_rng(0)
    subsets = {drop(c, rng).present for _ in range(200)}
    assert subsets == {("rgb",), ("rgb", "depth"), ("rgb", "ir"), ("rgb", "depth", "ir")}


def test_augment_keeps_modalities_registered() -> None:
    """Joint flip/shift/rotation: a marker lands on the same pixels in every modality."""
    size = 112
    rgb = np.zeros((size, size, 3), np.uint8)
    depth = np.full((size, size), 600, np.uint16)
    ir = np.zeros((size, size), np.uint8)
    rgb[20:30, 70:80] = 255
    depth[20:30, 70:80] = 400
    ir[20:30, 70:80] = 255
    aug = Augment(brightness=0.0, gamma=0.0, depth_noise_mm=0.0, cutout=0.0)
    for seed in range(5):
        out = aug(FaceCrops(rgb=rgb, depth=depth, ir=ir), np.random.default_rng(seed))
        assert out.rgb is not None and out.depth is not None and out.ir is not None
        assert out.rgb.dtype == np.uint8 and out.depth.dtype == np.uint16
        m_rgb = out.rgb[..., 0] > 128
        m_d = out.depth < 500
        m_ir = out.ir > 128
        assert m_rgb.sum() > 50
        assert (m_rgb == m_d).mean() > 0.99 and (m_rgb == m_ir).mean() > 0.99


def test_hide_glints_removes_the_corneal_glints_and_nothing_else() -> None:
    """The blink augmentation takes the small bright spots off both template eyes, keeps
    the rest of the crop, the eye's own shading and the dtype; at rate 0 the crop is
    untouched, at rate 1 every crop loses its glints, whatever its species."""
    from models.crop import template

    size = 112
    rng = np.random.default_rng(0)
    base = np.clip(120 + rng.normal(0, 3, (size, size)), 0, 255).astype(np.uint8)
    base[60:70, 30:80] = 60  # a dark band below the eyes: not a spot, stays
    eyes = np.round(template(size)[:2]).astype(int)
    ir = base.copy()
    for ex, ey in eyes:
        ir[ey - 1 : ey + 2, ex - 1 : ex + 2] = 250  # a glint
    for dtype, full in ((np.uint8, 1), (np.uint16, 257)):
        x = (ir.astype(np.uint32) * full).astype(dtype)
        out = hide_eye_glints(x)
        assert out.dtype == dtype and out.shape == x.shape
        for ex, ey in eyes:
            assert out[ey, ex] < 140 * full  # the glint is gone
        far = np.ones(x.shape, bool)
        for ex, ey in eyes:
            far[ey - 8 : ey + 9, ex - 8 : ex + 9] = False
        assert np.array_equal(out[far], x[far])
        assert (out[60:70, 30:80] == 60 * full).mean() > 0.95
    still = {"brightness": 0.0, "gamma": 0.0, "cutout": 0.0, "flip": 0.0, "max_shift": 0.0,
             "max_rotate": 0.0, "max_scale": 0.0, "depth_noise_mm": 0.0}  # fmt: skip
    crops = FaceCrops(rgb=None, depth=None, ir=ir)
    for seed in range(3):
        kept = Augment(**still)(crops, np.random.default_rng(seed)).ir
        hidden = Augment(**still, hide_glints=1.0)(crops, np.random.default_rng(seed)).ir
        assert kept is not None and hidden is not None
        assert np.array_equal(kept, ir) and np.array_equal(hidden, hide_eye_glints(ir))
    with pytest.raises(ValueError, match="hide_glints"):
        Augment(hide_glints=1.5)


def test_normalised8_depth_maps_to_full_range() -> None:
    v = np.zeros((50, 50), np.uint8)
    v[10:40, 10:40] = 128
    v[20:30, 20:30] = 255  # nearer = brighter
    d = normalised8_to_depth(v, 120.0)
    assert d.dtype == np.uint16 and (d[v == 0] == 0).all()
    unit = depth_to_unit(d, 1e-4, 120.0)[0]
    assert unit[v == 0].max() == 0.0
    assert unit[25, 25] > unit[15, 15]  # nearer still brighter
    assert unit[15, 15] == pytest.approx(0.5, abs=0.01)  # face median → 0.5
    # 127 levels above the median span half the unit range
    assert unit[25, 25] == pytest.approx(0.5 + 127 / 255, abs=0.01)


def test_8bit_depth_needs_the_normalised_encoding(tmp_path: Path) -> None:
    cv2.imwrite(str(tmp_path / "d.png"), np.full((8, 8), 100, np.uint8))
    with pytest.raises(ValueError, match="normalised8"):
        load_crops(tmp_path, ProtocolEntry("-", "d.png", "-", 1))
    c = load_crops(tmp_path, ProtocolEntry("-", "d.png", "-", 1), depth_encoding="normalised8")
    assert c.depth is not None and c.depth_scale == 1e-4


def test_toy_lists_round_trip_through_the_protocol_reader(toy: Path, tmp_path: Path) -> None:
    entries = read_protocol(toy / "protocols" / "intra" / "test.txt")
    assert {e.species for e in entries} == {"bona_fide", "print", "replay"}
    write_protocol(tmp_path / "x.txt", entries)
    assert read_protocol(tmp_path / "x.txt") == entries
