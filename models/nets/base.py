"""The surface every FlexLive network shares: per-modality branches → fusion → heads.

``forward(rgb, depth, ir, present)`` returns a dict:

- ``logit`` [N]: bona fide logit; ``score`` [N] = sigmoid(logit), probability of bona fide;
- ``pixel_logit`` / ``pixel_map`` [N, 1, h, w]: the pixel-wise supervision head (logits and
  sigmoid probabilities; ones on the face of bona fide samples, zeros for attacks).

Mask-aware: each branch's features are multiplied by the modality's ``present`` flag, so
an absent modality contributes exact zeros whatever the branch's biases are.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from models.spec import MODALITIES


def head_outputs(
    logit: torch.Tensor, pixel_logit: torch.Tensor, embedding: torch.Tensor
) -> dict[str, torch.Tensor]:
    """The output dict of every flexible-modal network: logits, their probabilities, and
    the penultimate embedding the out-of-distribution distance is measured on."""
    return {
        "logit": logit,
        "score": torch.sigmoid(logit),
        "pixel_logit": pixel_logit,
        "pixel_map": torch.sigmoid(pixel_logit),
        "embedding": embedding,
    }


class FlexModalNet(nn.Module):
    """Branches (one per modality) → fusion → shared trunk → classifier + pixel-map heads."""

    def __init__(
        self,
        branches: dict[str, nn.Module],
        fusion: nn.Module,
        trunk: nn.Module,
        trunk_channels: int,
        fused_channels: int,
        *,
        input_size: int,
        backbone: str,
        fusion_name: str,
        dropout: float = 0.2,
    ) -> None:
        super().__init__()
        missing = set(MODALITIES) - set(branches)
        if missing:
            raise ValueError(f"a branch per modality is required; missing {sorted(missing)}")
        self.branches = nn.ModuleDict({m: branches[m] for m in MODALITIES})
        self.fusion = fusion
        self.trunk = trunk
        self.pixel_head = nn.Conv2d(fused_channels, 1, 3, padding=1)
        self.classifier = nn.Sequential(nn.Flatten(), nn.Dropout(dropout))
        self.fc = nn.Linear(trunk_channels, 1)
        self.input_size = input_size
        self.backbone = backbone
        self.fusion_name = fusion_name
        # Set by create_model, so checkpoints can rebuild the same network.
        self.model_name = backbone
        self.model_overrides: dict[str, Any] = {}
        # Resolved builder arguments that fix the architecture (set by the builder).
        self.builder_args: dict[str, Any] = {}

    def features(
        self, inputs: dict[str, torch.Tensor], present: torch.Tensor
    ) -> list[torch.Tensor]:
        feats = []
        for i, m in enumerate(MODALITIES):
            f = self.branches[m](inputs[m])
            feats.append(f * present[:, i].view(-1, 1, 1, 1))
        return feats

    def forward_features(
        self, rgb: torch.Tensor, depth: torch.Tensor, ir: torch.Tensor, present: torch.Tensor
    ) -> torch.Tensor:
        """Branches → mask → fusion: the fused map [N, fused_channels, h, w] (after timm's
        ``forward_features``; the heads read only this map)."""
        feats = self.features({"rgb": rgb, "depth": depth, "ir": ir}, present)
        fused: torch.Tensor = self.fusion(feats, present)
        return fused

    def forward_head(self, fused: torch.Tensor) -> dict[str, torch.Tensor]:
        """The fused map → pixel-map head, and trunk → pooled embedding → bona fide logit."""
        pixel_logit = self.pixel_head(fused)
        pooled = self.trunk(fused).mean(dim=(2, 3))
        logit = self.fc(self.classifier(pooled)).squeeze(1)
        return head_outputs(logit, pixel_logit, pooled)

    def forward(
        self, rgb: torch.Tensor, depth: torch.Tensor, ir: torch.Tensor, present: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        return self.forward_head(self.forward_features(rgb, depth, ir, present))

    def config(self) -> dict[str, Any]:
        """What a checkpoint stores to rebuild this network with ``create_model``."""
        return {"name": self.model_name, "overrides": {**self.builder_args, **self.model_overrides}}


class OnnxWrapper(nn.Module):
    """Positional inputs (rgb, depth, ir, present) → (score, pixel_map[, ood_distance]), the
    ONNX contract; ``ood`` is a :class:`models.ood.OodHead` fitted at export."""

    def __init__(self, net: nn.Module, ood: nn.Module | None = None) -> None:
        super().__init__()
        self.net = net
        self.ood = ood

    def forward(
        self, rgb: torch.Tensor, depth: torch.Tensor, ir: torch.Tensor, present: torch.Tensor
    ) -> tuple[torch.Tensor, ...]:
        out = self.net(rgb, depth, ir, present)
        if self.ood is None:
            return out["score"], out["pixel_map"]
        return out["score"], out["pixel_map"], self.ood(out["embedding"], present)
