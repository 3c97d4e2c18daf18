"""A tiny, deliberately easy crop dataset for tests and smoke runs (not a benchmark).

Bona fide crops have a head-shaped depth relief and bright IR skin; ``print`` attacks are
flat in depth with a halftone pattern in RGB; ``replay`` attacks are flat, dark in IR and
carry a moiré in RGB. Written in the benchmark's on-disk layout: ``crops/{rgb,depth,ir}``
and ``protocols/<name>/{train,dev,test}.txt`` (+ species side files).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from models.datasets.protocol import BONA_FIDE, ProtocolEntry, write_protocol

SPECIES = (BONA_FIDE, "print", "replay")


def toy_sample(
    kind: str, size: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rgb uint8 H×W×3 RGB order, depth uint16 mm, ir uint8) for one sample."""
    c = (np.arange(size) + 0.5) / size
    yy, xx = np.meshgrid(c, c, indexing="ij")
    r2 = ((xx - 0.5) / 0.3) ** 2 + ((yy - 0.53) / 0.4) ** 2
    face = r2 <= 1.0
    dist = rng.uniform(450, 700)
    tone = rng.uniform(0.35, 0.8)
    rgb = np.empty((size, size, 3), np.float64)
    rgb[...] = rng.uniform(0.1, 0.6, size=3)  # background
    rgb[face] = np.array([tone, tone * 0.8, tone * 0.7])
    rgb += rng.normal(0, 0.03, rgb.shape)
    if kind == BONA_FIDE:
        relief = np.where(face, 60.0 * np.sqrt(np.clip(1 - r2, 0, 1)), 0.0)
        depth = dist - relief + np.where(face, 0, 150.0)
        ir = np.where(face, rng.uniform(0.55, 0.8), rng.uniform(0.05, 0.2))
    else:
        tilt = rng.uniform(-20, 20)
        depth = dist + tilt * (xx - 0.5)
        if kind == "print":
            rgb += 0.08 * np.sin(xx[..., None] * size * 2.2) * np.sin(yy[..., None] * size * 2.2)
            ir = np.where(face, rng.uniform(0.35, 0.6), rng.uniform(0.3, 0.5))
        else:
            rgb += 0.08 * np.sin((xx + 0.3 * yy)[..., None] * size * 0.9)
            ir = np.full((size, size), rng.uniform(0.02, 0.1))
    ir = ir + rng.normal(0, 0.02, (size, size))
    depth = depth + rng.normal(0, 1.5, depth.shape)
    return (
        np.clip(rgb * 255, 0, 255).astype(np.uint8),
        np.clip(depth, 1, 65535).astype(np.uint16),
        np.clip(ir * 255, 0, 255).astype(np.uint8),
    )


def write_toy_dataset(
    root: str | Path, n_per_split: int = 24, size: int = 112, seed: int = 0, protocol: str = "intra"
) -> Path:
    """Write ``n_per_split`` samples (half bona fide) per split; returns ``root``."""
    root = Path(root)
    for sub in ("rgb", "depth", "ir"):
        (root / "crops" / sub).mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    k = 0
    for split in ("train", "dev", "test"):
        entries = []
        for i in range(n_per_split):
            kind = BONA_FIDE if i % 2 == 0 else SPECIES[1 + (i // 2) % 2]
            rgb, depth, ir = toy_sample(kind, size, rng)
            name = f"{k:05d}.png"
            k += 1
            cv2.imwrite(str(root / "crops" / "rgb" / name), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
            cv2.imwrite(str(root / "crops" / "depth" / name), depth)
            cv2.imwrite(str(root / "crops" / "ir" / name), ir)
            entries.append(
                ProtocolEntry(
                    f"crops/rgb/{name}",
                    f"crops/depth/{name}",
                    f"crops/ir/{name}",
                    int(kind == BONA_FIDE),
                    kind,
                )
            )
        write_protocol(root / "protocols" / protocol / f"{split}.txt", entries)
    return root
