"""``liveness synth``: generate the synthetic benchmark, full scenes, and RealSense recordings."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import click
import cv2
import numpy as np

from models.cli_options import renamed_option
from synth.benchmark import SCALES, SPLITS
from synth.profiles import PROFILES
from synth.species import ALL_SPECIES

log = logging.getLogger(__name__)


@click.group("synth", help="Generate the synthetic multi-sensor PAD benchmark.")
def synth() -> None:
    pass


@synth.command("benchmark")
@click.option("--out", "out", type=click.Path(path_type=Path), required=True, help="Output folder.")
@click.option("--scale", type=click.Choice(sorted(SCALES)), default="standard", show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--workers", type=int, default=None, help="Worker processes (default: up to 2).")
@click.option(
    "--family",
    type=click.Choice(["main", "alt"]),
    default="main",
    show_default=True,
    help="Rendering family; 'alt' (another camera, room and depth sensor) is for "
    "cross-generator tests only.",
)
@click.option(
    "--split",
    "splits",
    type=click.Choice(list(SPLITS)),
    multiple=True,
    help="Render only this split (repeatable; default: all). A cross-generator test set "
    "needs only '--split test'.",
)
def benchmark_cmd(
    out: Path, scale: str, seed: int, workers: int | None, family: str, splits: tuple[str, ...]
) -> None:
    """Aligned crops + protocol lists (intra, cross_profile, unseen_*) + manifest."""
    from synth.benchmark import generate_benchmark

    manifest = generate_benchmark(
        out,
        scale=scale,
        seed=seed,
        progress=True,
        workers=workers,
        family=family,
        splits=splits or SPLITS,
    )
    info = json.loads(manifest.read_text())
    click.echo(
        f"wrote {info['counts']['total']} samples to {out} in {info['seconds']} s "
        f"({len(info['protocols'])} protocols); manifest: {manifest}"
    )


def write_scene(scene: object, out: Path, name: str) -> dict[str, object]:
    """Write one full scene (RGB/depth/IR PNGs) and return its ground-truth record."""
    from synth.scene import Scene

    assert isinstance(scene, Scene)
    for sub in ("rgb", "depth", "ir"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out / "rgb" / f"{name}.png"), cv2.cvtColor(scene.rgb, cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(out / "depth" / f"{name}.png"), scene.depth)
    cv2.imwrite(str(out / "ir" / f"{name}.png"), scene.ir)
    return {
        "id": name,
        "rgb": f"rgb/{name}.png",
        "depth": f"depth/{name}.png",
        "ir": f"ir/{name}.png",
        "depth_scale": scene.depth_scale,
        "box": np.round(scene.box, 2).tolist(),
        "landmarks": np.round(scene.landmarks, 2).tolist(),
        "label": scene.label,
        "species": scene.species,
        "profile": scene.profile,
        "info": scene.info,
    }


@synth.command("scenes")
@click.option("--out", "out", type=click.Path(path_type=Path), required=True)
@click.option("--n", "n", type=int, default=20, show_default=True, help="Number of scenes.")
@click.option("--profile", type=click.Choice(PROFILES), default="d435", show_default=True)
@click.option(
    "--species",
    "species",
    multiple=True,
    type=click.Choice(ALL_SPECIES),
    help="Species to draw from (repeatable; default: all, bona fide every other).",
)
@click.option("--seed", type=int, default=0, show_default=True)
def scenes_cmd(out: Path, n: int, profile: str, species: tuple[str, ...], seed: int) -> None:
    """Full registered frames with ground truth (box, 5 landmarks, label) in scenes.json."""
    from synth.scene import render_scene

    out.mkdir(parents=True, exist_ok=True)
    attacks = [s for s in (species or ALL_SPECIES) if s != "bona_fide"]
    records = []
    for i in range(n):
        if species and len(species) == 1:
            sp = species[0]
        elif (not species or "bona_fide" in species) and (i % 2 == 0 or not attacks):
            sp = "bona_fide"
        else:
            sp = attacks[(i // 2) % len(attacks)]
        scene = render_scene(sp, profile, seed * 100003 + i)
        records.append(write_scene(scene, out, f"{i:05d}_{sp}"))
    (out / "scenes.json").write_text(
        json.dumps({"profile": profile, "seed": seed, "scenes": records}, indent=1) + "\n"
    )
    click.echo(f"wrote {n} scenes to {out}")


@synth.command("recordings")
@click.option("--out", "out", type=click.Path(path_type=Path), required=True)
@click.option("--profile", type=click.Choice(PROFILES), default="d435", show_default=True)
@click.option("--frames", type=int, default=30, show_default=True, help="Frames per recording.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--fps", type=int, default=30, show_default=True)
def recordings_cmd(out: Path, profile: str, frames: int, seed: int, fps: int) -> None:
    """RealSense recordings (.db3) of a live, a print and a replay sequence with motion."""
    import importlib.util

    from synth.recordings import write_recordings

    # Checked before rendering: without pyrealsense2 the first write fails minutes later.
    if importlib.util.find_spec("pyrealsense2") is None:
        raise click.ClickException(
            "'liveness synth recordings' needs the package 'pyrealsense2', which is not "
            "installed: pip install 'flexlive[realsense]' (in a clone: .venv/bin/pip install "
            "-e '.[realsense]')"
        )
    paths = write_recordings(out, profile=profile, n_frames=frames, seed=seed, fps=fps)
    for p in paths:
        click.echo(str(p))


@synth.command("sanity")
@click.option(
    "--data",
    type=click.Path(path_type=Path, exists=True),
    required=True,
    help="A benchmark folder written by 'liveness synth benchmark'.",
)
@click.option("--protocol", "protocols", multiple=True, default=("intra",), show_default=True)
def sanity_cmd(data: Path, protocols: tuple[str, ...]) -> None:
    """Trivial baseline: logistic regression on global per-modality statistics (JSON)."""
    from synth.sanity import evaluate

    result = {p: evaluate(data, p) for p in protocols}
    click.echo(json.dumps(result, indent=1))


@synth.command("preview")
@click.option("--out", "out", type=click.Path(path_type=Path), required=True, help="PNG file.")
@click.option("--profile", type=click.Choice(PROFILES), default="d435", show_default=True)
@click.option(
    "--per-species", "seeds", type=int, default=3, show_default=True, help="Samples per species."
)
@click.option("--seed", type=int, default=0, show_default=True)
@renamed_option("--seeds", "--per-species", "--seed is the random seed")
def preview_cmd(out: Path, profile: str, seeds: int, seed: int) -> None:
    """Contact sheet: per species, aligned RGB | depth | IR crops as the model sees them."""
    from synth.preview import contact_sheet

    sheet = contact_sheet(profile, seeds, seed)
    out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
    click.echo(f"wrote {out}")
