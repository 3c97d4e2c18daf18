"""Logistic fusion of the flexible-modal model and the RGB expert (models.fusion)."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from models.fusion import ExpertFusion, SubsetFusion, balanced_weights, fit_logistic, sigmoid
from models.spec import ModelSpec, default_normalisation


def test_fit_logistic_recovers_known_coefficients() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(0, 2, (20000, 2))
    true = np.array([1.5, 0.4])
    y = (rng.random(len(x)) < sigmoid(x @ true - 0.7)).astype(int)
    coef, bias = fit_logistic(x, y, l2=0.0)
    np.testing.assert_allclose(coef, true, atol=0.08)
    assert bias == pytest.approx(-0.7, abs=0.08)


def test_fit_logistic_needs_both_classes() -> None:
    with pytest.raises(ValueError, match="both bona fide and attack"):
        fit_logistic(np.zeros((5, 2)), np.ones(5))


def test_balanced_weights_equalise_cells() -> None:
    labels = np.array([1, 1, 1, 1, 0, 0, 0])
    groups = ["synth", "synth", "synth", "real", "synth", "real", "real"]
    w = balanced_weights(labels, groups)
    assert w.sum() == pytest.approx(len(labels))
    # Per label: each source has half the label's weight; both labels weigh the same.
    assert w[:3].sum() == pytest.approx(w[3])
    assert w[4] == pytest.approx(w[5:].sum())
    assert w[:4].sum() == pytest.approx(w[4:].sum())


def test_subset_fusion_is_monotone_in_each_positive_component() -> None:
    f = SubsetFusion(w_flexmodal=1.0, w_expert=0.5, bias=0.0, operating_points={"eer": 0.5})
    assert f.fuse(0.9, 0.5) > f.fuse(0.5, 0.5) > f.fuse(0.1, 0.5)
    assert f.fuse(0.5, 0.9) > f.fuse(0.5, 0.1)
    assert 0.0 < f.fuse(0.0, 0.0) < f.fuse(1.0, 1.0) < 1.0  # clipped logits stay finite


def _spec(**extra: object) -> ModelSpec:
    return ModelSpec(
        name="m",
        version="1",
        input_size=64,
        normalisation=default_normalisation(),
        operating_points={"eer": 0.5},
        backbone="b",
        fusion="f",
        training_data="t",
        created="now",
        **extra,  # type: ignore[arg-type]
    )


def _fusion(subsets: dict[str, dict[str, object]]) -> dict[str, object]:
    return {"expert": "e", "expert_sha256": {"a": "0"}, "subsets": subsets, "calibration": "c"}


def test_spec_carries_the_fusion_through_metadata() -> None:
    sub = {"w_flexmodal": 1.0, "w_expert": 2.0, "bias": -0.5, "operating_points": {"eer": 0.4}}
    spec = _spec(rgb_expert=_fusion({"ir+rgb": sub}))
    back = ModelSpec.from_metadata(spec.to_metadata())
    fusion = back.expert_fusion()
    assert isinstance(fusion, ExpertFusion)
    assert set(fusion.subsets) == {"rgb+ir"}  # names normalised to the canonical order
    got = fusion.for_subset(["rgb", "ir"])
    assert got is not None and got.w_expert == 2.0
    assert fusion.for_subset(["rgb"]) is None
    assert _spec().expert_fusion() is None


@pytest.mark.parametrize(
    ("subset", "ops", "needle"),
    [
        ("depth+ir", {"eer": 0.5}, "has no colour"),
        ("rgb", {"eer": 1.5}, "outside [0, 1]"),
        ("rgb+sonar", {"eer": 0.5}, "sonar"),
    ],
)
def test_spec_rejects_a_bad_fusion(subset: str, ops: dict[str, float], needle: str) -> None:
    sub = {"w_flexmodal": 1.0, "w_expert": 1.0, "bias": 0.0, "operating_points": ops}
    with pytest.raises(ValidationError, match=needle.replace("[", r"\[").replace("]", r"\]")):
        _spec(rgb_expert=_fusion({subset: sub}))
