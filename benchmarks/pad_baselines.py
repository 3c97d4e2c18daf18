"""Trivial baseline vs the network: is the benchmark harder than global statistics?

For every modality subset, a logistic regression on global per-modality statistics of the
preprocessed crops (mean, std, 5/25/50/75/95th percentiles, mean |horizontal and vertical
gradient| per channel; the same ``models.preprocess`` the network sees) is trained on the
train split, its threshold set at the dev EER, and ACER/EER/AUC measured on test — the
same protocol ``liveness eval`` applies to the network. numpy only.

    python benchmarks/pad_baselines.py --data data/bench --protocol intra --json out.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.datasets.crops import CropCache, restrict  # noqa: E402
from models.evaluate import SUBSET_ORDER  # noqa: E402
from models.metrics import calibrate, pad_report  # noqa: E402
from models.preprocess import preprocess  # noqa: E402
from models.spec import MODALITIES, ModelSpec, default_normalisation, subset_name  # noqa: E402

SPEC = ModelSpec(
    name="baseline",
    version="0",
    input_size=112,
    normalisation=default_normalisation(),
    operating_points={"eer": 0.5},
    backbone="logistic_regression",
    fusion="none",
    training_data="",
    created="",
)


def channel_stats(x: np.ndarray) -> list[float]:
    q = np.percentile(x, [5, 25, 50, 75, 95])
    gx = np.abs(np.diff(x, axis=1)).mean()
    gy = np.abs(np.diff(x, axis=0)).mean()
    return [float(x.mean()), float(x.std()), *map(float, q), float(gx), float(gy)]


def features(cache: CropCache, subset: tuple[str, ...]) -> np.ndarray:
    rows = []
    for i in range(len(cache)):
        t = preprocess(restrict(cache[i], subset), SPEC)
        row: list[float] = []
        for m in MODALITIES:
            for ch in t[m]:
                row += channel_stats(ch)
        rows.append(row)
    return np.asarray(rows, dtype=np.float64)


def fit_logreg(X: np.ndarray, y: np.ndarray, l2: float = 1e-3, steps: int = 3000) -> tuple:
    mu, sd = X.mean(0), X.std(0) + 1e-8
    Z = (X - mu) / sd
    w, b = np.zeros(Z.shape[1]), 0.0
    lr = 0.5
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-(Z @ w + b)))
        g = p - y
        w -= lr * (Z.T @ g / len(y) + l2 * w)
        b -= lr * g.mean()
    return mu, sd, w, b


def predict(model: tuple, X: np.ndarray) -> np.ndarray:
    mu, sd, w, b = model
    return 1.0 / (1.0 + np.exp(-(((X - mu) / sd) @ w + b)))


def run(data: str, protocol: str) -> dict[str, dict]:
    splits = {s: CropCache.from_protocol(data, protocol, s) for s in ("train", "dev", "test")}
    out: dict[str, dict] = {}
    for subset in SUBSET_ORDER:
        X = {s: features(c, subset) for s, c in splits.items()}
        model = fit_logreg(X["train"], splits["train"].labels.astype(np.float64))
        dev_s = predict(model, X["dev"])
        ops = calibrate(dev_s, splits["dev"].labels, splits["dev"].species)
        rep = pad_report(
            predict(model, X["test"]), splits["test"].labels, splits["test"].species, ops
        )
        out[subset_name(subset)] = {
            k: rep[k] for k in ("acer", "apcer", "apcer_species", "bpcer", "eer", "auc")
        }
        r = out[subset_name(subset)]
        print(
            f"{subset_name(subset):<14} ACER {r['acer']:7.2%}  EER {r['eer']:7.2%}  "
            f"AUC {r['auc']:.4f}"
        )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--protocol", default="intra")
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    res = run(a.data, a.protocol)
    if a.json:
        Path(a.json).write_text(json.dumps({"protocol": a.protocol, "baseline": res}, indent=2))


if __name__ == "__main__":
    main()
