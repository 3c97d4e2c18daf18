"""The crop convention: one similarity transform for every modality."""

from __future__ import annotations

import numpy as np
import pytest

from models.crop import (
    alignment_matrix,
    crop_modalities,
    similarity_transform,
    template,
    transform_points,
)


def test_similarity_recovers_known_transform() -> None:
    rng = np.random.default_rng(0)
    src = rng.uniform(0, 100, (5, 2))
    ang, scale, t = np.deg2rad(17.0), 1.7, np.array([12.0, -4.0])
    R = scale * np.array([[np.cos(ang), -np.sin(ang)], [np.sin(ang), np.cos(ang)]])
    dst = src @ R.T + t
    M = similarity_transform(src, dst)
    np.testing.assert_allclose(M[:, :2], R, atol=1e-9)
    np.testing.assert_allclose(M[:, 2], t, atol=1e-9)


def test_landmarks_land_on_template() -> None:
    lm = template(112) * 3.0 + np.array([200.0, 80.0])  # a face 3× larger, shifted
    M = alignment_matrix(lm, 112)
    np.testing.assert_allclose(transform_points(lm, M), template(112), atol=1e-6)


def test_modalities_stay_registered_and_depth_is_not_blended() -> None:
    H, W = 240, 320
    yy, xx = np.mgrid[0:H, 0:W]
    rgb = np.zeros((H, W, 3), np.uint8)
    rgb[..., 0] = (xx % 256).astype(np.uint8)
    depth = np.where(xx < 160, 500, 900).astype(np.uint16)  # a sharp depth edge
    ir = (yy % 256).astype(np.uint8)
    lm = template(112) * 1.3 + np.array([100.0, 40.0])
    r, d, i, M = crop_modalities(lm, 112, rgb=rgb, depth=depth, ir=ir)
    assert r is not None and d is not None and i is not None
    assert r.shape == (112, 112, 3) and d.shape == (112, 112) and i.shape == (112, 112)
    assert set(np.unique(d)) <= {0, 500, 900}  # nearest neighbour: no blended depths
    # The depth edge in the crop sits where x=160 maps to.
    inv = np.linalg.inv(np.vstack([M, [0, 0, 1]]))[:2]
    cx = transform_points(np.array([[56.0, 56.0]]), inv)[0, 0]
    assert (d[56, 56] == 500) == (cx < 160)


def test_bad_points_refused() -> None:
    with pytest.raises(ValueError):
        similarity_transform(np.zeros((5, 2)), np.zeros((4, 2)))


def test_face_regions_are_one_convention() -> None:
    """Where the face lies in an aligned crop is defined once (models.crop) and used by the
    pixel-map target, depth normalisation and the quality checks; every region holds the
    template's landmarks and they scale with the crop's face scale."""
    from models import preprocess, train
    from models.crop import (
        FACE_SCALE,
        face_depth_square,
        face_ellipse,
        face_ellipse_mask,
        face_features_box,
        template,
    )
    from service.face import quality

    size = 112
    lm = template(size) / size
    cx, cy, ax, ay = face_ellipse()
    assert np.all(((lm[:, 0] - cx) / ax) ** 2 + ((lm[:, 1] - cy) / ay) ** 2 < 1)
    x0, y0, x1, y1 = face_features_box()
    assert np.all((lm[:, 0] > x0) & (lm[:, 0] < x1) & (lm[:, 1] > y0) & (lm[:, 1] < y1))
    half = face_depth_square() / 2
    nose = lm[2]
    assert abs(nose[0] - 0.5) < half and abs(nose[1] - 0.5) < half
    # the users take these very definitions
    assert face_features_box() == quality.FACE_REGION
    assert face_depth_square() == preprocess.FACE_CENTER_FRACTION
    np.testing.assert_array_equal(train.face_region(size).numpy(), face_ellipse_mask(size))
    # a tighter crop (larger face scale) makes every region larger, about the centre
    big = FACE_SCALE * 1.2
    assert face_ellipse(big)[2] > ax and face_depth_square(big) > 2 * half
    bx0, by0, bx1, by1 = face_features_box(big)
    assert bx0 < x0 and bx1 > x1 and (bx0 + bx1) / 2 == pytest.approx((x0 + x1) / 2)
    template_big = template(size, big) / size
    assert np.all((template_big[:, 0] > bx0) & (template_big[:, 0] < bx1))
