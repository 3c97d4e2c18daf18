"""ResNet-18 / ResNet-50 branches (He et al., CVPR 2016), one per modality.

Written from the paper's description (basic blocks for ResNet-18, bottlenecks for
ResNet-50; stride-2 stem conv and max pool, four stages). Each modality's branch runs the
stem and the first three stages (to S/16); the fusion works there, and the fourth stage
(to S/32) is the shared trunk after fusion. Sharing stage 4 saves most of a ResNet's
parameters three times over, and puts the fusion where the maps still have a spatial
layout for the pixel-map head and the cross-attention. From scratch: no pretrained
weights ship here (timm/torchvision weights are hub downloads).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from models.nets.base import FlexModalNet
from models.nets.fusion import create_fusion
from models.nets.registry import register_large_model, register_model
from models.spec import CHANNELS, MODALITIES


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, cin: int, width: int, stride: int = 1) -> None:
        super().__init__()
        cout = width * self.expansion
        self.body = nn.Sequential(
            nn.Conv2d(cin, width, 3, stride=stride, padding=1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
            nn.Conv2d(width, cout, 3, padding=1, bias=False),
            nn.BatchNorm2d(cout),
        )
        self.shortcut = shortcut(cin, cout, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.body(x) + self.shortcut(x))


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin: int, width: int, stride: int = 1) -> None:
        super().__init__()
        cout = width * self.expansion
        self.body = nn.Sequential(
            nn.Conv2d(cin, width, 1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
            nn.Conv2d(width, width, 3, stride=stride, padding=1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
            nn.Conv2d(width, cout, 1, bias=False),
            nn.BatchNorm2d(cout),
        )
        self.shortcut = shortcut(cin, cout, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.body(x) + self.shortcut(x))


def shortcut(cin: int, cout: int, stride: int) -> nn.Module:
    if stride == 1 and cin == cout:
        return nn.Identity()
    return nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))


BLOCKS: dict[str, type[BasicBlock] | type[Bottleneck]] = {
    "basic": BasicBlock,
    "bottleneck": Bottleneck,
}


def stage(
    block: type[BasicBlock] | type[Bottleneck], cin: int, width: int, n: int, stride: int
) -> tuple[nn.Sequential, int]:
    layers: list[nn.Module] = []
    for i in range(n):
        layers.append(block(cin, width, stride if i == 0 else 1))
        cin = width * block.expansion
    return nn.Sequential(*layers), cin


def resnet_branch(
    cin: int, block: type[BasicBlock] | type[Bottleneck], layers: list[int], widths: list[int]
) -> tuple[nn.Sequential, int]:
    """Stem (7×7/2 conv, 3×3/2 max pool) and stages 1–3: S → S/16."""
    stem = widths[0]
    mods: list[nn.Module] = [
        nn.Conv2d(cin, stem, 7, stride=2, padding=3, bias=False),
        nn.BatchNorm2d(stem),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(3, stride=2, padding=1),
    ]
    c = stem
    for i in range(3):
        s, c = stage(block, c, widths[i], layers[i], 1 if i == 0 else 2)
        mods.append(s)
    return nn.Sequential(*mods), c


def build_resnet(
    fusion: str = "concat",
    block: str = "basic",
    layers: tuple[int, int, int, int] = (2, 2, 2, 2),
    widths: tuple[int, int, int, int] = (64, 128, 256, 512),
    fused: int | None = None,
    input_size: int = 112,
    dropout: float = 0.2,
    backbone: str = "resnet18",
) -> FlexModalNet:
    """Per-modality stem + stages 1–3, fusion at S/16 into ``fused`` channels (default:
    the stage-3 width), shared stage 4 as the trunk."""
    if block not in BLOCKS:
        raise KeyError(f"unknown block '{block}'; choose one of {sorted(BLOCKS)}")
    blk = BLOCKS[block]
    layers_l, widths_l = [int(n) for n in layers], [int(w) for w in widths]
    if len(layers_l) != 4 or len(widths_l) != 4:
        raise ValueError("a ResNet has four stages: give four layer counts and four widths")
    if input_size % 16:
        raise ValueError(f"a ResNet needs an input size divisible by 16, got {input_size}")
    built = {m: resnet_branch(CHANNELS[m], blk, layers_l, widths_l) for m in MODALITIES}
    feat = built[MODALITIES[0]][1]
    fused_c = feat if fused is None else int(fused)
    trunk_net, trunk_c = stage(blk, fused_c, widths_l[3], layers_l[3], 2)
    net = FlexModalNet(
        {m: b for m, (b, _) in built.items()},
        create_fusion(fusion, feat, fused_c),
        trunk_net,
        trunk_channels=trunk_c,
        fused_channels=fused_c,
        input_size=input_size,
        backbone=backbone,
        fusion_name=fusion,
        dropout=dropout,
    )
    net.builder_args = {
        "fusion": fusion,
        "block": block,
        "layers": layers_l,
        "widths": widths_l,
        "fused": fused_c,
        "input_size": input_size,
    }
    return net


@register_model
def resnet18(**kw: Any) -> FlexModalNet:
    """ResNet-18 per modality at 112 px: ~2.9 GFLOP per face with three modalities."""
    return build_resnet(**{"block": "basic", "layers": (2, 2, 2, 2), **kw})


@register_large_model
def resnet50(**kw: Any) -> FlexModalNet:
    """ResNet-50 per modality at 224 px, as in the paper: ~25 GFLOP per face."""
    return build_resnet(
        **{"block": "bottleneck", "layers": (3, 4, 6, 3), "input_size": 224, **kw},
        backbone="resnet50",
    )
