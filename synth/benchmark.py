"""The synthetic PAD benchmark on disk: aligned crops, Flex-Modal protocol lists, manifest.

Each sample is a full registered scene rendered by :func:`synth.render_scene`,
cropped with the project's one crop convention (:func:`models.crop.crop_modalities`) at
the model input size. Per-sample seeds derive from (seed, profile, species, index), so the
output is byte-identical for a seed however many worker processes render it.

Layout under ``out``::

    crops/{rgb,depth,ir}/<id>.png        RGB 8-bit, depth 16-bit (mm), IR 8-bit
    protocols/<protocol>/{train,dev,test}.txt (+ _species.txt side files)
    samples.jsonl                          one line per sample: split, species, nuisances
    manifest.json                          version, seed, scale, counts, timing
"""

from __future__ import annotations

import json
import logging
import multiprocessing as mp
import os
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from models.crop import FACE_SCALE, crop_modalities
from models.datasets.protocol import ProtocolEntry, write_protocol
from synth.profiles import PROFILES
from synth.scene import render_scene
from synth.species import ALL_SPECIES, BONA_FIDE, SPECIES

log = logging.getLogger(__name__)

#: 2.2.0 adds 25 train identities (CC0 stock portraits: young, women, dark skin, outdoor
#: light); train scenes change, dev and test scenes are byte-identical to 2.1.1 (whose
#: ``alt`` flying pixels mix the surfaces on either side of a depth edge, never a hole).
GENERATOR_VERSION = "2.3.0"
CROP_SIZE = 112
#: Profile of the intra-profile protocols and the training side of cross-profile.
PRIMARY_PROFILE = "d435"
SECONDARY_PROFILE = "sr305"
#: Species held out in the unseen-attack protocols.
UNSEEN = ("mask_rigid", "replay_monitor", "print_flat", "mask_silicone", "print_cutout")
#: Samples per (profile, species): (bona fide, each attack species).
SCALES: dict[str, tuple[int, int]] = {
    "tiny": (6, 3),
    "small": (90, 30),
    "standard": (1300, 300),
    # twice standard and a superset of it (same seeds for the same indices): a bigger
    # training set; its train split alone renders in ~16 min on 2 cores
    "large": (2600, 600),
}
#: Split of the k-th sample of each (profile, species) group: about 60/20/20 and every
#: split non-empty from three samples on.
_SPLIT_PATTERN = (
    "train",
    "test",
    "dev",
    "train",
    "train",
    "train",
    "test",
    "dev",
    "train",
    "train",
)
SPLITS = ("train", "dev", "test")


@dataclass(frozen=True)
class SampleSpec:
    id: str
    profile: str
    species: str
    index: int
    seed: int
    split: str


def sample_seed(seed: int, profile: str, species: str, index: int) -> int:
    ss = np.random.SeedSequence(
        [seed & 0xFFFFFFFF, PROFILES.index(profile), ALL_SPECIES.index(species), index]
    )
    return int(ss.generate_state(1)[0])


def plan(scale: str, seed: int) -> list[SampleSpec]:
    """Every sample of a benchmark, in a fixed order."""
    if scale not in SCALES:
        raise ValueError(f"unknown scale '{scale}'; choose one of {sorted(SCALES)}")
    n_bona, n_attack = SCALES[scale]
    specs = []
    for profile in PROFILES:
        for species in ALL_SPECIES:
            n = n_bona if species == BONA_FIDE else n_attack
            for i in range(n):
                specs.append(
                    SampleSpec(
                        id=f"{profile}_{species}_{i:05d}",
                        profile=profile,
                        species=species,
                        index=i,
                        seed=sample_seed(seed, profile, species, i),
                        split=_SPLIT_PATTERN[i % len(_SPLIT_PATTERN)],
                    )
                )
    return specs


def _write_png(path: Path, img: np.ndarray) -> None:
    # PNG compression level 3: about 2× faster than the default for ~5 % more bytes.
    ok, buf = cv2.imencode(".png", img, [cv2.IMWRITE_PNG_COMPRESSION, 3])
    if not ok:
        raise OSError(f"could not encode {path}")
    path.write_bytes(buf.tobytes())


def render_sample(spec: SampleSpec, out: Path, family: str = "main") -> dict[str, object]:
    """Render, crop and write one sample; returns its record for samples.jsonl."""
    cpu0 = time.process_time()
    scene = render_scene(spec.species, spec.profile, spec.seed, split=spec.split, family=family)
    rgb, depth, ir, _ = crop_modalities(
        scene.landmarks, CROP_SIZE, scene.rgb, scene.depth, scene.ir
    )
    assert rgb is not None and depth is not None and ir is not None
    _write_png(out / "crops" / "rgb" / f"{spec.id}.png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    _write_png(out / "crops" / "depth" / f"{spec.id}.png", depth)
    _write_png(out / "crops" / "ir" / f"{spec.id}.png", ir)
    return {
        "id": spec.id,
        "profile": spec.profile,
        "species": spec.species,
        "label": scene.label,
        "split": spec.split,
        "seed": spec.seed,
        "depth_valid": round(float((depth > 0).mean()), 4),
        "cpu_s": round(time.process_time() - cpu0, 4),
        **scene.info,
    }


def _worker_init() -> None:
    cv2.setNumThreads(1)


def _render_task(args: tuple[SampleSpec, str, str]) -> dict[str, object]:
    spec, out, family = args
    return render_sample(spec, Path(out), family)


def entry(spec: SampleSpec) -> ProtocolEntry:
    return ProtocolEntry(
        rgb=f"crops/rgb/{spec.id}.png",
        depth=f"crops/depth/{spec.id}.png",
        ir=f"crops/ir/{spec.id}.png",
        label=int(spec.species == BONA_FIDE),
        species=spec.species,
    )


def protocols(specs: list[SampleSpec]) -> dict[str, dict[str, list[SampleSpec]]]:
    """Protocol name → split → samples."""

    def pick(
        profile: str | None, split: str | None, species: set[str] | None = None
    ) -> list[SampleSpec]:
        return [
            s
            for s in specs
            if (profile is None or s.profile == profile)
            and (split is None or s.split == split)
            and (species is None or s.species in species)
        ]

    out: dict[str, dict[str, list[SampleSpec]]] = {
        "intra": {sp: pick(PRIMARY_PROFILE, sp) for sp in SPLITS},
        f"intra_{SECONDARY_PROFILE}": {sp: pick(SECONDARY_PROFILE, sp) for sp in SPLITS},
        # Train and calibrate on one sensor, test on every sample of the other.
        "cross_profile": {
            "train": pick(PRIMARY_PROFILE, "train"),
            "dev": pick(PRIMARY_PROFILE, "dev"),
            "test": pick(SECONDARY_PROFILE, None),
        },
        "combined": {sp: pick(None, sp) for sp in SPLITS},
    }
    for held in UNSEEN:
        seen = set(ALL_SPECIES) - {held}
        out[f"unseen_{held}"] = {
            "train": pick(PRIMARY_PROFILE, "train", seen),
            "dev": pick(PRIMARY_PROFILE, "dev", seen),
            # The held-out species never appears in training: all its samples are test.
            "test": pick(PRIMARY_PROFILE, "test", {BONA_FIDE})
            + pick(PRIMARY_PROFILE, None, {held}),
        }
    return out


def _counts(items: list[SampleSpec]) -> dict[str, object]:
    return {
        "total": len(items),
        "bona_fide": sum(s.species == BONA_FIDE for s in items),
        "attack": sum(s.species != BONA_FIDE for s in items),
        "species": dict(sorted(Counter(s.species for s in items).items())),
        "profiles": dict(sorted(Counter(s.profile for s in items).items())),
    }


def generate_benchmark(
    out: Path,
    scale: str = "standard",
    seed: int = 0,
    progress: bool = True,
    workers: int | None = None,
    family: str = "main",
    splits: tuple[str, ...] = SPLITS,
) -> Path:
    """Write the benchmark to ``out`` and return the path of its manifest. ``family`` "alt"
    renders the cross-generator family (``synth.family``): evaluate a main-family model on
    its test split with the model's own thresholds. ``splits`` renders only those splits
    (the samples keep the seeds and identities they have in the whole benchmark; protocol
    lists of the others are empty)."""
    out = Path(out)
    unknown = set(splits) - set(SPLITS)
    if unknown or not splits:
        raise ValueError(f"splits must be among {SPLITS}, got {sorted(splits)}")
    specs = [s for s in plan(scale, seed) if s.split in splits]
    for m in ("rgb", "depth", "ir"):
        (out / "crops" / m).mkdir(parents=True, exist_ok=True)
    if workers is None:
        workers = min(2, os.cpu_count() or 1) if len(specs) > 40 else 1
    t0 = time.perf_counter()
    records: list[dict[str, object]] = []
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(specs), desc=f"synth {scale}", unit="sample")
    tasks = [(s, str(out), family) for s in specs]
    if workers > 1:
        ctx = mp.get_context("spawn")
        with ctx.Pool(workers, initializer=_worker_init) as pool:
            for rec in pool.imap(_render_task, tasks, chunksize=4):
                records.append(rec)
                if bar is not None:
                    bar.update()
    else:
        for task in tasks:
            records.append(_render_task(task))
            if bar is not None:
                bar.update()
    if bar is not None:
        bar.close()
    elapsed = time.perf_counter() - t0
    with (out / "samples.jsonl").open("w") as f:
        for rec in records:
            f.write(json.dumps({**rec, "family": family}, sort_keys=True) + "\n")
    protos = protocols(specs)
    proto_counts: dict[str, dict[str, object]] = {}
    for name, by_split in protos.items():
        proto_counts[name] = {}
        for split, items in by_split.items():
            write_protocol(out / "protocols" / name / f"{split}.txt", [entry(s) for s in items])
            proto_counts[name][split] = _counts(items)
    manifest = {
        "generator": "flexlive.synth",
        "generator_version": GENERATOR_VERSION,
        "family": family,
        "seed": seed,
        "scale": scale,
        "splits": [sp for sp in SPLITS if sp in splits],
        "crop_size": CROP_SIZE,
        "face_scale": FACE_SCALE,
        "depth_scale": 0.001,
        "profiles": list(PROFILES),
        "species": list(SPECIES),
        "primary_profile": PRIMARY_PROFILE,
        "counts": _counts(specs),
        "protocols": proto_counts,
        "workers": workers,
        "seconds": round(elapsed, 1),
        # CPU time of rendering alone: comparable across machines and loads.
        "cpu_seconds": round(sum(float(str(r["cpu_s"])) for r in records), 1),
        "seconds_per_sample": round(elapsed / max(len(specs), 1), 4),
    }
    path = out / "manifest.json"
    path.write_text(json.dumps(manifest, indent=2) + "\n")
    log.info("wrote %d samples to %s in %.1f s", len(specs), out, elapsed)
    return path
