"""Modality health: decide, per received modality, whether it carries usable signal.

A present modality that is broken (all zeros, mostly depth holes, saturated, constant) is
dropped before inference and reported, so the flexible-modal model scores the remaining
subset instead of being fed garbage. Statistics use a strided subsample: a 640×480 frame
costs well under a millisecond.
"""

from __future__ import annotations

import cv2
import numpy as np

from sensors.bundle import FrameBundle
from service.face.config import FaceStageConfig
from service.face.types import ModalityHealth, Reason

#: Reason code reported when a received modality is dropped.
UNUSABLE_REASON: dict[str, Reason] = {
    "rgb": Reason.RGB_UNUSABLE,
    "depth": Reason.DEPTH_UNUSABLE,
    "ir": Reason.IR_UNUSABLE,
}

_DEFAULT = FaceStageConfig()


def _subsample(arr: np.ndarray) -> np.ndarray:
    """A regular sample of the image: every 8th pixel of a VGA frame (4,800 samples),
    every 4th of a small image, all of a tiny crop."""
    side = min(arr.shape[0], arr.shape[1])
    step = 8 if side >= 256 else 4 if side >= 128 else 1
    return arr[::step, ::step]


def _full_scale(arr: np.ndarray) -> float:
    return 65535.0 if arr.dtype == np.uint16 else 255.0


def _intensity_health(
    name: str, arr: np.ndarray, cfg: FaceStageConfig, full_scale: float
) -> ModalityHealth:
    """Health of an intensity image (RGB or IR); statistics in 8-bit units.

    OpenCV reductions: numpy reductions over a 3-wide channel axis cost ~0.5 ms per frame.
    """
    sub = np.ascontiguousarray(_subsample(arr))
    if sub.ndim == 3:
        lo = cv2.min(cv2.min(sub[..., 0], sub[..., 1]), sub[..., 2])
        hi = cv2.max(cv2.max(sub[..., 0], sub[..., 1]), sub[..., 2])
    else:
        lo = hi = sub
    means, stds = cv2.meanStdDev(sub)
    to8 = 255.0 / full_scale
    mean_all = float(means.mean())
    var = float((stds**2 + means**2).mean()) - mean_all**2
    mean = mean_all * to8
    std = float(np.sqrt(max(var, 0.0))) * to8
    n = float(lo.size)
    saturated = np.count_nonzero(lo >= full_scale * 254.0 / 255.0) / n
    zeros = np.count_nonzero(hi == 0) / n
    stats = {"mean": mean, "std": std, "saturated": saturated, "zeros": zeros}
    if zeros >= 0.999:
        return ModalityHealth(name, False, "all zeros", stats)
    if saturated > cfg.health_max_saturated:
        return ModalityHealth(name, False, f"{saturated:.0%} of pixels saturated", stats)
    if std <= cfg.health_min_std:
        return ModalityHealth(name, False, f"constant image (std {std:.2f})", stats)
    return ModalityHealth(name, True, None, stats)


def _depth_health(depth: np.ndarray, depth_scale: float, cfg: FaceStageConfig) -> ModalityHealth:
    d = _subsample(depth)
    valid_mask = d > 0
    valid = float(valid_mask.mean())
    stats: dict[str, float] = {"valid": valid}
    if valid == 0.0:
        return ModalityHealth("depth", False, "all zeros (no depth)", stats)
    mm = d[valid_mask].astype(np.float32) * np.float32(depth_scale * 1000.0)
    stats["median_mm"] = float(np.median(mm))
    stats["std_mm"] = float(mm.std())
    saturated = float(np.mean(d == np.iinfo(np.uint16).max))
    stats["saturated"] = saturated
    if valid < cfg.health_min_depth_valid:
        return ModalityHealth("depth", False, f"{1.0 - valid:.0%} depth holes", stats)
    if saturated > cfg.health_max_saturated:
        return ModalityHealth("depth", False, f"{saturated:.0%} of depth at full scale", stats)
    if stats["std_mm"] <= cfg.health_min_std:
        return ModalityHealth(
            "depth", False, f"constant depth (std {stats['std_mm']:.2f} mm)", stats
        )
    return ModalityHealth("depth", True, None, stats)


def assess(bundle: FrameBundle, config: FaceStageConfig | None = None) -> dict[str, ModalityHealth]:
    """Health of every present modality of ``bundle`` (keys in modality order)."""
    cfg = config or _DEFAULT
    out: dict[str, ModalityHealth] = {}
    if bundle.rgb is not None:
        out["rgb"] = _intensity_health("rgb", bundle.rgb, cfg, 255.0)
    if bundle.depth is not None:
        out["depth"] = _depth_health(bundle.depth, bundle.depth_scale, cfg)
    if bundle.ir is not None:
        out["ir"] = _intensity_health("ir", bundle.ir, cfg, _full_scale(bundle.ir))
    return out


def usable(health: dict[str, ModalityHealth]) -> tuple[str, ...]:
    """Modalities that pass the health check, in modality order."""
    return tuple(m for m in ("rgb", "depth", "ir") if m in health and health[m].usable)


def dropped_reasons(health: dict[str, ModalityHealth]) -> list[Reason]:
    """Reason codes of the received modalities that were dropped."""
    reasons = [UNUSABLE_REASON[m] for m, h in health.items() if not h.usable]
    if health and not usable(health):
        reasons.append(Reason.NO_USABLE_MODALITY)
    return reasons
