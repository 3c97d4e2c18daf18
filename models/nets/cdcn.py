"""CDCN: central difference convolution networks, one branch per modality.

Written from the description in Yu et al. (CVPR 2020, "Searching central difference
convolutional networks for face anti-spoofing") as summarised in ``PAPER.md``; no code
was taken from the original repository (its licence asks for permission for commercial
use).

A central difference convolution mixes a vanilla 3×3 convolution with the convolution of
the *differences* between each neighbour and the centre pixel. Because
Σ w_k (x_k − x_0) = Σ w_k x_k − x_0 Σ w_k, it is computed as

    out = conv3x3(x, w) − θ · conv1x1(x, Σ_spatial w)

with θ ∈ [0, 1] (θ = 0 is a plain convolution; the paper's θ ≈ 0.7).

Each modality's branch: a CDC stem, then three blocks of three CDC convolutions
(widths ``(128, 196, 128)`` at paper size) each followed by a stride-2 max pool; the three
block outputs are resized to the last one's grid (S/8) and concatenated (3 × 128 = 384
channels at paper size). The fusion works on these S/8 maps; the shared trunk is CDCN's
map head minus its last layer (CDC convs down to 64 channels), and the pixel-map head
reads the fused S/8 map — CDCN's 32×32 map at 256 px.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from models.nets.base import FlexModalNet
from models.nets.fusion import create_fusion
from models.nets.registry import register_large_model, register_model
from models.spec import CHANNELS, MODALITIES


class CDConv2d(nn.Conv2d):
    """3×3 central difference convolution (stride 1, padding 1, no bias)."""

    def __init__(self, cin: int, cout: int, theta: float = 0.7) -> None:
        super().__init__(cin, cout, 3, padding=1, bias=False)
        if not 0.0 <= theta <= 1.0:
            raise ValueError(f"theta must lie in [0, 1], got {theta}")
        self.theta = theta

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.conv2d(x, self.weight, padding=1)
        if self.theta == 0.0:
            return out
        centre = F.conv2d(x, self.weight.sum(dim=(2, 3), keepdim=True))
        return out - self.theta * centre


def cdc_bn_relu(cin: int, cout: int, theta: float) -> nn.Sequential:
    return nn.Sequential(CDConv2d(cin, cout, theta), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class CDCBranch(nn.Module):
    """One modality: stem → 3 × (three CDC convs → max pool 2) → multi-scale concat at S/8."""

    def __init__(self, cin: int, widths: tuple[int, int, int, int], theta: float) -> None:
        super().__init__()
        stem, w1, w2, w3 = widths
        self.stem = cdc_bn_relu(cin, stem, theta)

        def block(c_in: int) -> nn.Sequential:
            return nn.Sequential(
                cdc_bn_relu(c_in, w1, theta),
                cdc_bn_relu(w1, w2, theta),
                cdc_bn_relu(w2, w3, theta),
                nn.MaxPool2d(3, stride=2, padding=1),
            )

        self.block1 = block(stem)
        self.block2 = block(w3)
        self.block3 = block(w3)
        self.out_channels = 3 * w3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1 = self.block1(self.stem(x))
        x2 = self.block2(x1)
        x3 = self.block3(x2)
        size = (int(x3.shape[-2]), int(x3.shape[-1]))
        # CDCN resizes the three scales bilinearly to the coarsest grid and stacks them.
        x1 = F.interpolate(x1, size=size, mode="bilinear", align_corners=False)
        x2 = F.interpolate(x2, size=size, mode="bilinear", align_corners=False)
        return torch.cat([x1, x2, x3], dim=1)


def build_cdcn(
    fusion: str = "concat",
    widths: tuple[int, int, int, int] = (64, 128, 196, 128),
    fused: int = 128,
    trunk: int = 64,
    theta: float = 0.7,
    input_size: int = 256,
    dropout: float = 0.2,
) -> FlexModalNet:
    """CDCN per modality; ``widths`` = (stem, block conv 1, 2, 3), the map head's CDC
    convs ``fused`` → ``trunk`` channels after fusion."""
    w4 = (int(widths[0]), int(widths[1]), int(widths[2]), int(widths[3]))  # JSON gives lists
    if input_size % 8:
        raise ValueError(f"CDCN needs an input size divisible by 8, got {input_size}")
    branches: dict[str, nn.Module] = {m: CDCBranch(CHANNELS[m], w4, theta) for m in MODALITIES}
    feat = 3 * w4[3]
    trunk_net = nn.Sequential(cdc_bn_relu(fused, trunk, theta))
    net = FlexModalNet(
        branches,
        create_fusion(fusion, feat, fused),
        trunk_net,
        trunk_channels=trunk,
        fused_channels=fused,
        input_size=input_size,
        backbone="cdcn",
        fusion_name=fusion,
        dropout=dropout,
    )
    net.builder_args = {
        "fusion": fusion,
        "widths": list(w4),
        "fused": fused,
        "trunk": trunk,
        "theta": theta,
        "input_size": input_size,
    }
    return net


@register_large_model
def cdcn(**kw: Any) -> FlexModalNet:
    """The paper's CDCN per modality at 256 px (64 / 128-196-128 ×3, θ 0.7): ~315 GFLOP
    per face with three modalities — a GPU network."""
    return build_cdcn(**kw)


@register_model
def cdcn_small(**kw: Any) -> FlexModalNet:
    """CDCN at 112 px with a quarter of the widths (16 / 32-48-32): runs on a CPU."""
    return build_cdcn(
        **{"widths": (16, 32, 48, 32), "fused": 64, "trunk": 32, "input_size": 112, **kw}
    )
