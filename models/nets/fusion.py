"""Feature-level fusion strategies, chosen by name.

Every fusion takes the per-modality feature maps (order rgb, depth, ir; each already
multiplied by its ``present`` flag, so an absent modality is all zeros) and the
``present`` flags [N, 3], and returns one fused map [N, out_channels, h, w].

- ``concat``: concatenate, then a 1×1 conv (the paper's concatenation + conv).
- ``se_concat``: per-modality squeeze-and-excitation, then concatenation + 1×1 conv.
- ``cross_attention``: RGB features are keys/values, depth and IR features are queries;
  fused = RGB + attended D + attended IR (the paper's cross-attention fusion). Each
  attended stream keeps its query as a residual (``D + Attn(D, RGB)``), the usual
  transformer form, so depth+IR / IR-only subsets still carry signal without RGB.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from models.spec import MODALITIES


def conv_bn_act(cin: int, cout: int, k: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, k, padding=k // 2, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class ConcatFusion(nn.Module):
    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.proj = conv_bn_act(in_channels * len(MODALITIES), out_channels)

    def forward(self, feats: list[torch.Tensor], present: torch.Tensor) -> torch.Tensor:
        return self.proj(torch.cat(feats, dim=1))


class SqueezeExcite(nn.Module):
    def __init__(self, channels: int, reduction: int = 4) -> None:
        super().__init__()
        hidden = max(8, channels // reduction)
        self.fc1 = nn.Conv2d(channels, hidden, 1)
        self.fc2 = nn.Conv2d(hidden, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = x.mean(dim=(2, 3), keepdim=True)
        w = torch.sigmoid(self.fc2(torch.relu(self.fc1(w))))
        return x * w


class SEConcatFusion(nn.Module):
    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.se = nn.ModuleList(SqueezeExcite(in_channels) for _ in MODALITIES)
        self.proj = conv_bn_act(in_channels * len(MODALITIES), out_channels)

    def forward(self, feats: list[torch.Tensor], present: torch.Tensor) -> torch.Tensor:
        # SE of an all-zero map is still zero, so absent modalities stay absent.
        return self.proj(torch.cat([se(f) for se, f in zip(self.se, feats, strict=True)], dim=1))


class CrossAttention(nn.Module):
    """Single-head scaled dot-product attention of ``query`` tokens over ``context`` tokens."""

    def __init__(self, channels: int, dim: int) -> None:
        super().__init__()
        self.q = nn.Conv2d(channels, dim, 1)
        self.k = nn.Conv2d(channels, dim, 1)
        self.v = nn.Conv2d(channels, channels, 1)
        self.out = nn.Conv2d(channels, channels, 1)
        self.scale = 1.0 / math.sqrt(dim)

    def forward(self, query: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        n, c, h, w = query.shape
        q = self.q(query).flatten(2).transpose(1, 2)  # N, HW, d
        k = self.k(context).flatten(2)  # N, d, HW
        v = self.v(context).flatten(2).transpose(1, 2)  # N, HW, C
        attn = torch.softmax(torch.bmm(q, k) * self.scale, dim=-1)
        out = torch.bmm(attn, v).transpose(1, 2).reshape(n, c, h, w)
        return self.out(out)


class CrossAttentionFusion(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, attn_dim: int = 32) -> None:
        super().__init__()
        self.attend_depth = CrossAttention(in_channels, attn_dim)
        self.attend_ir = CrossAttention(in_channels, attn_dim)
        self.norm = nn.BatchNorm2d(in_channels)
        self.proj = conv_bn_act(in_channels, out_channels)

    def forward(self, feats: list[torch.Tensor], present: torch.Tensor) -> torch.Tensor:
        rgb, depth, ir = feats
        p_rgb = present[:, 0].view(-1, 1, 1, 1)
        p_d = present[:, 1].view(-1, 1, 1, 1)
        p_ir = present[:, 2].view(-1, 1, 1, 1)
        # Attention over an absent RGB map would attend to zeros: gate it by both flags.
        att_d = depth + p_d * p_rgb * self.attend_depth(depth, rgb)
        att_ir = ir + p_ir * p_rgb * self.attend_ir(ir, rgb)
        return self.proj(self.norm(rgb + att_d + att_ir))


FusionFactory = Callable[[int, int], nn.Module]

FUSIONS: dict[str, FusionFactory] = {
    "concat": ConcatFusion,
    "se_concat": SEConcatFusion,
    "cross_attention": CrossAttentionFusion,
}


def create_fusion(name: str, in_channels: int, out_channels: int) -> nn.Module:
    if name not in FUSIONS:
        raise KeyError(f"unknown fusion '{name}'; choose one of {sorted(FUSIONS)}")
    return FUSIONS[name](in_channels, out_channels)
