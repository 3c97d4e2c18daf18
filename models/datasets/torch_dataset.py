"""The torch ``Dataset`` for training: crops → augmentation → modality dropout →
:func:`models.preprocess.preprocess` (the serving path's own preprocessing) → tensors.

Randomness is drawn from a generator seeded by (seed, epoch, index), so a run is
reproducible whatever the number of loader workers.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from torch.utils.data import Dataset

from models.datasets.crops import Augment, CropCache, ModalityDropout, restrict
from models.preprocess import preprocess
from models.spec import INPUT_PRESENT, MODALITIES, ModelSpec, PreprocessSpec


class PadDataset(Dataset):
    """Items are dicts: ``rgb``, ``depth``, ``ir``, ``present`` (float tensors), ``label``."""

    def __init__(
        self,
        crops: CropCache,
        spec: PreprocessSpec | ModelSpec,
        augment: Augment | None = None,
        dropout: ModalityDropout | None = None,
        subset: tuple[str, ...] | None = None,
        seed: int = 0,
    ) -> None:
        self.crops = crops
        self.spec = spec
        self.augment = augment
        self.dropout = dropout
        self.subset = subset
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.crops)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        """Sample ``i % len(self)``; ``i`` itself seeds its augmentation and dropout, so a
        sampler that draws a sample twice in an epoch (:class:`RepeatAwareSampler`) asks
        for ``i`` and ``i + len(self)`` and gets two different views of it."""
        rng = np.random.default_rng([self.seed, self.epoch, i])
        i %= len(self.crops)
        c = self.crops[i]
        if self.subset is not None:
            c = restrict(c, self.subset)
        if self.augment is not None:
            c = self.augment(c, rng)
        if self.dropout is not None:
            c = self.dropout(c, rng)
        arrays = preprocess(c, self.spec)
        item = {k: torch.from_numpy(arrays[k]) for k in (*MODALITIES, INPUT_PRESENT)}
        item["label"] = torch.tensor(float(self.crops.entries[i].label))
        return item


class RepeatAwareSampler(torch.utils.data.Sampler[int]):
    """Draws ``num_samples`` indices with replacement in proportion to ``weights``; the
    k-th draw of sample ``i`` in an epoch is yielded as ``i + k · len(weights)`` so that
    :class:`PadDataset` augments each repeat differently."""

    def __init__(self, weights: torch.Tensor, num_samples: int, generator: torch.Generator) -> None:
        self.weights = weights
        self.num_samples = num_samples
        self.generator = generator

    def __len__(self) -> int:
        return self.num_samples

    def __iter__(self) -> Iterator[int]:
        n = len(self.weights)
        drawn = torch.multinomial(self.weights, self.num_samples, True, generator=self.generator)
        seen: dict[int, int] = {}
        for i in drawn.tolist():
            k = seen.get(i, 0)
            seen[i] = k + 1
            yield i + k * n
