"""Several trained flexible-modal networks served as one: the mean of their logits.

Networks trained alike from different seeds make different mistakes; averaging their
logits (and pixel-map logits) removes part of that seed-to-seed variance at the cost of
running each member. The ensemble keeps the single network's call signature and output
dict, so export, parity checks and the ONNX contract treat it as one network.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from models.nets.base import FlexModalNet, head_outputs


class FlexModalEnsemble(nn.Module):
    """Mean logit of ``members`` (same input size and input contract)."""

    def __init__(self, members: Sequence[FlexModalNet]) -> None:
        super().__init__()
        if len(members) < 2:
            raise ValueError("an ensemble needs at least two networks")
        sizes = {m.input_size for m in members}
        if len(sizes) != 1:
            raise ValueError(f"ensemble members disagree on input size: {sorted(sizes)}")
        self.members = nn.ModuleList(members)
        self.input_size = members[0].input_size
        names = sorted({m.model_name for m in members})
        fusions = sorted({m.fusion_name for m in members})
        self.model_name = f"{'+'.join(names)} ensemble of {len(members)}"
        self.backbone = self.model_name
        self.fusion_name = "+".join(fusions)

    def forward(
        self, rgb: torch.Tensor, depth: torch.Tensor, ir: torch.Tensor, present: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        outs = [m(rgb, depth, ir, present) for m in self.members]
        return head_outputs(
            torch.stack([o["logit"] for o in outs]).mean(dim=0),
            torch.stack([o["pixel_logit"] for o in outs]).mean(dim=0),
            # The members' embeddings side by side: the OOD model sees all of them.
            torch.cat([o["embedding"] for o in outs], dim=1),
        )

    def config(self) -> dict[str, Any]:
        return {"ensemble": [m.config() for m in self.members]}  # type: ignore[operator]
