"""The bundled model, through the real service, decides what a deployment expects:

- synthetic bona fide / print / replay captures from generator seeds never used in
  training (test-split people), RGB + depth + IR: nearly all decided live / spoof / spoof,
  and no attack decided live;
- real photographs of live people the generator never renders: with depth and IR at least
  90 % live and none spoof; RGB alone (fused with the RGB expert), mostly live, none spoof.

A broken or untrained model file fails these tests.
"""

from __future__ import annotations

from typing import Any

import cv2
import httpx
import numpy as np
import pytest

from synth import render_scene
from synth.realcheck import holdout_photos, live_depth_ir

#: Far above any seed the benchmark derives (its seeds are < 2**31 from seed 0).
UNSEEN_SEEDS = (3_000_000_011, 3_000_000_017, 3_000_000_023, 3_000_000_029, 3_000_000_031)


def _png(img: np.ndarray) -> bytes:
    return cv2.imencode(".png", img)[1].tobytes()


@pytest.fixture(scope="module")
def client(bundled_client: httpx.Client) -> httpx.Client:
    return bundled_client


def _decide(client: httpx.Client, files: dict[str, tuple[str, bytes]]) -> dict[str, Any]:
    r = client.post("/liveness", files=files, data={"depth_scale": "0.001"})
    assert r.status_code == 200, r.text
    faces = r.json()["faces"]
    assert len(faces) == 1, r.json()
    face: dict[str, Any] = faces[0]
    return face


@pytest.mark.parametrize(
    ("species", "expected"),
    [("bona_fide", "live"), ("print_flat", "spoof"), ("replay_tablet", "spoof")],
)
def test_unseen_synthetic_captures_are_decided_right(
    client: httpx.Client, species: str, expected: str
) -> None:
    """Most captures get the right decision and no attack is ever accepted (the model's
    RGB+D+IR ACER is several per cent; a far, small face may be uncertain or missed)."""
    decisions = []
    for seed in UNSEEN_SEEDS:
        scene = render_scene(species, "d435", seed, split="test")
        files = {
            "rgb": ("rgb.png", _png(cv2.cvtColor(scene.rgb, cv2.COLOR_RGB2BGR))),
            "depth": ("depth.png", _png(scene.depth)),
            "ir": ("ir.png", _png(scene.ir)),
        }
        face = _decide(client, files)
        decisions.append(face["decision"])
        if expected == "spoof":
            assert face["decision"] != "live", (species, seed, face)
    assert decisions.count(expected) > len(UNSEEN_SEEDS) // 2, (species, decisions)


def test_real_photographs_of_live_people(client: httpx.Client) -> None:
    """With depth and IR (a live relief, skin under an active illuminator) no real person
    is decided spoof and at least 90 % are live. RGB alone is the synthetic model's weak
    side: most, not all, are live, and none spoof (the model card gives the split)."""
    decisions: dict[str, list[str]] = {"rgb": [], "rgb+depth+ir": []}
    for photo in holdout_photos():
        bgr = cv2.cvtColor(photo.rgb, cv2.COLOR_RGB2BGR)
        rgb = ("rgb.jpg", cv2.imencode(".jpg", bgr)[1].tobytes())
        face = _decide(client, {"rgb": rgb})
        decisions["rgb"].append(face["decision"])
        if face["decision"] == "uncertain":
            assert face["reasons"], (photo.name, face)
        depth, ir = live_depth_ir(photo)
        files = {"rgb": rgb, "depth": ("d.png", _png(depth)), "ir": ("i.png", _png(ir))}
        face = _decide(client, files)
        decisions["rgb+depth+ir"].append(face["decision"])
    n = len(holdout_photos())
    assert decisions["rgb+depth+ir"].count("live") >= 0.9 * n, decisions
    # None spoof: the network alone decides the spacesuit portrait ('astronaut') spoof
    # (0.07, the collar under her chin), but the RGB expert says live (0.70), and an
    # unfused spoof the expert contradicts is uncertain (components_disagree).
    assert decisions["rgb+depth+ir"].count("spoof") == 0, decisions
    # RGB alone the score fuses the RGB expert (MiniFASNet, trained on real captures), and
    # spoof needs a score below the subset's BPCER-1 % point: measured 21 live /
    # 5 uncertain / 0 spoof of 26 with 2.2.0 (21 / 2 / 3 with the symmetric band alone).
    assert decisions["rgb"].count("live") >= 0.75 * n, decisions
    assert decisions["rgb"].count("spoof") == 0, decisions
