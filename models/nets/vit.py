"""Vision Transformer branches (Dosovitskiy et al., ICLR 2021), one per modality.

Written from the paper's description: non-overlapping P×P patches linearly embedded,
learned position embeddings, pre-norm transformer blocks (multi-head self-attention and
a GELU MLP, each with a residual). No class token: each branch returns its patch tokens
as an (S/P)×(S/P) map, which is what the fusions and the pixel-map head take; the shared
trunk is ``trunk_depth`` more blocks on the fused tokens, mean-pooled for the classifier.

``vit_b16`` is the paper's ViT-B/16 configuration (768 wide, 12 blocks, 12 heads, 224 px)
per modality — a GPU network; ``vit_tiny`` (patch 8 at 112 px, 96 wide, 4 blocks, 3
heads) runs on a CPU. From scratch: no pretrained weights ship here.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from models.nets.base import FlexModalNet
from models.nets.fusion import create_fusion
from models.nets.registry import register_large_model, register_model
from models.spec import CHANNELS, MODALITIES


class SelfAttention(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"width {dim} is not divisible by {heads} heads")
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.scale = 1.0 / math.sqrt(dim // heads)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, t, d = x.shape
        qkv = self.qkv(x).reshape(n, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]  # N, heads, T, d/h
        attn = torch.softmax(torch.matmul(q, k.transpose(-2, -1)) * self.scale, dim=-1)
        out = torch.matmul(attn, v).transpose(1, 2).reshape(n, t, d)
        return self.proj(out)


class Block(nn.Module):
    """Pre-norm transformer block: x + MSA(LN(x)), then x + MLP(LN(x))."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float = 4.0) -> None:
        super().__init__()
        hidden = int(dim * mlp_ratio)
        self.norm1 = nn.LayerNorm(dim)
        self.attn = SelfAttention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class ViTBranch(nn.Module):
    """Patch embedding + position embedding + ``depth`` blocks → [N, dim, S/P, S/P]."""

    def __init__(
        self, cin: int, input_size: int, patch: int, dim: int, depth: int, heads: int
    ) -> None:
        super().__init__()
        self.grid = input_size // patch
        self.embed = nn.Conv2d(cin, dim, patch, stride=patch)
        self.pos = nn.Parameter(torch.zeros(1, self.grid * self.grid, dim))
        nn.init.trunc_normal_(self.pos, std=0.02)
        self.blocks = nn.Sequential(*(Block(dim, heads) for _ in range(depth)))
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.embed(x).flatten(2).transpose(1, 2) + self.pos
        tokens = self.norm(self.blocks(tokens))
        n, _, d = tokens.shape
        return tokens.transpose(1, 2).reshape(n, d, self.grid, self.grid)


class TokenTrunk(nn.Module):
    """Transformer blocks on a fused map's tokens (the map's layout is kept)."""

    def __init__(self, dim: int, depth: int, heads: int) -> None:
        super().__init__()
        self.blocks = nn.Sequential(*(Block(dim, heads) for _ in range(depth)))
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, d, h, w = x.shape
        tokens = self.norm(self.blocks(x.flatten(2).transpose(1, 2)))
        return tokens.transpose(1, 2).reshape(n, d, h, w)


def build_vit(
    fusion: str = "concat",
    patch: int = 16,
    dim: int = 768,
    depth: int = 12,
    heads: int = 12,
    trunk_depth: int = 1,
    input_size: int = 224,
    dropout: float = 0.1,
    backbone: str = "vit_b16",
) -> FlexModalNet:
    """Per-modality ViT of ``depth`` blocks, fusion into ``dim`` channels on the patch grid,
    ``trunk_depth`` shared blocks after it."""
    if input_size % patch:
        raise ValueError(f"input size {input_size} is not a multiple of the patch {patch}")
    branches: dict[str, nn.Module] = {
        m: ViTBranch(CHANNELS[m], input_size, patch, dim, depth, heads) for m in MODALITIES
    }
    net = FlexModalNet(
        branches,
        create_fusion(fusion, dim, dim),
        TokenTrunk(dim, trunk_depth, heads),
        trunk_channels=dim,
        fused_channels=dim,
        input_size=input_size,
        backbone=backbone,
        fusion_name=fusion,
        dropout=dropout,
    )
    net.builder_args = {
        "fusion": fusion,
        "patch": patch,
        "dim": dim,
        "depth": depth,
        "heads": heads,
        "trunk_depth": trunk_depth,
        "input_size": input_size,
    }
    return net


@register_large_model
def vit_b16(**kw: Any) -> FlexModalNet:
    """ViT-B/16 per modality at 224 px, as in the paper: ~53 GFLOP per face."""
    return build_vit(**kw, backbone="vit_b16")


@register_model
def vit_tiny(**kw: Any) -> FlexModalNet:
    """A CPU ViT: patch 8 at 112 px (14×14 tokens), 96 wide, 4 blocks, 3 heads."""
    return build_vit(
        **{"patch": 8, "dim": 96, "depth": 4, "heads": 3, "input_size": 112, **kw},
        backbone="vit_tiny",
    )
