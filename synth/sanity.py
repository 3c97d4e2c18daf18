"""A check that the benchmark is not trivial: logistic regression on global per-modality
image statistics (means, spreads, percentiles, depth hole fraction and relief, sharpness).

A benchmark such a baseline solves is worthless; this reports how far it gets per modality
subset so every result table can show it beside the network. numpy + OpenCV only.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from models.datasets.protocol import ProtocolEntry, read_protocol

MODALITY_FEATURES = ("rgb", "depth", "ir")


def _pcts(x: np.ndarray) -> list[float]:
    if x.size == 0:
        return [0.0] * 5
    return [float(v) for v in np.percentile(x, [5, 25, 50, 75, 95])]


def _sharpness(img: np.ndarray) -> float:
    return float(np.log1p(cv2.Laplacian(img.astype(np.float32), cv2.CV_32F).var()))


def global_features(root: Path, e: ProtocolEntry) -> dict[str, np.ndarray]:
    """Global statistics of one sample, per modality."""
    bgr = cv2.imread(str(root / e.rgb), cv2.IMREAD_COLOR)
    depth = cv2.imread(str(root / e.depth), cv2.IMREAD_UNCHANGED)
    ir = cv2.imread(str(root / e.ir), cv2.IMREAD_UNCHANGED)
    if bgr is None or depth is None or ir is None:
        raise FileNotFoundError(f"unreadable sample {e.rgb}")
    rgb = bgr[..., ::-1].astype(np.float32) / 255.0
    hsv = cv2.cvtColor(bgr, cv2.COLOR_BGR2HSV).astype(np.float32) / 255.0
    f_rgb = [
        *rgb.mean((0, 1)),
        *rgb.std((0, 1)),
        float(hsv[..., 1].mean()),
        float(hsv[..., 1].std()),
    ]
    f_rgb += _pcts(rgb.mean(2)) + [_sharpness(rgb.mean(2))]
    d = depth.astype(np.float32)
    valid = d[d > 0]
    rel = valid - np.median(valid) if valid.size else valid
    f_d = [float(valid.size / d.size), float(rel.std()) if rel.size else 0.0, *_pcts(rel)]
    irf = ir.astype(np.float32) / 255.0
    f_ir = [float(irf.mean()), float(irf.std()), *_pcts(irf), _sharpness(irf)]
    return {
        "rgb": np.asarray(f_rgb, np.float64),
        "depth": np.asarray(f_d, np.float64),
        "ir": np.asarray(f_ir, np.float64),
    }


def features(
    root: Path, entries: Sequence[ProtocolEntry]
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    per = [global_features(root, e) for e in entries]
    X = {m: np.stack([p[m] for p in per]) for m in MODALITY_FEATURES}
    y = np.array([e.label for e in entries], np.float64)
    return X, y


def fit_logistic(X: np.ndarray, y: np.ndarray, l2: float = 1e-3, iters: int = 2000) -> np.ndarray:
    """Class-balanced L2 logistic regression by Newton steps; weights incl. bias."""
    A = np.hstack([X, np.ones((len(X), 1))])
    w = np.zeros(A.shape[1])
    cw = np.where(y == 1, 0.5 / max(y.mean(), 1e-9), 0.5 / max(1 - y.mean(), 1e-9))
    for _ in range(min(iters, 50)):
        p = 1 / (1 + np.exp(-np.clip(A @ w, -30, 30)))
        g = A.T @ (cw * (p - y)) / len(y) + l2 * w
        Hm = (A * (cw * p * (1 - p))[:, None]).T @ A / len(y) + l2 * np.eye(len(w))
        step = np.linalg.solve(Hm, g)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return w


def _scores(X: np.ndarray, w: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-np.clip(np.hstack([X, np.ones((len(X), 1))]) @ w, -30, 30)))


def eer_threshold(scores: np.ndarray, y: np.ndarray) -> float:
    """Threshold where APCER and BPCER are closest (0.5 if a class is missing)."""
    best, thr = 2.0, 0.5
    if (y == 0).sum() == 0 or (y == 1).sum() == 0:
        return thr
    for t in np.unique(scores):
        apcer = float((scores[y == 0] >= t).mean())
        bpcer = float((scores[y == 1] < t).mean())
        if abs(apcer - bpcer) < best:
            best, thr = abs(apcer - bpcer), float(t)
    return thr


def evaluate(
    root: Path, protocol: str, subsets: Sequence[Sequence[str]] | None = None
) -> dict[str, dict[str, float]]:
    """Train on ``train``, threshold at the dev EER, report test APCER/BPCER/ACER."""
    root = Path(root)
    lists = {
        s: read_protocol(root / "protocols" / protocol / f"{s}.txt")
        for s in ("train", "dev", "test")
    }
    feats = {s: features(root, lists[s]) for s in lists}
    subsets = subsets or (
        ("rgb",),
        ("depth",),
        ("ir",),
        ("rgb", "depth"),
        ("rgb", "ir"),
        ("rgb", "depth", "ir"),
    )
    out: dict[str, dict[str, float]] = {}
    for sub in subsets:

        def stack(split: str, sub: Sequence[str] = sub) -> np.ndarray:
            return np.hstack([feats[split][0][m] for m in sub])

        Xtr, ytr = stack("train"), feats["train"][1]
        mu, sd = Xtr.mean(0), Xtr.std(0) + 1e-9
        w = fit_logistic((Xtr - mu) / sd, ytr)
        thr = eer_threshold(_scores((stack("dev") - mu) / sd, w), feats["dev"][1])
        st, yt = _scores((stack("test") - mu) / sd, w), feats["test"][1]
        apcer = float((st[yt == 0] >= thr).mean()) if (yt == 0).any() else 0.0
        bpcer = float((st[yt == 1] < thr).mean()) if (yt == 1).any() else 0.0
        species = np.array([e.species for e in lists["test"]])
        per_species = {
            sp: float((st[(yt == 0) & (species == sp)] >= thr).mean())
            for sp in sorted(set(species[yt == 0]))
        }
        out["+".join(sub)] = {
            "apcer": round(apcer, 4),
            "bpcer": round(bpcer, 4),
            "acer": round((apcer + bpcer) / 2, 4),
            "accuracy": round(float(((st >= thr) == (yt == 1)).mean()), 4),
            "worst_species_apcer": round(max(per_species.values()), 4) if per_species else 0.0,
            **{f"apcer_{k}": round(v, 4) for k, v in per_species.items()},
        }
    return out
