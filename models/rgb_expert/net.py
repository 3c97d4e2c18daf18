"""MiniFASNet (V2 and V1SE), rebuilt from the published state dicts (needs torch).

MiniFASNet is a MobileFaceNet-style classifier for 80×80 face crops with three classes
(0 and 2: attacks, 1: bona fide). Its layout, written here from the published
architecture description and checked against the state-dict names and shapes:

- a stem: 3×3 stride-2 convolution, then a 3×3 depthwise convolution (each conv → BN →
  PReLU);
- four stages ``conv_23``, ``conv_3``, ``conv_34``/``conv_4``, ``conv_45``/``conv_5``: an
  inverted bottleneck (1×1 expand → 3×3 depthwise → 1×1 linear projection) with stride 2
  opens each resolution, followed by residual bottlenecks at stride 1. The V1SE variant
  gates the last residual bottleneck of each stage with squeeze-and-excitation;
- a head: 1×1 conv to 512 channels, a 5×5 depthwise "global" conv (BN, no activation),
  a 512→128 linear embedding with batch norm, and a 3-way linear classifier.

Channel widths differ per block (the published nets were pruned), so they are read from
the state dict and the weights are loaded strictly: a missing or unexpected key is an
error.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import torch
from torch import nn

#: Number of classes and the bona fide class index of the published nets.
NUM_CLASSES = 3
REAL_CLASS = 1
INPUT_SIDE = 80


def strip_parallel_prefix(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Drop the ``module.`` prefix that ``DataParallel`` put on every key."""
    return {k.removeprefix("module."): v for k, v in state.items()}


class ConvUnit(nn.Module):
    """Convolution (no bias) → batch norm → optional PReLU."""

    def __init__(
        self,
        cin: int,
        cout: int,
        kernel: int,
        *,
        stride: int = 1,
        groups: int = 1,
        act: bool = True,
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(
            cin,
            cout,
            kernel,
            stride=stride,
            padding=kernel // 2 if kernel == 3 else 0,
            groups=groups,
            bias=False,
        )
        self.bn = nn.BatchNorm2d(cout)
        self.prelu: nn.Module | None = nn.PReLU(cout) if act else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.bn(self.conv(x))
        return self.prelu(y) if self.prelu is not None else y


class SqueezeExcite(nn.Module):
    """Channel gate: global average → 1×1 conv, BN, ReLU → 1×1 conv, BN, sigmoid."""

    def __init__(self, channels: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(channels, hidden, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(hidden)
        self.fc2 = nn.Conv2d(hidden, channels, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        g = x.mean(dim=(2, 3), keepdim=True)
        g = torch.relu(self.bn1(self.fc1(g)))
        return x * torch.sigmoid(self.bn2(self.fc2(g)))


class Bottleneck(nn.Module):
    """1×1 expand → 3×3 depthwise (stride s) → 1×1 linear projection [→ SE] [+ input]."""

    def __init__(
        self, cin: int, hidden: int, cout: int, *, stride: int, residual: bool, se: int | None
    ) -> None:
        super().__init__()
        self.conv = ConvUnit(cin, hidden, 1)
        self.conv_dw = ConvUnit(hidden, hidden, 3, stride=stride, groups=hidden)
        self.project = ConvUnit(hidden, cout, 1, act=False)
        self.se_module: nn.Module | None = SqueezeExcite(cout, se) if se else None
        self.residual = residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.project(self.conv_dw(self.conv(x)))
        if self.se_module is not None:
            y = self.se_module(y)
        return x + y if self.residual else y


class _Stage(nn.Module):
    """Residual bottlenecks at one resolution; the attribute name ``model`` matches the
    state-dict keys (``conv_3.model.0.…``)."""

    def __init__(self, blocks: list[Bottleneck]) -> None:
        super().__init__()
        self.model = nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


def _bottleneck(state: Mapping[str, torch.Tensor], prefix: str, *, stride: int) -> Bottleneck:
    expand = state[f"{prefix}.conv.conv.weight"]
    project = state[f"{prefix}.project.conv.weight"]
    se_key = f"{prefix}.se_module.fc1.weight"
    se = int(state[se_key].shape[0]) if se_key in state else None
    return Bottleneck(
        int(expand.shape[1]),
        int(expand.shape[0]),
        int(project.shape[0]),
        stride=stride,
        residual=stride == 1,
        se=se,
    )


#: Down-sampling bottlenecks (stride 2) and the residual stage that follows each.
_DOWN = ("conv_23", "conv_34", "conv_45")
_STAGES = ("conv_3", "conv_4", "conv_5")


class MiniFASNet(nn.Module):
    """A MiniFASNet built from (and loaded with) one published state dict.

    ``forward`` takes N×3×80×80 **BGR** crops with raw 0–255 values and returns the
    3 class logits.
    """

    def __init__(self, state: Mapping[str, torch.Tensor]) -> None:
        super().__init__()
        state = strip_parallel_prefix(state)
        stem = state["conv1.conv.weight"]
        self.conv1 = ConvUnit(int(stem.shape[1]), int(stem.shape[0]), 3, stride=2)
        c = int(state["conv2_dw.conv.weight"].shape[0])
        self.conv2_dw = ConvUnit(c, c, 3, groups=c)
        for down, stage in zip(_DOWN, _STAGES, strict=True):
            self.add_module(down, _bottleneck(state, down, stride=2))
            idx = sorted(
                {int(m.group(1)) for k in state if (m := re.match(rf"{stage}\.model\.(\d+)\.", k))}
            )
            blocks = [_bottleneck(state, f"{stage}.model.{i}", stride=1) for i in idx]
            self.add_module(stage, _Stage(blocks))
        sep = state["conv_6_sep.conv.weight"]
        self.conv_6_sep = ConvUnit(int(sep.shape[1]), int(sep.shape[0]), 1)
        dw = state["conv_6_dw.conv.weight"]
        self.conv_6_dw = ConvUnit(
            int(dw.shape[0]),
            int(dw.shape[0]),
            int(dw.shape[-1]),
            groups=int(dw.shape[0]),
            act=False,
        )
        lin = state["linear.weight"]
        self.linear = nn.Linear(int(lin.shape[1]), int(lin.shape[0]), bias=False)
        self.bn = nn.BatchNorm1d(int(lin.shape[0]))
        prob = state["prob.weight"]
        self.prob = nn.Linear(int(prob.shape[1]), int(prob.shape[0]), bias=False)
        self.load_state_dict(state, strict=True)
        self.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv2_dw(self.conv1(x))
        for down, stage in zip(_DOWN, _STAGES, strict=True):
            y = getattr(self, stage)(getattr(self, down)(y))
        y = self.conv_6_dw(self.conv_6_sep(y)).flatten(1)
        return self.prob(self.bn(self.linear(y)))
