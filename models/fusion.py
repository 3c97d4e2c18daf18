"""Score fusion of the flexible-modal model and the RGB expert (numpy only).

Per modality subset with colour, the fused bona fide score is a logistic regression on the
two components' logits::

    fused = sigmoid(w_flexmodal · logit(flexmodal) + w_expert · logit(rgb_expert) + bias)

fitted on a dev set (:func:`fit_logistic`) and with its own operating points (thresholds
on the fused score, calibrated on the same dev set with :func:`models.metrics.calibrate`).
The parameters travel in the flexible-modal model's metadata (``flexlive.rgb_expert``,
see :class:`ExpertFusion`), so the service needs nothing else to apply them.
"""

from __future__ import annotations

import math

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from models.spec import parse_subset, subset_name

#: Component scores are clipped to [EPS, 1 − EPS] before taking logits.
EPS = 1e-4


def logit(p: float | np.ndarray) -> np.ndarray:
    q = np.clip(np.asarray(p, dtype=np.float64), EPS, 1.0 - EPS)
    return np.log(q / (1.0 - q))


def sigmoid(z: float | np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.asarray(z, dtype=np.float64)))


class SubsetFusion(BaseModel):
    """Weights and operating points of one modality subset."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    w_flexmodal: float
    w_expert: float
    bias: float
    operating_points: dict[str, float] = Field(
        description="Thresholds on the fused score (same names as the model's)"
    )

    def fuse(self, flexmodal: float, expert: float) -> float:
        z = self.w_flexmodal * logit(flexmodal) + self.w_expert * logit(expert) + self.bias
        return float(sigmoid(z))


class ExpertFusion(BaseModel):
    """What ``flexlive.rgb_expert`` holds: the expert it was fitted with and per subset."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    expert: str = Field(description="Expert name and version, e.g. 'minifasnet v2+v1se'")
    expert_sha256: dict[str, str] = Field(description="sha256 per expert ONNX file")
    subsets: dict[str, SubsetFusion]
    calibration: str = Field(description="The dev set the fusion was fitted on")

    @field_validator("subsets")
    @classmethod
    def _subsets(cls, v: dict[str, SubsetFusion]) -> dict[str, SubsetFusion]:
        out = {}
        for name, fusion in v.items():
            subset = parse_subset(name)
            if "rgb" not in subset:
                raise ValueError(f"subset '{name}' has no colour; the RGB expert cannot apply")
            for op, t in fusion.operating_points.items():
                if not 0.0 <= t <= 1.0:
                    raise ValueError(f"fused threshold '{op}' of '{name}' is outside [0, 1]")
            out[subset_name(subset)] = fusion
        return out

    def for_subset(self, subset: list[str] | tuple[str, ...]) -> SubsetFusion | None:
        return self.subsets.get(subset_name(subset)) if subset else None


def fit_logistic(
    x: np.ndarray,
    y: np.ndarray,
    weights: np.ndarray | None = None,
    l2: float = 1e-2,
    iterations: int = 50,
) -> tuple[np.ndarray, float]:
    """Weighted L2-regularised logistic regression by Newton's method.

    ``x``: N×D features, ``y``: N labels in {0, 1}, ``weights``: N sample weights (mean 1
    after normalisation). Returns (coefficients, intercept); the intercept is not
    penalised.
    """
    x = np.asarray(x, np.float64)
    y = np.asarray(y, np.float64)
    n, d = x.shape
    w = np.ones(n) if weights is None else np.asarray(weights, np.float64)
    if n == 0 or len(np.unique(y)) < 2:
        raise ValueError("logistic fusion needs both bona fide and attack samples")
    w = w * (n / w.sum())
    a = np.hstack([x, np.ones((n, 1))])
    beta = np.zeros(d + 1)
    penalty = np.full(d + 1, l2)
    penalty[-1] = 0.0
    for _ in range(iterations):
        p = sigmoid(a @ beta)
        grad = a.T @ (w * (p - y)) / n + penalty * beta
        hess = (a * (w * p * (1 - p))[:, None]).T @ a / n + np.diag(penalty + 1e-9)
        step = np.linalg.solve(hess, grad)
        beta -= step
        if float(np.max(np.abs(step))) < 1e-8:
            break
    if not np.all(np.isfinite(beta)):
        raise ValueError("logistic fusion did not converge")
    return beta[:-1], float(beta[-1])


def balanced_weights(labels: np.ndarray, groups: list[str]) -> np.ndarray:
    """Sample weights giving each (label, group) cell the same total weight within its
    label, and both labels the same total weight."""
    labels = np.asarray(labels)
    out = np.zeros(len(labels))
    for label in (0, 1):
        mask = labels == label
        cells = sorted({g for g, m in zip(groups, mask, strict=True) if m})
        for cell in cells:
            sel = mask & np.array([g == cell for g in groups])
            out[sel] = 1.0 / (len(cells) * sel.sum())
    return out * (len(labels) / out.sum())


def clip_unit(v: float) -> float:
    return float(min(1.0, max(0.0, v))) if math.isfinite(v) else 0.5
