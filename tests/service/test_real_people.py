"""The independent real-people set (``benchmarks/real_people``: 100 CC0 stock portraits of
people unlike the generator's official portraits) and what the bundled model, through the
real service, decides on its test people — never rendered by the generator, never used to
choose a model.

A broken or untrained model, or a face stage that no longer finds real faces, fails these.
"""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest

from synth.realcheck import people_photos

ROOT = Path(__file__).resolve().parents[2] / "benchmarks" / "real_people"


def test_the_set_is_complete_and_licensed() -> None:
    rows = list(csv.DictReader((ROOT / "people.csv").open()))
    assert len(rows) == 100 and len({r["id"] for r in rows}) == 100
    assert all("CC0" in r["licence"] and r["original"].startswith("https://") for r in rows)
    assert {r["split"] for r in rows} == {"library", "test"}
    assert (ROOT / "SOURCE.md").is_file()
    photos = people_photos(ROOT)
    assert [p.name for p in photos] == [r["id"] for r in rows]
    for p, r in zip(photos, rows, strict=True):
        assert (p.photo is not None) == (r["mesh"] == "1")
        if p.photo is None:
            continue
        h, w = p.photo.rgb.shape[:2]
        lm = p.photo.landmarks
        # the fitted mesh sits on the photograph: landmarks inside, eyes level-ish, left first
        assert ((lm >= 0) & (lm < [w, h])).all(), p.name
        assert (
            lm[0, 0] < lm[1, 0]
            and abs(float(np.linalg.norm(lm[1] - lm[0])) - float(r["ied_px"])) < 0.2
        )
        assert p.photo.person.shape == (h, w) and p.photo.person.max() > 0.5


@pytest.fixture(scope="module")
def client(bundled_client: httpx.Client) -> httpx.Client:
    return bundled_client


def _png(img: np.ndarray) -> bytes:
    return cv2.imencode(".png", img)[1].tobytes()


def test_real_people_are_not_called_attacks(client: httpx.Client) -> None:
    """The test people as camera frames, RGB only (the photograph's own JPEG bytes) and with
    a rendered live depth map and NIR image: every uncertain answer names its reason,
    nearly none is ``spoof`` and most are ``live`` (the model card gives the split)."""
    from synth.realcheck import live_depth_ir

    decisions: dict[str, Counter[str]] = {"rgb": Counter(), "rgb+depth+ir": Counter()}
    test = [p for p in people_photos(ROOT) if p.split == "test"]
    for person in test:
        jpeg = ("rgb.jpg", person.path.read_bytes())
        sends = [("rgb", {"rgb": jpeg})]
        if person.photo is not None:
            depth, ir = live_depth_ir(person.photo)
            sends.append(
                (
                    "rgb+depth+ir",
                    {"rgb": jpeg, "depth": ("d.png", _png(depth)), "ir": ("i.png", _png(ir))},
                )
            )
        for mode, files in sends:
            r = client.post("/liveness", files=files, data={"depth_scale": "0.001"})
            assert r.status_code == 200, r.text
            faces = r.json()["faces"]
            if not faces:
                assert "no_face" in r.json()["reasons"], r.json()
                decisions[mode]["no_face"] += 1
                continue
            face = faces[0]
            if face["decision"] == "uncertain":
                assert face["reasons"], (person.name, mode, face)
            decisions[mode][face["decision"]] += 1
    n = len(test)
    assert decisions["rgb"]["spoof"] <= 0.04 * n, decisions
    assert decisions["rgb"]["live"] >= 0.4 * n, decisions
    assert decisions["rgb"]["no_face"] <= 0.1 * n, decisions
    assert decisions["rgb+depth+ir"]["spoof"] <= 0.06 * n, decisions
    assert decisions["rgb+depth+ir"]["live"] >= 0.5 * n, decisions
