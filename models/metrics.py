"""PAD metrics after ISO/IEC 30107-3 (as Idiap's bob.pad computes them). numpy only.

Score direction: higher = more bona fide. A sample is *accepted as bona fide* when
``score >= threshold``.

- APCER (per attack instrument species, and the worst case across species as the
  headline): fraction of attack presentations accepted as bona fide.
- BPCER: fraction of bona fide presentations rejected.
- ACER = (APCER_worst + BPCER) / 2, a summary only.
- EER (pooled attacks) and its threshold; AUC; BPCER at APCER 5 % / 1 % (BPCER20 /
  BPCER100); APCER at BPCER 1 %.
- Clopper–Pearson 95 % intervals for every error rate: 0 accepted attacks out of 20
  only proves APCER ≤ 16.8 %.

Thresholds are chosen on a dev split (:func:`calibrate`) and applied to the test split
(:func:`evaluate_at`); never chosen on test.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

BONA_FIDE = "bona_fide"


def _arrays(
    scores: Sequence[float] | np.ndarray, labels: Sequence[int] | np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    s = np.asarray(scores, dtype=np.float64).ravel()
    y = np.asarray(labels).astype(np.int64).ravel()
    if s.shape != y.shape:
        raise ValueError(f"{s.size} scores but {y.size} labels")
    if not np.isfinite(s).all():
        raise ValueError("scores contain NaN or inf")
    return s, y


# -- intervals --------------------------------------------------------------------------
def _binom_cdf(k: int, n: int, p: float) -> float:
    """P(X <= k) for X ~ Binomial(n, p), summed in log space (no scipy)."""
    if k < 0:
        return 0.0
    if k >= n:
        return 1.0
    if p <= 0.0:
        return 1.0
    if p >= 1.0:
        return 0.0
    i = np.arange(k + 1, dtype=np.float64)
    lg = np.array([math.lgamma(n + 1) - math.lgamma(j + 1) - math.lgamma(n - j + 1) for j in i])
    logs = lg + i * math.log(p) + (n - i) * math.log1p(-p)
    m = logs.max()
    return float(min(1.0, math.exp(m) * np.exp(logs - m).sum()))


def clopper_pearson(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Exact binomial interval for ``k`` errors out of ``n`` trials."""
    if n <= 0:
        return (0.0, 1.0)
    if not 0 <= k <= n:
        raise ValueError(f"need 0 <= k <= n, got k={k}, n={n}")
    alpha = 1.0 - confidence

    def solve(f: Any, target: float) -> float:  # f increasing in p on [0, 1]
        lo, hi = 0.0, 1.0
        for _ in range(80):
            mid = 0.5 * (lo + hi)
            if f(mid) < target:
                lo = mid
            else:
                hi = mid
        return 0.5 * (lo + hi)

    # lower: P(X >= k | p) = alpha/2 ; upper: P(X <= k | p) = alpha/2
    lower = 0.0 if k == 0 else solve(lambda p: 1.0 - _binom_cdf(k - 1, n, p), alpha / 2)
    upper = 1.0 if k == n else solve(lambda p: -_binom_cdf(k, n, p), -alpha / 2)
    return (lower, upper)


@dataclass(frozen=True)
class Rate:
    """An error rate with its count and Clopper–Pearson 95 % interval."""

    errors: int
    total: int

    @property
    def value(self) -> float:
        return self.errors / self.total if self.total else float("nan")

    @property
    def interval(self) -> tuple[float, float]:
        return clopper_pearson(self.errors, self.total)

    def as_dict(self) -> dict[str, Any]:
        lo, hi = self.interval
        return {"value": self.value, "errors": self.errors, "total": self.total, "ci95": [lo, hi]}


# -- error rates at a threshold -----------------------------------------------------------
def bpcer(scores: np.ndarray, labels: np.ndarray, threshold: float) -> Rate:
    s, y = _arrays(scores, labels)
    bona = s[y == 1]
    return Rate(int((bona < threshold).sum()), int(bona.size))


def apcer_per_species(
    scores: np.ndarray, labels: np.ndarray, species: Sequence[str], threshold: float
) -> dict[str, Rate]:
    s, y = _arrays(scores, labels)
    sp = np.asarray(species, dtype=object).ravel()
    if sp.size != s.size:
        raise ValueError(f"{s.size} scores but {sp.size} species")
    out: dict[str, Rate] = {}
    for name in sorted({str(x) for x in sp[y == 0]}):
        a = s[(y == 0) & (sp == name)]
        out[name] = Rate(int((a >= threshold).sum()), int(a.size))
    return out


def worst_apcer(per_species: dict[str, Rate]) -> tuple[str, Rate]:
    """The species with the highest APCER (ties: the one with more samples)."""
    if not per_species:
        return ("", Rate(0, 0))
    name = max(per_species, key=lambda k: (per_species[k].value, per_species[k].total))
    return name, per_species[name]


# -- threshold-free summaries -------------------------------------------------------------
def eer(scores: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """Equal error rate over pooled attacks and the threshold that achieves it.

    Candidate thresholds are the midpoints between consecutive distinct scores (and just
    outside the extremes), so on separable scores the threshold sits in the middle of the
    gap rather than on the edge of the bona fide distribution. Among equally good
    candidates the middle one is taken.
    """
    s, y = _arrays(scores, labels)
    bona, atk = np.sort(s[y == 1]), np.sort(s[y == 0])
    if bona.size == 0 or atk.size == 0:
        raise ValueError("EER needs both bona fide and attack scores")
    u = np.unique(s)
    cand = np.concatenate(
        [[np.nextafter(u[0], -np.inf)], (u[:-1] + u[1:]) / 2.0, [np.nextafter(u[-1], np.inf)]]
    )
    bp = np.searchsorted(bona, cand, side="left") / bona.size  # bona < t
    ap = 1.0 - np.searchsorted(atk, cand, side="left") / atk.size  # attack >= t
    gap = np.abs(ap - bp)
    e = (ap + bp) / 2.0
    best = np.flatnonzero(np.isclose(gap, gap.min()) & np.isclose(e, e[np.argmin(gap)]))
    i = int(best[len(best) // 2])
    return float(e[i]), float(np.clip(cand[i], 0.0, 1.0))


def auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve: P(score_bona > score_attack), ties count one half."""
    s, y = _arrays(scores, labels)
    n1, n0 = int((y == 1).sum()), int((y == 0).sum())
    if n1 == 0 or n0 == 0:
        raise ValueError("AUC needs both bona fide and attack scores")
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(s.size, dtype=np.float64)
    sorted_s = s[order]
    # average ranks over ties
    _, first, counts = np.unique(sorted_s, return_index=True, return_counts=True)
    avg = first + (counts - 1) / 2.0 + 1.0
    ranks[order] = np.repeat(avg, counts)
    return float((ranks[y == 1].sum() - n1 * (n1 + 1) / 2.0) / (n1 * n0))


# -- thresholds from dev --------------------------------------------------------------------
def threshold_at_apcer(
    scores: np.ndarray, labels: np.ndarray, target: float, species: Sequence[str] | None = None
) -> float:
    """Lowest threshold with APCER <= ``target`` for every species (pooled if no species)."""
    s, y = _arrays(scores, labels)
    groups = (
        [s[y == 0]]
        if species is None
        else [
            s[(y == 0) & (np.asarray(species, dtype=object) == name)]
            for name in {str(x) for x in np.asarray(species, dtype=object)[y == 0]}
        ]
    )
    t = 0.0
    for atk in groups:
        if atk.size == 0:
            continue
        desc = np.sort(atk)[::-1]
        k = int(math.floor(target * desc.size + 1e-9))  # attacks we may accept
        if k < desc.size:
            t = max(t, float(np.nextafter(desc[k], np.inf)))
    return float(min(t, 1.0))


def threshold_at_bpcer(scores: np.ndarray, labels: np.ndarray, target: float) -> float:
    """Highest threshold with BPCER <= ``target``."""
    s, y = _arrays(scores, labels)
    bona = np.sort(s[y == 1])
    if bona.size == 0:
        raise ValueError("no bona fide scores")
    k = int(math.floor(target * bona.size + 1e-9))  # bona fide we may reject
    return float(bona[min(k, bona.size - 1)])


def calibrate(
    scores: np.ndarray, labels: np.ndarray, species: Sequence[str] | None = None
) -> dict[str, float]:
    """Named operating points on a dev split: ``eer``, ``apcer5``, ``apcer1``, ``bpcer1``."""
    return {
        "eer": eer(scores, labels)[1],
        "apcer5": threshold_at_apcer(scores, labels, 0.05, species),
        "apcer1": threshold_at_apcer(scores, labels, 0.01, species),
        "bpcer1": threshold_at_bpcer(scores, labels, 0.01),
    }


def evaluate_at(
    scores: np.ndarray, labels: np.ndarray, species: Sequence[str], threshold: float
) -> dict[str, Any]:
    """APCER per species / worst, BPCER, ACER at one threshold (with 95 % intervals)."""
    per = apcer_per_species(scores, labels, species, threshold)
    worst_name, worst = worst_apcer(per)
    b = bpcer(scores, labels, threshold)
    return {
        "threshold": float(threshold),
        "apcer_worst": worst.as_dict(),
        "apcer_worst_species": worst_name,
        "apcer_per_species": {k: v.as_dict() for k, v in per.items()},
        "bpcer": b.as_dict(),
        "acer": (worst.value + b.value) / 2.0,
    }


def pad_report(
    test_scores: np.ndarray,
    test_labels: np.ndarray,
    test_species: Sequence[str],
    operating_points: dict[str, float],
) -> dict[str, Any]:
    """Test-split report with dev-calibrated thresholds (``calibrate`` on dev first).

    ``acer``/``apcer``/``bpcer`` are at the dev-EER threshold; ``bpcer20``/``bpcer100`` are
    the test BPCER at the dev thresholds for APCER 5 %/1 %; ``apcer_at_bpcer1`` is the
    worst-species test APCER at the dev threshold for BPCER 1 %.
    """
    test_eer, _ = eer(test_scores, test_labels)
    at = {
        name: evaluate_at(test_scores, test_labels, test_species, t)
        for name, t in operating_points.items()
    }
    main = at["eer"]
    report: dict[str, Any] = {
        "acer": main["acer"],
        "apcer": main["apcer_worst"]["value"],
        "apcer_species": main["apcer_worst_species"],
        "bpcer": main["bpcer"]["value"],
        "eer": test_eer,
        "auc": auc(test_scores, test_labels),
        "n_bona_fide": int((np.asarray(test_labels) == 1).sum()),
        "n_attack": int((np.asarray(test_labels) == 0).sum()),
        "operating_points": at,
    }
    if "apcer5" in at:
        report["bpcer20"] = at["apcer5"]["bpcer"]["value"]
    if "apcer1" in at:
        report["bpcer100"] = at["apcer1"]["bpcer"]["value"]
    if "bpcer1" in at:
        report["apcer_at_bpcer1"] = at["bpcer1"]["apcer_worst"]
    return report
