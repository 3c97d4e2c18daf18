"""``flexlive_lite``: the CPU-light flexible-modal network (112×112, real time on 2 cores).

Each modality has its own small depthwise-separable CNN (MobileNet-style) down to a
14×14 map (widths 24/48/96 by default, ~0.18 M parameters in all); the fused 14×14 map
feeds the pixel-map head and a two-block trunk down to
7×7 that feeds the bona fide classifier.
"""

from __future__ import annotations

import torch
from torch import nn

from models.nets.base import FlexModalNet
from models.nets.fusion import create_fusion
from models.nets.registry import register_model
from models.spec import CHANNELS, MODALITIES


class DSBlock(nn.Module):
    """Depthwise 3×3 → pointwise 1×1, each with BN + ReLU; residual when shapes match."""

    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.dw = nn.Sequential(
            nn.Conv2d(cin, cin, 3, stride=stride, padding=1, groups=cin, bias=False),
            nn.BatchNorm2d(cin),
            nn.ReLU(inplace=True),
        )
        self.pw = nn.Sequential(
            nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)
        )
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.pw(self.dw(x))
        return x + y if self.residual else y


def lite_branch(cin: int, widths: tuple[int, int, int]) -> nn.Sequential:
    """112 → 56 (stem) → 28 → 14 with ``widths`` = (stem, 28×28, 14×14) channels."""
    w0, w1, w2 = widths
    return nn.Sequential(
        nn.Conv2d(cin, w0, 3, stride=2, padding=1, bias=False),
        nn.BatchNorm2d(w0),
        nn.ReLU(inplace=True),
        DSBlock(w0, w1, stride=2),
        DSBlock(w1, w1),
        DSBlock(w1, w2, stride=2),
        DSBlock(w2, w2),
    )


def build_lite(
    fusion: str = "se_concat",
    widths: tuple[int, int, int] = (24, 48, 96),
    fused: int = 128,
    trunk: int = 192,
    input_size: int = 112,
    dropout: float = 0.2,
) -> FlexModalNet:
    widths = (int(widths[0]), int(widths[1]), int(widths[2]))  # JSON round trips give lists
    branches: dict[str, nn.Module] = {m: lite_branch(CHANNELS[m], widths) for m in MODALITIES}
    trunk_net = nn.Sequential(DSBlock(fused, trunk, stride=2), DSBlock(trunk, trunk))
    net = FlexModalNet(
        branches,
        create_fusion(fusion, widths[2], fused),
        trunk_net,
        trunk_channels=trunk,
        fused_channels=fused,
        input_size=input_size,
        backbone="flexlive_lite",
        fusion_name=fusion,
        dropout=dropout,
    )
    # Checkpoints store these, so a later change of the defaults cannot break them.
    net.builder_args = {
        "fusion": fusion,
        "widths": list(widths),
        "fused": fused,
        "trunk": trunk,
        "input_size": input_size,
    }
    return net


@register_model
def flexlive_lite(**kw: object) -> FlexModalNet:
    """The default CPU network; fusion ``se_concat`` unless overridden."""
    return build_lite(**kw)  # type: ignore[arg-type]


@register_model
def flexlive_lite_small(**kw: object) -> FlexModalNet:
    """Narrower branches (16/32/64, fused 96, trunk 128): ~0.09 M parameters."""
    return build_lite(**{"widths": (16, 32, 64), "fused": 96, "trunk": 128, **kw})  # type: ignore[arg-type]


@register_model
def flexlive_lite_concat(**kw: object) -> FlexModalNet:
    return build_lite(**{"fusion": "concat", **kw})  # type: ignore[arg-type]


@register_model
def flexlive_lite_crossattn(**kw: object) -> FlexModalNet:
    return build_lite(**{"fusion": "cross_attention", **kw})  # type: ignore[arg-type]
