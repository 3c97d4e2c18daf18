"""Several trained flexible-modal networks served as one: the mean of their logits.

Networks trained alike from different seeds make different mistakes; averaging their
logits (and pixel-map logits) removes part of that seed-to-seed variance at the cost of
running each member. The ensemble keeps the single network's surface — call signature,
output dict, ``forward_features`` / ``forward_head``, ``config()`` — so export, parity
checks, training and the ONNX contract treat it as one network, and it is a registered
name: ``create_model("ensemble", n=2, member="flexlive_lite", fusion="concat")`` builds
``n`` fresh members (extra arguments go to each), ``create_model("ensemble",
members=[cfg, ...])`` rebuilds one from its members' checkpoint configs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import torch
from torch import nn

from models.nets.base import FlexModalNet, head_outputs
from models.nets.registry import create_model, register_model


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

    def _fused_channels(self) -> list[int]:
        return [int(m.pixel_head.in_channels) for m in self.members]  # type: ignore[union-attr]

    def forward_features(
        self, rgb: torch.Tensor, depth: torch.Tensor, ir: torch.Tensor, present: torch.Tensor
    ) -> torch.Tensor:
        """The members' fused maps, side by side on the channel axis."""
        return torch.cat(
            [m.forward_features(rgb, depth, ir, present) for m in self.members],  # type: ignore[operator]
            dim=1,
        )

    def forward_head(self, fused: torch.Tensor) -> dict[str, torch.Tensor]:
        """Each member's head on its own part of ``fused``; mean logits."""
        parts = torch.split(fused, self._fused_channels(), dim=1)
        outs = [m.forward_head(p) for m, p in zip(self.members, parts, strict=True)]  # type: ignore[operator]
        return head_outputs(
            torch.stack([o["logit"] for o in outs]).mean(dim=0),
            torch.stack([o["pixel_logit"] for o in outs]).mean(dim=0),
            # The members' embeddings side by side: the OOD model sees all of them.
            torch.cat([o["embedding"] for o in outs], dim=1),
        )

    def forward(
        self, rgb: torch.Tensor, depth: torch.Tensor, ir: torch.Tensor, present: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        return self.forward_head(self.forward_features(rgb, depth, ir, present))

    def config(self) -> dict[str, Any]:
        """What a checkpoint stores: the registered name and each member's own config."""
        return {
            "name": "ensemble",
            "overrides": {
                "members": [m.config() for m in self.members],  # type: ignore[operator]
                "fusion": self.fusion_name,
                "input_size": self.input_size,
            },
        }


@register_model
def ensemble(
    n: int = 2,
    member: str = "flexlive_lite",
    members: Sequence[dict[str, Any]] | None = None,
    **member_overrides: Any,
) -> FlexModalNet:
    """``n`` members of the registered network ``member`` (``member_overrides`` go to each),
    or the members described by ``members`` (their ``config()`` dicts)."""
    if member == "ensemble" or any(c.get("name") == "ensemble" for c in members or ()):
        raise ValueError("an ensemble's members are single networks")
    specs = list(members) if members is not None else [{"name": member, "overrides": {}}] * n
    nets = [
        create_model(c["name"], **{**c.get("overrides", {}), **member_overrides}) for c in specs
    ]
    # The ensemble has FlexModalNet's surface (forward, forward_features, forward_head,
    # config, input_size, fusion_name): the registry serves it as one.
    return cast(FlexModalNet, FlexModalEnsemble(nets))
