"""Out-of-distribution (OOD) distance of a face, computed inside the exported graph.

A network trained on one world answers confidently on inputs from another. To let the
service say ``uncertain`` instead, export fits, per modality subset, a class-conditional
Gaussian model of the network's penultimate embedding on the *train* split (one mean per
class, bona fide and attack, one shared shrunk covariance; Lee et al., NeurIPS 2018). The
graph output ``ood_distance`` [N] is the Mahalanobis distance of a sample's embedding to
the nearer class mean of *its own* modality subset, selected in-graph from ``present``.
Export sets the threshold per subset at a high percentile of the *dev* split's
distances (``ModelSpec.ood_thresholds``); the service answers ``uncertain`` with reason
``out_of_distribution`` above it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
from torch import nn

from models.spec import MODALITIES, parse_subset

#: Shrinkage of the covariance towards its mean variance (keeps it well conditioned).
SHRINKAGE = 0.1


def subset_index(subset: Sequence[str]) -> int:
    """Index of a modality subset in the stacked statistics: ``present · [1, 2, 4] − 1``."""
    return sum(1 << i for i, m in enumerate(MODALITIES) if m in subset) - 1


def fit_gaussians(
    embeddings: Mapping[str, np.ndarray], labels: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per subset name → (N, D) train embeddings, labels (N,) 1 = bona fide.

    Returns class means (K, 2, D) and whitening factors (K, D, D) with K = 2**3 − 1 subset
    slots (unfitted slots stay zero: their distance is 0, never flagged)."""
    dim = next(iter(embeddings.values())).shape[1]
    k = (1 << len(MODALITIES)) - 1
    means = np.zeros((k, 2, dim), np.float64)
    whiten = np.zeros((k, dim, dim), np.float64)
    for name, emb in embeddings.items():
        idx = subset_index(parse_subset(name))
        centred = np.empty_like(emb, dtype=np.float64)
        for c in (0, 1):
            sel = labels == c
            if not sel.any():
                raise ValueError(f"subset {name}: no train samples of class {c}")
            means[idx, c] = emb[sel].mean(0)
            centred[sel] = emb[sel] - means[idx, c]
        cov = centred.T @ centred / max(len(emb) - 2, 1)
        cov = (1 - SHRINKAGE) * cov + SHRINKAGE * np.trace(cov) / dim * np.eye(dim)
        # cov⁻¹ = W Wᵀ with W from the eigen-decomposition: d² = ‖(e − μ) W‖².
        vals, vecs = np.linalg.eigh(cov)
        whiten[idx] = vecs / np.sqrt(np.maximum(vals, 1e-12))
    return means.astype(np.float32), whiten.astype(np.float32)


def distances(
    embedding: np.ndarray, subset: Sequence[str], means: np.ndarray, whiten: np.ndarray
) -> np.ndarray:
    """numpy reference of :class:`OodHead` for samples of one subset."""
    idx = subset_index(subset)
    d = [np.linalg.norm((embedding - means[idx, c]) @ whiten[idx], axis=1) for c in (0, 1)]
    return np.minimum(d[0], d[1])


class OodHead(nn.Module):
    """Embedding [N, D] + present [N, 3] → Mahalanobis distance [N] (nearer class)."""

    def __init__(self, means: np.ndarray, whiten: np.ndarray) -> None:
        super().__init__()
        self.register_buffer("means", torch.from_numpy(np.ascontiguousarray(means)))
        self.register_buffer("whiten", torch.from_numpy(np.ascontiguousarray(whiten)))
        weights = torch.tensor([float(1 << i) for i in range(len(MODALITIES))])
        self.register_buffer("bits", weights)

    def forward(self, embedding: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        idx = (present @ self.bits).round().long().clamp(min=1) - 1  # [N]
        mu = self.means[idx]  # [N, 2, D]
        w = self.whiten[idx]  # [N, D, D]
        diff = embedding.unsqueeze(1) - mu  # [N, 2, D]
        z = torch.bmm(diff, w)  # [N, 2, D]
        d = torch.sqrt((z * z).sum(dim=2) + 1e-12)  # [N, 2]
        return d.min(dim=1).values
