"""The torch ``Dataset`` for training: crops → augmentation → modality dropout →
:func:`models.preprocess.preprocess` (the serving path's own preprocessing) → tensors.

Randomness is drawn from a generator seeded by (seed, epoch, index), so a run is
reproducible whatever the number of loader workers.
"""

from __future__ import annotations

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
        rng = np.random.default_rng([self.seed, self.epoch, i])
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
