"""The model contract: ONNX input/output names and the metadata every FlexLive model carries.

The exporter writes a :class:`ModelSpec` into the ONNX ``metadata_props``; the serving
engine reads it back with :meth:`ModelSpec.from_metadata` and refuses a model whose
metadata is missing or malformed. This module is the single place that defines it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from itertools import combinations
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from sensors.bundle import MODALITIES

if TYPE_CHECKING:
    from models.fusion import ExpertFusion

SCHEMA_VERSION = 1

#: Modality order used everywhere (tensors, the ``present`` flags, metadata): defined once,
#: with the capture contract, in :mod:`sensors.bundle` (imported above).

#: Channels per modality in the model's input tensors.
CHANNELS: dict[str, int] = {"rgb": 3, "depth": 1, "ir": 1}

INPUT_PRESENT = "present"
INPUT_NAMES: tuple[str, ...] = (*MODALITIES, INPUT_PRESENT)
OUTPUT_SCORE = "score"
OUTPUT_PIXEL_MAP = "pixel_map"
#: Optional output: Mahalanobis distance of the face's embedding to the training data of its
#: modality subset (see ``models.ood``).
OUTPUT_OOD = "ood_distance"

#: Prefix of every metadata key FlexLive writes.
META_PREFIX = "flexlive."


class ModelSpecError(ValueError):
    """A model's metadata is missing or malformed; the message says what is wrong."""


def all_subsets() -> list[tuple[str, ...]]:
    """Every non-empty modality subset, in canonical modality order."""
    out: list[tuple[str, ...]] = []
    for k in range(1, len(MODALITIES) + 1):
        out.extend(combinations(MODALITIES, k))
    return out


def subset_name(subset: Iterable[str]) -> str:
    """Canonical display name of a modality subset, e.g. ``rgb+depth+ir``."""
    chosen = set(subset)
    unknown = chosen - set(MODALITIES)
    if unknown:
        raise ValueError(f"unknown modality {sorted(unknown)}; expected a subset of {MODALITIES}")
    return "+".join(m for m in MODALITIES if m in chosen)


#: Every non-empty modality subset in report order: the paper's four sub-protocols first
#: (RGB alone and with each extra modality), then the subsets without RGB.
SUBSET_ORDER: tuple[tuple[str, ...], ...] = (
    ("rgb",),
    ("rgb", "depth"),
    ("rgb", "ir"),
    ("rgb", "depth", "ir"),
    ("depth",),
    ("ir",),
    ("depth", "ir"),
)


def parse_subset(name: str) -> tuple[str, ...]:
    """Inverse of :func:`subset_name` (accepts any order and ``,`` or ``+``)."""
    parts = [p.strip().lower() for p in name.replace(",", "+").split("+") if p.strip()]
    if not parts:
        raise ValueError("empty modality subset")
    subset_name(parts)  # raises on unknown names
    return tuple(m for m in MODALITIES if m in set(parts))


class Normalisation(BaseModel):
    """Per-channel ``(x - mean) / std`` applied after a modality is scaled to [0, 1]."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    mean: list[float]
    std: list[float]

    @model_validator(mode="after")
    def _check(self) -> Normalisation:
        if len(self.mean) != len(self.std) or not self.mean:
            raise ValueError("mean and std must be non-empty and of equal length")
        if any(s <= 0 for s in self.std):
            raise ValueError("std must be positive")
        return self


class PreprocessSpec(BaseModel):
    """What turns aligned crops into a model's input tensors (:func:`models.preprocess
    .preprocess`): the input side, per-modality normalisation and the depth range.

    A trained model's :class:`ModelSpec` carries these fields (``ModelSpec.preprocessing``
    gives them as one); code that only preprocesses — training, benchmarks, tests — builds
    this instead of a whole model spec with made-up operating points.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    input_size: int = Field(gt=15, le=1024, description="Square input side S in pixels")
    normalisation: dict[str, Normalisation] = Field(default_factory=lambda: default_normalisation())
    depth_range_mm: float = Field(
        default=120.0, gt=0, description="Half-range of face-relative depth mapped to [0, 1]"
    )


class ModelSpec(BaseModel):
    """Everything needed to feed, interpret and describe one trained model: the
    preprocessing contract (:attr:`preprocessing`) and the record around it (operating
    points, calibration, provenance)."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    schema_version: int = SCHEMA_VERSION
    name: str = Field(description="Model name, e.g. flexlive-lite")
    version: str = Field(description="Model version")
    modalities: list[str] = Field(default_factory=lambda: [str(m) for m in MODALITIES])
    input_size: int = Field(gt=15, le=1024, description="Square input side S in pixels")
    normalisation: dict[str, Normalisation]
    depth_range_mm: float = Field(
        default=120.0, gt=0, description="Half-range of face-relative depth mapped to [0, 1]"
    )
    supported_subsets: list[str] = Field(
        default_factory=lambda: [subset_name(s) for s in all_subsets()]
    )
    operating_points: dict[str, float] = Field(
        description="Named thresholds on the bona fide score, calibrated on a dev split"
    )
    subset_operating_points: dict[str, dict[str, float]] = Field(
        default_factory=dict,
        description="Thresholds per modality subset (e.g. 'rgb' → {'eer': 0.6}), calibrated on "
        "the dev split with only that subset present; a subset or operating point missing here "
        "falls back to operating_points. Score distributions shift with the modalities present, "
        "so one threshold for every subset would mis-calibrate the smaller ones.",
    )
    default_operating_point: str = "eer"
    uncertain_margin: float = Field(
        default=0.0, ge=0, lt=0.5, description="Scores within this of the threshold: uncertain"
    )
    backbone: str
    fusion: str
    training_data: str
    evaluation: dict[str, Any] = Field(default_factory=dict)
    created: str
    has_pixel_map: bool = False
    ood_thresholds: dict[str, float] = Field(
        default_factory=dict,
        description="Per modality subset: an 'ood_distance' above this is out of distribution "
        "(calibrated on the dev split at ood_percentile). Empty: the model has no OOD output.",
    )
    ood_percentile: float | None = Field(
        default=None, gt=0, le=100, description="Dev-split percentile the OOD thresholds sit at"
    )
    rgb_expert: dict[str, Any] | None = Field(
        default=None,
        description="Fusion with the RGB expert (models.fusion.ExpertFusion as JSON): per "
        "modality subset with colour, logistic weights and fused operating points. None: the "
        "model was not calibrated with an expert; the service then reports the expert's score "
        "without fusing it.",
    )

    @field_validator("schema_version")
    @classmethod
    def _schema(cls, v: int) -> int:
        if v != SCHEMA_VERSION:
            raise ValueError(f"unsupported schema version {v}; this build reads {SCHEMA_VERSION}")
        return v

    @field_validator("modalities")
    @classmethod
    def _modalities(cls, v: list[str]) -> list[str]:
        if tuple(v) != MODALITIES:
            raise ValueError(f"modality order must be {list(MODALITIES)}, got {v}")
        return v

    @field_validator("supported_subsets")
    @classmethod
    def _subsets(cls, v: list[str]) -> list[str]:
        if not v:
            raise ValueError("at least one supported modality subset is required")
        return [subset_name(parse_subset(s)) for s in v]

    @field_validator("subset_operating_points")
    @classmethod
    def _subset_ops(cls, v: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
        out: dict[str, dict[str, float]] = {}
        for subset, ops in v.items():
            for k, t in ops.items():
                if not 0.0 <= t <= 1.0:
                    raise ValueError(f"threshold '{k}' of subset '{subset}' is outside [0, 1]")
            out[subset_name(parse_subset(subset))] = dict(ops)
        return out

    @field_validator("ood_thresholds")
    @classmethod
    def _ood(cls, v: dict[str, float]) -> dict[str, float]:
        out: dict[str, float] = {}
        for subset, t in v.items():
            if not t > 0:
                raise ValueError(f"OOD threshold of subset '{subset}' must be positive")
            out[subset_name(parse_subset(subset))] = float(t)
        return out

    @field_validator("rgb_expert")
    @classmethod
    def _expert(cls, v: dict[str, Any] | None) -> dict[str, Any] | None:
        if v is None:
            return None
        from models.fusion import ExpertFusion  # models.fusion imports this module

        return ExpertFusion.model_validate(v).model_dump(mode="json")

    def expert_fusion(self) -> ExpertFusion | None:
        """The RGB-expert fusion parameters, parsed (None when absent)."""
        if self.rgb_expert is None:
            return None
        from models.fusion import ExpertFusion

        return ExpertFusion.model_validate(self.rgb_expert)

    @model_validator(mode="after")
    def _cross(self) -> ModelSpec:
        for m in MODALITIES:
            if m not in self.normalisation:
                raise ValueError(f"normalisation for '{m}' is missing")
            if len(self.normalisation[m].mean) != CHANNELS[m]:
                raise ValueError(f"normalisation for '{m}' needs {CHANNELS[m]} channel(s)")
        if not self.operating_points:
            raise ValueError("at least one operating point is required")
        for k, t in self.operating_points.items():
            if not 0.0 <= t <= 1.0:
                raise ValueError(f"operating point '{k}' threshold {t} is outside [0, 1]")
        if self.default_operating_point not in self.operating_points:
            raise ValueError(
                f"default operating point '{self.default_operating_point}' is not one of "
                f"{sorted(self.operating_points)}"
            )
        return self

    # -- metadata (de)serialisation -------------------------------------------------
    def to_metadata(self) -> dict[str, str]:
        """One ``flexlive.<field>`` key per field, values JSON-encoded."""
        data = self.model_dump(mode="json")
        return {META_PREFIX + k: json.dumps(v, sort_keys=True) for k, v in data.items()}

    @classmethod
    def from_metadata(cls, meta: Mapping[str, str]) -> ModelSpec:
        """Read a spec back from ONNX ``metadata_props``; raise :class:`ModelSpecError`."""
        fields: dict[str, Any] = {}
        for key, raw in meta.items():
            if not key.startswith(META_PREFIX):
                continue
            name = key[len(META_PREFIX) :]
            try:
                fields[name] = json.loads(raw)
            except json.JSONDecodeError as exc:
                raise ModelSpecError(f"metadata '{key}' is not valid JSON: {exc.msg}") from None
        if not fields:
            raise ModelSpecError(
                f"model has no FlexLive metadata (no '{META_PREFIX}*' keys); "
                "export it with `liveness export`"
            )
        required = [n for n, f in cls.model_fields.items() if f.is_required() and n not in fields]
        if required:
            raise ModelSpecError(
                "model metadata is missing " + ", ".join(META_PREFIX + r for r in required)
            )
        try:
            return cls.model_validate(fields)
        except ValidationError as exc:
            problems = "; ".join(
                f"{META_PREFIX}{'.'.join(str(p) for p in e['loc']) or '<root>'}: {e['msg']}"
                for e in exc.errors()
            )
            raise ModelSpecError(f"model metadata is malformed: {problems}") from None

    @property
    def preprocessing(self) -> PreprocessSpec:
        """The preprocessing contract of this model."""
        return PreprocessSpec(
            input_size=self.input_size,
            normalisation=self.normalisation,
            depth_range_mm=self.depth_range_mm,
        )

    def threshold(
        self, operating_point: str | None = None, subset: Iterable[str] | None = None
    ) -> float:
        """Threshold of an operating point, for a modality subset when one was calibrated."""
        name = operating_point or self.default_operating_point
        if name not in self.operating_points:
            raise KeyError(
                f"unknown operating point '{name}'; this model has {sorted(self.operating_points)}"
            )
        if subset is not None:
            chosen = list(subset)
            if chosen:
                per_subset = self.subset_operating_points.get(subset_name(chosen), {})
                if name in per_subset:
                    return per_subset[name]
        return self.operating_points[name]

    def ood_threshold(self, subset: Iterable[str]) -> float | None:
        """The OOD distance threshold of a modality subset, None when not calibrated."""
        chosen = list(subset)
        return self.ood_thresholds.get(subset_name(chosen)) if chosen else None

    def supports(self, subset: Iterable[str]) -> bool:
        return subset_name(subset) in self.supported_subsets


def default_normalisation() -> dict[str, Normalisation]:
    """Normalisation used by FlexLive's own networks (inputs first scaled to [0, 1])."""
    return {
        "rgb": Normalisation(mean=[0.5, 0.5, 0.5], std=[0.25, 0.25, 0.25]),
        "depth": Normalisation(mean=[0.5], std=[0.25]),
        "ir": Normalisation(mean=[0.5], std=[0.25]),
    }
