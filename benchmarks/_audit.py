"""What the shortcut audits share: the face / border regions of an aligned crop, the
global-statistics features, the trivial classifiers (logistic regression and a small MLP,
numpy only), dev-EER evaluation, sample selection and Markdown / JSON output.

Used by ``pad_baselines.py`` (trivial baselines on the whole crop or on its border ring
only) and ``pad_occlusion.py`` (occlusion sensitivity of an ONNX model).

The face region follows the project's one crop convention (:mod:`models.crop`): every
aligned crop puts the five landmarks on the same template (eyes at y ≈ 0.47·S, mouth at
y ≈ 0.73·S, x between 0.39·S and 0.61·S for ``FACE_SCALE`` 0.72), so the face — forehead
to chin — lies in the central square and the outer ``ring`` pixels (16 at 112 px: 49 % of
the area) hold background, hair, shoulders, and the edges of a print, screen or mask.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from models.crop import template
from models.datasets.crops import CropCache
from models.metrics import BONA_FIDE, calibrate, eer, pad_report
from models.preprocess import FaceCrops, preprocess
from models.spec import MODALITIES, PreprocessSpec

#: Width of the border ring in pixels of a 112-pixel crop (scaled with the crop size).
RING_PX = 16
REF_SIZE = 112
REGIONS = ("full", "border")

#: Preprocessing of the trivial baselines: the project's default normalisation at 112 px.
SPEC = PreprocessSpec(input_size=REF_SIZE)


# -- regions of the aligned crop ------------------------------------------------------------
def ring_width(size: int, ring: int = RING_PX) -> int:
    """The ring width (given in pixels of a 112-pixel crop) at crop side ``size``."""
    return int(round(ring * size / REF_SIZE))


def face_mask(size: int, ring: int = RING_PX) -> np.ndarray:
    """Bool ``size``×``size`` mask, True on the face region (all but the outer ring).

    Refuses a ring so wide that a template landmark (eye, nose, mouth corner) of the
    crop convention would fall into it, or closer to it than 10 % of the side.
    """
    r = ring_width(size, ring)
    if r < 0:
        raise ValueError(f"ring must be >= 0, got {ring}")
    lm = template(size)
    margin = 0.1 * size
    if lm.min() - margin < r or lm.max() + margin > size - r:
        raise ValueError(
            f"a {ring}-px ring (at 112 px) reaches the face: the crop convention puts "
            f"landmarks between {lm.min():.0f} and {lm.max():.0f} px of {size}"
        )
    m = np.zeros((size, size), dtype=bool)
    m[r : size - r, r : size - r] = True
    return m


def border_mask(size: int, ring: int = RING_PX) -> np.ndarray:
    """Bool mask of the outer ring (the complement of :func:`face_mask`)."""
    return ~face_mask(size, ring)


def mask_face(c: FaceCrops, ring: int = RING_PX) -> FaceCrops:
    """The crops with the face region blanked in every modality: RGB and IR black, depth a
    hole. After :func:`models.preprocess.preprocess` the border pixels are then a function
    of the border alone (the depth reference falls back to the border's median, the IR gain
    to the border's 99th percentile)."""

    def blank(x: np.ndarray | None) -> np.ndarray | None:
        if x is None:
            return None
        y = x.copy()
        y[face_mask(x.shape[0], ring)] = 0
        return y

    return FaceCrops(
        rgb=blank(c.rgb), depth=blank(c.depth), ir=blank(c.ir), depth_scale=c.depth_scale
    )


# -- global-statistics features -------------------------------------------------------------
def channel_stats(x: np.ndarray) -> list[float]:
    """Mean, std, 5/25/50/75/95th percentiles, mean |horizontal| and |vertical| gradient of
    one 2-D channel."""
    q = np.percentile(x, [5, 25, 50, 75, 95])
    gx = np.abs(np.diff(x, axis=1)).mean()
    gy = np.abs(np.diff(x, axis=0)).mean()
    return [float(x.mean()), float(x.std()), *map(float, q), float(gx), float(gy)]


def region_stats(x: np.ndarray, mask: np.ndarray) -> list[float]:
    """:func:`channel_stats` over the pixels of ``mask`` only (gradients between pixel
    pairs that both lie in the mask)."""
    v = x[mask]
    q = np.percentile(v, [5, 25, 50, 75, 95])
    hx = mask[:, 1:] & mask[:, :-1]
    hy = mask[1:, :] & mask[:-1, :]
    gx = np.abs(np.diff(x, axis=1))[hx].mean()
    gy = np.abs(np.diff(x, axis=0))[hy].mean()
    return [float(v.mean()), float(v.std()), *map(float, q), float(gx), float(gy)]


def modality_features(
    c: FaceCrops, region: str = "full", ring: int = RING_PX, spec: PreprocessSpec = SPEC
) -> dict[str, np.ndarray]:
    """Per present modality, the statistics of every preprocessed channel.

    ``full``: over the whole crop, as the network sees it. ``border``: the face region is
    blanked *before* preprocessing (:func:`mask_face`) and statistics are taken over the
    ring only, so nothing of the face reaches the features.
    """
    if region not in REGIONS:
        raise ValueError(f"region must be one of {REGIONS}, got {region!r}")
    if region == "border":
        c = mask_face(c, ring)
    t = preprocess(c, spec)
    mask = border_mask(spec.input_size, ring) if region == "border" else None
    out: dict[str, np.ndarray] = {}
    for m in c.present:
        row: list[float] = []
        for ch in t[m]:
            row += channel_stats(ch) if mask is None else region_stats(ch, mask)
        out[m] = np.asarray(row, dtype=np.float64)
    return out


def feature_blocks(
    cache: CropCache, region: str = "full", ring: int = RING_PX, spec: PreprocessSpec = SPEC
) -> dict[str, np.ndarray]:
    """``{modality: N×F}`` for every sample of ``cache`` (every modality must be present).

    Preprocessing treats modalities independently, so a subset's features are the
    concatenation of its modalities' blocks (:func:`subset_features`)."""
    rows = [modality_features(cache[i], region, ring, spec) for i in range(len(cache))]
    missing = [m for m in MODALITIES if any(m not in r for r in rows)]
    if missing:
        raise ValueError(f"every sample needs all modalities; missing {missing} in some")
    return {m: np.stack([r[m] for r in rows]) for m in MODALITIES}


def subset_features(blocks: dict[str, np.ndarray], subset: Sequence[str]) -> np.ndarray:
    return np.concatenate([blocks[m] for m in MODALITIES if m in subset], axis=1)


# -- trivial classifiers (numpy) --------------------------------------------------------------
Scorer = Callable[[np.ndarray], np.ndarray]


def _standardiser(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return X.mean(0), X.std(0) + 1e-8


def fit_logreg(X: np.ndarray, y: np.ndarray, l2: float = 1e-3, steps: int = 3000) -> tuple:
    """L2 logistic regression by full-batch gradient descent on standardised features."""
    mu, sd = _standardiser(X)
    Z = (X - mu) / sd
    w, b = np.zeros(Z.shape[1]), 0.0
    lr = 0.5
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-(Z @ w + b)))
        g = p - y
        w -= lr * (Z.T @ g / len(y) + l2 * w)
        b -= lr * g.mean()
    return mu, sd, w, b


def predict_logreg(model: tuple, X: np.ndarray) -> np.ndarray:
    mu, sd, w, b = model
    return 1.0 / (1.0 + np.exp(-(((X - mu) / sd) @ w + b)))


def _mlp_forward(p: dict[str, np.ndarray], Z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    h = np.maximum(Z @ p["W1"] + p["b1"], 0.0)
    return h, h @ p["w2"] + p["b2"]


def _balanced_weights(y: np.ndarray) -> np.ndarray:
    pos = max(float(y.mean()), 1e-9)
    return np.where(y == 1, 0.5 / pos, 0.5 / max(1.0 - pos, 1e-9))


def _bce(logit: np.ndarray, y: np.ndarray, w: np.ndarray) -> float:
    return float((w * (np.logaddexp(0.0, logit) - y * logit)).mean())


def fit_mlp(
    X: np.ndarray,
    y: np.ndarray,
    X_dev: np.ndarray | None = None,
    y_dev: np.ndarray | None = None,
    hidden: int = 64,
    l2: float = 1e-4,
    steps: int = 2000,
    lr: float = 1e-2,
    seed: int = 0,
) -> tuple:
    """One hidden layer of ``hidden`` ReLUs, class-balanced cross-entropy, full-batch Adam.

    With a dev split, the parameters of the step with the lowest class-balanced dev loss
    (checked every 50 steps) are kept: the step count is chosen on dev, as for a network.
    """
    rng = np.random.default_rng(seed)
    mu, sd = _standardiser(X)
    Z = (X - mu) / sd
    d = Z.shape[1]
    p = {
        "W1": rng.normal(0.0, np.sqrt(2.0 / d), (d, hidden)),
        "b1": np.zeros(hidden),
        "w2": rng.normal(0.0, np.sqrt(1.0 / hidden), hidden),
        "b2": np.zeros(1),
    }
    m = {k: np.zeros_like(v) for k, v in p.items()}
    v2 = {k: np.zeros_like(v) for k, v in p.items()}
    cw = _balanced_weights(y)
    Zd = None if X_dev is None else (X_dev - mu) / sd
    cwd = None if y_dev is None else _balanced_weights(y_dev)
    best, best_loss = {k: a.copy() for k, a in p.items()}, np.inf
    b1, b2, eps = 0.9, 0.999, 1e-8
    for t in range(1, steps + 1):
        h, logit = _mlp_forward(p, Z)
        g = cw * (1.0 / (1.0 + np.exp(-logit)) - y) / len(y)
        gh = np.outer(g, p["w2"]) * (h > 0)
        grads = {
            "W1": Z.T @ gh + l2 * p["W1"],
            "b1": gh.sum(0),
            "w2": h.T @ g + l2 * p["w2"],
            "b2": np.array([g.sum()]),
        }
        for k in p:
            m[k] = b1 * m[k] + (1 - b1) * grads[k]
            v2[k] = b2 * v2[k] + (1 - b2) * grads[k] ** 2
            p[k] -= lr * (m[k] / (1 - b1**t)) / (np.sqrt(v2[k] / (1 - b2**t)) + eps)
        if t % 50 == 0 or t == steps:
            if Zd is None or y_dev is None or cwd is None:
                best = p
                continue
            loss = _bce(_mlp_forward(p, Zd)[1], y_dev, cwd)
            if loss < best_loss:
                best_loss, best = loss, {k: a.copy() for k, a in p.items()}
    return mu, sd, best


def predict_mlp(model: tuple, X: np.ndarray) -> np.ndarray:
    mu, sd, p = model
    logit = _mlp_forward(p, (X - mu) / sd)[1]
    return 1.0 / (1.0 + np.exp(-np.clip(logit, -50.0, 50.0)))


def train_and_score(
    name: str, X: dict[str, np.ndarray], y: dict[str, np.ndarray], seed: int = 0
) -> dict[str, np.ndarray]:
    """Fit baseline ``name`` (``logreg`` or ``mlp``) on ``X['train']``; scores of every split."""
    if name == "logreg":
        lr = fit_logreg(X["train"], y["train"])
        return {s: predict_logreg(lr, x) for s, x in X.items()}
    if name == "mlp":
        mlp = fit_mlp(X["train"], y["train"], X["dev"], y["dev"], seed=seed)
        return {s: predict_mlp(mlp, x) for s, x in X.items()}
    raise ValueError(f"unknown baseline {name!r}; use one of {BASELINES}")


BASELINES = ("logreg", "mlp")


# -- evaluation -----------------------------------------------------------------------------
def species_eer(scores: np.ndarray, labels: np.ndarray, species: Sequence[str]) -> dict[str, float]:
    """Per attack species: the EER of bona fide vs that species alone (threshold-free)."""
    sp = np.asarray(species, dtype=object)
    y = np.asarray(labels)
    out: dict[str, float] = {}
    for name in sorted({str(s) for s in sp[y == 0]}):
        keep = (y == 1) | (sp == name)
        out[name] = eer(scores[keep], y[keep])[0]
    return out


def dev_eer_report(
    dev_scores: np.ndarray, dev: CropCache, test_scores: np.ndarray, test: CropCache
) -> dict[str, Any]:
    """Threshold at the dev EER, applied to test: the ``liveness eval`` protocol."""
    if len(set(dev.labels.tolist())) < 2:
        raise ValueError(
            "the dev split needs bona fide and attack samples to set a threshold at its EER"
        )
    ops = calibrate(dev_scores, dev.labels, dev.species)
    rep = pad_report(test_scores, test.labels, test.species, ops)
    out = {k: rep[k] for k in ("acer", "apcer", "apcer_species", "bpcer", "eer", "auc")}
    out["threshold"] = ops["eer"]
    out["apcer_per_species"] = {
        k: v["value"] for k, v in rep["operating_points"]["eer"]["apcer_per_species"].items()
    }
    out["eer_per_species"] = species_eer(test_scores, test.labels, test.species)
    return out


# -- samples --------------------------------------------------------------------------------
def select_balanced(species: Sequence[str], n: int, seed: int = 0) -> list[int]:
    """Up to ``n`` indices spread evenly over species (bona fide counts as one), shuffled
    within each species with ``seed``; returned in ascending order."""
    rng = np.random.default_rng(seed)
    groups: dict[str, list[int]] = {}
    for i, s in enumerate(species):
        groups.setdefault(str(s), []).append(i)
    queues = {k: list(rng.permutation(v)) for k, v in sorted(groups.items())}
    chosen: list[int] = []
    while len(chosen) < n and any(queues.values()):
        for k in list(queues):
            if queues[k] and len(chosen) < n:
                chosen.append(int(queues[k].pop(0)))
    return sorted(chosen)


def species_order(names: Sequence[str]) -> list[str]:
    """Bona fide first, then attack species in ``synth.SPECIES`` order (others sorted)."""
    try:
        from synth import SPECIES

        known = list(SPECIES)
    except Exception:  # the audits also run on data from other generators
        known = []
    uniq = set(names)
    head = [BONA_FIDE] if BONA_FIDE in uniq else []
    return head + [s for s in known if s in uniq] + sorted(uniq - set(known) - {BONA_FIDE})


# -- output ---------------------------------------------------------------------------------
def pct(x: float) -> str:
    return f"{100.0 * x:.1f} %" if np.isfinite(x) else "–"


def md_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def data_info(data: str | Path) -> dict[str, Any]:
    """Generator, version, seed and scale from ``DIR/manifest.json`` when there is one."""
    p = Path(data) / "manifest.json"
    if not p.is_file():
        return {}
    m = json.loads(p.read_text())
    return {k: m[k] for k in ("generator", "generator_version", "seed", "scale") if k in m}


def write_json(path: str | Path | None, obj: dict[str, Any]) -> None:
    if not path:
        return
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(obj, indent=2, sort_keys=False))
