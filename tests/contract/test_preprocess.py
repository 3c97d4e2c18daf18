"""The one preprocessing definition: shapes, ranges, missing modalities, depth holes."""

from __future__ import annotations

import numpy as np
import pytest

from models.preprocess import FaceCrops, depth_to_unit, ir_to_unit, preprocess, preprocess_batch
from models.spec import ModelSpec, Normalisation, PreprocessSpec, default_normalisation

S = 32


@pytest.fixture
def spec() -> PreprocessSpec:
    return PreprocessSpec(input_size=S)


def crops(rng: np.random.Generator) -> FaceCrops:
    depth = np.full((S, S), 600, np.uint16)
    depth[S // 2, S // 2] = 560  # nose: 40 mm nearer
    depth[0, :] = 0  # a row of holes
    return FaceCrops(
        rgb=rng.integers(0, 256, (S, S, 3), dtype=np.uint8),
        depth=depth,
        ir=rng.integers(0, 256, (S, S), dtype=np.uint8),
    )


def test_full_bundle_shapes_and_present(spec: PreprocessSpec) -> None:
    out = preprocess(crops(np.random.default_rng(0)), spec)
    assert out["rgb"].shape == (3, S, S)
    assert out["depth"].shape == (1, S, S)
    assert out["ir"].shape == (1, S, S)
    assert out["present"].tolist() == [1.0, 1.0, 1.0]
    assert all(v.dtype == np.float32 for v in out.values())


def test_missing_modality_is_zero_after_normalisation(spec: PreprocessSpec) -> None:
    c = crops(np.random.default_rng(1)).without("depth", "ir")
    out = preprocess(c, spec)
    assert out["present"].tolist() == [1.0, 0.0, 0.0]
    assert not out["depth"].any() and not out["ir"].any()
    assert out["rgb"].any()


def test_empty_crops_refused(spec: PreprocessSpec) -> None:
    with pytest.raises(ValueError, match="at least one modality"):
        preprocess(FaceCrops(), spec)


def test_wrong_size_refused(spec: PreprocessSpec) -> None:
    with pytest.raises(ValueError, match="model expects"):
        preprocess(FaceCrops(ir=np.zeros((S + 1, S), np.uint8)), spec)


def test_depth_is_face_relative_nearer_brighter_holes_zero() -> None:
    depth = np.full((S, S), 600, np.uint16)
    depth[S // 2, S // 2] = 560
    depth[0, :] = 0
    u = depth_to_unit(depth, 0.001, range_mm=100.0)[0]
    assert u[S // 2 + 1, S // 2 + 1] == pytest.approx(0.5)  # the face median
    assert u[S // 2, S // 2] == pytest.approx(0.5 + 40 / 200)  # nearer → brighter
    assert (u[0] == 0).all()  # holes stay exactly 0
    assert (u[1:] > 0).all()  # valid pixels never look like holes
    # The same scene at another distance and depth unit gives the same tensor.
    far = np.where(depth > 0, depth.astype(np.int64) * 10 + 3000, 0).astype(np.uint16)
    np.testing.assert_allclose(depth_to_unit(far, 0.0001, range_mm=100.0)[0], u, atol=1e-5)


def test_all_hole_depth_is_all_zero() -> None:
    assert not depth_to_unit(np.zeros((S, S), np.uint16), 0.001, 100.0).any()


def test_ir_gain_bounded() -> None:
    dim = np.full((S, S), 20, np.uint8)
    assert ir_to_unit(dim).max() == pytest.approx(20 / 255 * 4)  # lifted at most ×4
    bright = np.full((S, S), 200, np.uint8)
    assert ir_to_unit(bright).max() == pytest.approx(1.0)  # stretched to 1
    np.testing.assert_allclose(ir_to_unit(dim.astype(np.uint16) * 257), ir_to_unit(dim), atol=1e-6)


def test_batch_stacks(spec: PreprocessSpec) -> None:
    rng = np.random.default_rng(2)
    b = preprocess_batch([crops(rng), crops(rng).without("rgb")], spec)
    assert b["rgb"].shape == (2, 3, S, S)
    assert b["present"].tolist() == [[1, 1, 1], [0, 1, 1]]


def test_a_models_preprocessing_is_its_preprocess_spec() -> None:
    """ModelSpec carries the preprocessing contract: preprocess gives the same tensors from
    the model's spec and from ``spec.preprocessing`` (and a non-default contract shows)."""
    norm = {**default_normalisation(), "ir": Normalisation(mean=[0.3], std=[0.2])}
    model = ModelSpec(
        name="t", version="0", input_size=S, normalisation=norm, depth_range_mm=80.0,
        operating_points={"eer": 0.5}, backbone="b", fusion="f", training_data="d",
        created="now",
    )  # fmt: skip
    prep = model.preprocessing
    assert isinstance(prep, PreprocessSpec)
    assert (prep.input_size, prep.depth_range_mm, prep.normalisation) == (S, 80.0, norm)
    c = crops(np.random.default_rng(3))
    a, b = preprocess(c, model), preprocess(c, prep)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    default = preprocess(c, PreprocessSpec(input_size=S))
    assert not np.array_equal(default["ir"], a["ir"])
    assert not np.array_equal(default["depth"], a["depth"])
