"""The model contract: ModelSpec ↔ ONNX metadata, and readable refusals."""

from __future__ import annotations

import json
from typing import Any

import pytest

from models.spec import (
    META_PREFIX,
    MODALITIES,
    ModelSpec,
    ModelSpecError,
    all_subsets,
    default_normalisation,
    parse_subset,
    subset_name,
)


@pytest.fixture
def make_spec(make_spec: Any) -> Any:
    """The shared test spec (tests/conftest.py) with this module's operating points."""

    def build(**overrides: object) -> ModelSpec:
        fields: dict[str, object] = {"operating_points": {"eer": 0.4, "apcer1": 0.8}}
        fields.update(overrides)
        return make_spec(**fields)

    return build


def test_subsets_cover_every_non_empty_combination() -> None:
    subsets = all_subsets()
    assert len(subsets) == 2 ** len(MODALITIES) - 1
    assert len(set(subsets)) == len(subsets)
    assert subset_name(("ir", "rgb")) == "rgb+ir"
    assert parse_subset("IR, depth") == ("depth", "ir")
    with pytest.raises(ValueError, match="unknown modality"):
        parse_subset("rgb+thermal")


def test_metadata_round_trip(make_spec: Any) -> None:
    spec = make_spec(evaluation={"rgb": {"acer": 0.1}})
    meta = spec.to_metadata()
    assert all(k.startswith(META_PREFIX) for k in meta)
    assert json.loads(meta[META_PREFIX + "modalities"]) == list(MODALITIES)
    back = ModelSpec.from_metadata(meta)
    assert back == spec
    assert back.threshold() == 0.4
    assert back.threshold("apcer1") == 0.8


def test_missing_metadata_is_refused_with_reason(make_spec: Any) -> None:
    with pytest.raises(ModelSpecError, match="no FlexLive metadata"):
        ModelSpec.from_metadata({"producer": "x"})
    meta = make_spec().to_metadata()
    del meta[META_PREFIX + "operating_points"]
    with pytest.raises(ModelSpecError, match="operating_points"):
        ModelSpec.from_metadata(meta)


@pytest.mark.parametrize(
    ("key", "value", "needle"),
    [
        ("schema_version", "99", "unsupported schema version"),
        ("modalities", '["depth", "rgb", "ir"]', "modality order"),
        ("input_size", "3", "input_size"),
        ("operating_points", '{"eer": 1.5}', "outside"),
        ("default_operating_point", '"apcer5"', "default operating point"),
        ("input_size", "{not json", "not valid JSON"),
    ],
)
def test_malformed_metadata_names_the_problem(
    key: str, value: str, needle: str, make_spec: Any
) -> None:
    meta = make_spec().to_metadata()
    meta[META_PREFIX + key] = value
    with pytest.raises(ModelSpecError, match=needle):
        ModelSpec.from_metadata(meta)


def test_normalisation_needs_every_modality(make_spec: Any) -> None:
    norm = default_normalisation()
    del norm["ir"]
    with pytest.raises(ValueError, match="normalisation for 'ir'"):
        make_spec(normalisation=norm)


def test_subset_thresholds_fall_back_to_global(make_spec: Any) -> None:
    spec = make_spec(subset_operating_points={"ir+rgb": {"eer": 0.7}})
    assert spec.subset_operating_points == {"rgb+ir": {"eer": 0.7}}  # canonical name
    assert spec.threshold("eer", ["rgb", "ir"]) == 0.7
    assert spec.threshold("apcer1", ["rgb", "ir"]) == 0.8  # not calibrated per subset
    assert spec.threshold("eer", ["rgb"]) == 0.4
    assert spec.threshold("eer") == 0.4
    assert ModelSpec.from_metadata(spec.to_metadata()) == spec
    with pytest.raises(ValueError, match="outside"):
        make_spec(subset_operating_points={"rgb": {"eer": 2.0}})
    with pytest.raises(ValueError, match="unknown modality"):
        make_spec(subset_operating_points={"thermal": {"eer": 0.5}})
