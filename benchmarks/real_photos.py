"""What the service decides on real photographs of live people it has never seen.

The held-out people of the synthetic benchmark (``synth/assets/faces.csv`` split
``holdout``: 24 official congressional portraits and the two public-domain portraits from
matplotlib and scikit-image) are never rendered by the generator. Each photograph is sent
to ``POST /liveness`` as a full frame (the face stage detects and aligns), by default
twice:

- RGB only, exactly the photograph's bytes;
- RGB + depth + IR, with a registered live depth map and NIR image rendered on the
  photograph's own pixel grid from its fitted face mesh (``synth.realcheck``) at 0.6 m,
  the NIR drawn as the generator draws a live face (skin, glints on the corneas;
  ``--no-glints`` leaves the glints out, as with closed or hidden eyes);
- with ``--mode``, any subset with colour (``rgb+depth``, ``rgb+ir`` too).

Every face of a live person should be ``live``, or ``uncertain`` with a reason, and never
``spoof``. The app is the real FastAPI app with the real model and codecs, driven in
process.

``--people benchmarks/real_people`` checks an independent set instead: 100 photographs of
100 people from a CC0 collection of stock portraits (indoor and outdoor light, every age,
many skin tones, hats, glasses, turned heads; ``benchmarks/real_people/SOURCE.md``), none
of them ever used to train or choose a model. Photographs without a fitted face mesh are
sent RGB only. ``--attacks`` also renders prints and replays of every photograph with a
mesh (the six print and replay species, the generator's sheet, screen and camera models,
as ``liveness expert eval`` does for the held-out people) and sends them in the same
modes: every one should be ``spoof``, or ``uncertain``, and never ``live``.

The service tells a client why it could not judge a face (``face_too_small``, ``no_face``,
``too_bright`` …), and the client may be the attacker. ``--adaptive N`` plays one who
follows that guidance: an attack answered with a capture reason is presented again, up
to N more times per mode — closer for ``face_too_small`` (the drawn distance × 0.7),
farther for ``face_too_close`` (× 1.3), otherwise a new presentation (another draw of
pose, light and instrument) — and the last answer is reported beside the first.

    python benchmarks/real_photos.py [--model models/default/flexlive-lite.onnx] [--json out.json]
        [--mode rgb --mode rgb+depth --mode rgb+ir --mode rgb+depth+ir] [--no-glints]
        [--people benchmarks/real_people] [--attacks [--adaptive 3]]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models import DEFAULT_MODEL_PATH  # noqa: E402
from synth.realcheck import (  # noqa: E402
    RealPhoto,
    attack_scene,
    holdout_photos,
    live_depth_ir,
    people_photos,
)
from synth.species import PRINT_SPECIES, REPLAY_SPECIES  # noqa: E402

MODES = ("rgb", "rgb+depth+ir")
#: Every modality subset with colour (``--mode``); the default is MODES.
ALL_MODES = ("rgb", "rgb+depth", "rgb+ir", "rgb+depth+ir")


def _png(img: Any) -> bytes:
    ok, buf = cv2.imencode(".png", img)
    if not ok:
        raise RuntimeError("PNG encoding failed")
    return buf.tobytes()


#: The attacks rendered from each photograph (``--attacks``), and their scene seeds.
PHOTO_ATTACKS = PRINT_SPECIES + REPLAY_SPECIES
ATTACK_SEED_BASE = 1_300_000
PROFILES = ("d435", "sr305")
#: Reasons that ask the client to present the face again, and how an attacker complies
#: (``--adaptive``): a factor on the instrument's distance, or None for a new presentation.
CAPTURE_REASONS: dict[str, float | None] = {
    "face_too_small": 0.7,
    "face_too_close": 1.3,
    "face_cut_by_edge": None,
    "too_dark": None,
    "too_bright": None,
    "blurred": None,
    "pose_too_large": None,
    "depth_holes": None,
    "ir_saturated": None,
    "no_face": None,
}
#: Seed step between an attacker's presentations of the same instrument.
RETRY_SEED_STEP = 7919


def retry(decision: str, reasons: list[str]) -> float | None | bool:
    """How an attacker who follows the service's guidance presents again after this
    answer: a distance factor, None (a new presentation), or False (no guidance to follow:
    the face was judged)."""
    if decision == "live" or decision == "spoof":
        return False
    asked = [r for r in (reasons or ["no_face"]) if r in CAPTURE_REASONS]
    if decision == "no_face":
        asked = asked or ["no_face"]
    if not asked:
        return False
    return CAPTURE_REASONS[asked[0]]


@dataclass(frozen=True)
class Item:
    """One photograph to send: its file bytes, and the fitted photo for depth and IR."""

    name: str
    jpeg: bytes
    photo: RealPhoto | None
    split: str = "holdout"
    colour: bool = True


def _scene(
    cache: dict[tuple[int, float], tuple[Any, bytes]],
    photo: RealPhoto,
    species: str,
    profile: str,
    seed: int,
    distance: float,
) -> tuple[Any, bytes]:
    """The attack scene for (seed, distance) and its colour PNG, rendered and encoded once
    and shared by every mode."""
    if (seed, distance) not in cache:
        scene = attack_scene(photo, species, profile, seed, distance)
        cache[(seed, distance)] = (scene, _png(cv2.cvtColor(scene.rgb, cv2.COLOR_RGB2BGR)))
    return cache[(seed, distance)]


def holdout_items() -> list[Item]:
    return [
        Item(p.name, cv2.imencode(".jpg", cv2.cvtColor(p.rgb, cv2.COLOR_RGB2BGR))[1].tobytes(), p)
        for p in holdout_photos()
    ]


def people_items(root: Path) -> list[Item]:
    return [
        Item(p.name, p.path.read_bytes(), p.photo, p.split, p.colour) for p in people_photos(root)
    ]


def run(
    model: Path,
    distance_mm: float = 600.0,
    modes: tuple[str, ...] = MODES,
    glints: bool = True,
    people: Path | None = None,
    attacks: bool = False,
    adaptive: int = 0,
) -> dict[str, Any]:
    from fastapi.testclient import TestClient

    from service.api import create_app
    from service.settings import Settings

    items = people_items(people) if people is not None else holdout_items()
    app = create_app(Settings(model_path=model, max_faces=1))
    rows: list[dict[str, Any]] = []
    retried: list[dict[str, Any]] = []  # every re-presentation (--adaptive)
    adapted: list[dict[str, Any]] = []  # each attack's last answer (--adaptive)
    with TestClient(app) as client:
        for _ in range(600):
            if client.get("/readyz").status_code == 200:
                break
            time.sleep(0.05)

        def send(
            files: dict[str, tuple[str, bytes]], meta: dict[str, Any], into: list[dict[str, Any]]
        ) -> dict[str, Any]:
            r = client.post("/liveness", files=files, data={"depth_scale": "0.001"})
            if r.status_code != 200:
                raise RuntimeError(f"{meta}: HTTP {r.status_code} {r.text}")
            body = r.json()
            faces = body["faces"]
            face = faces[0] if faces else None
            into.append(
                {
                    **meta,
                    "decision": face["decision"] if face else "no_face",
                    "score": round(float(face["score"]), 4) if face else None,
                    "reasons": (face["reasons"] if face else body.get("reasons", [])),
                    "components": face.get("scores", {}) if face else {},
                    "ood_distance": face.get("ood_distance") if face else None,
                    "subset": body.get("modalities_used") or body.get("modalities"),
                }
            )
            return into[-1]

        def attack_files(shown: tuple[Any, bytes], mode: str) -> dict[str, tuple[str, bytes]]:
            scene, rgb_png = shown
            parts = mode.split("+")
            files = {"rgb": ("rgb.png", rgb_png)}
            if "depth" in parts:
                files["depth"] = ("depth.png", _png(scene.depth))
            if "ir" in parts:
                files["ir"] = ("ir.png", _png(scene.ir))
            return files

        for i, item in enumerate(items):
            base = {"photo": item.name, "split": item.split, "colour": item.colour}
            depth, ir = (
                live_depth_ir(item.photo, distance_mm, glints=glints)
                if item.photo
                else (None, None)
            )
            for mode in modes:
                parts = mode.split("+")
                if depth is None and parts != ["rgb"]:
                    continue  # no fitted mesh: nothing to render depth and IR from
                files = {"rgb": ("rgb.jpg", item.jpeg)}
                if "depth" in parts:
                    files["depth"] = ("depth.png", _png(depth))
                if "ir" in parts:
                    files["ir"] = ("ir.png", _png(ir))
                send(files, {**base, "mode": mode, "kind": "bona_fide"}, rows)
            if not attacks or item.photo is None:
                continue
            for j, species in enumerate(PHOTO_ATTACKS):
                profile = PROFILES[(i + j) % 2]
                scenes: dict[tuple[int, float], tuple[Any, bytes]] = {}

                for mode in modes:
                    meta = {**base, "mode": mode, "kind": species}
                    seed, distance = ATTACK_SEED_BASE + i, 1.0
                    row = send(
                        attack_files(
                            _scene(scenes, item.photo, species, profile, seed, distance), mode
                        ),
                        meta,
                        rows,
                    )
                    final = {**row, "tries": 0}
                    for tries in range(1, adaptive + 1):
                        step = retry(row["decision"], row["reasons"])
                        if step is False:
                            break
                        if step is None:
                            seed += RETRY_SEED_STEP
                        else:
                            distance = round(distance * float(step), 4)
                        row = send(
                            attack_files(
                                _scene(scenes, item.photo, species, profile, seed, distance), mode
                            ),
                            {**meta, "tries": tries, "distance": distance},
                            retried,
                        )
                        final = row
                    if adaptive:
                        adapted.append(final)
        info = client.get("/v1/models").json()
    summary = {
        mode: dict(
            Counter(r["decision"] for r in rows if r["mode"] == mode and r["kind"] == "bona_fide")
        )
        for mode in modes
    }
    out: dict[str, Any] = {
        "model": info.get("name", str(model)),
        "version": info.get("version"),
        "set": str(people) if people is not None else "holdout",
        "photos": len(items),
        "summary": summary,
        "rows": rows,
    }
    if attacks:
        out["attack_summary"] = {
            mode: dict(
                Counter(
                    r["decision"] for r in rows if r["mode"] == mode and r["kind"] != "bona_fide"
                )
            )
            for mode in modes
        }
    if adaptive:
        out["adaptive"] = {
            "max_retries": adaptive,
            "re_presentations": len(retried),
            "summary": {
                mode: dict(Counter(r["decision"] for r in adapted if r["mode"] == mode))
                for mode in modes
            },
            "rows": adapted,
        }
    return out


def _counts_table(rows: list[dict[str, Any]], modes: tuple[str, ...], kind: str) -> list[str]:
    lines = [
        "| input | split | live | uncertain | spoof | no face |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    splits = sorted({r["split"] for r in rows})
    groups = [(s, [s]) for s in splits] + ([("all", splits)] if len(splits) > 1 else [])
    for mode in modes:
        for label, sel in groups:
            c = Counter(
                r["decision"]
                for r in rows
                if r["mode"] == mode
                and r["split"] in sel
                and (r["kind"] == "bona_fide") == (kind == "bona_fide")
            )
            if c:
                lines.append(
                    f"| {mode} | {label} | {c.get('live', 0)} | {c.get('uncertain', 0)} "
                    f"| {c.get('spoof', 0)} | {c.get('no_face', 0)} |"
                )
    return lines


def markdown(result: dict[str, Any]) -> str:
    rows = result["rows"]
    modes = tuple(result["summary"])
    what = (
        "real photographs of held-out people"
        if result["set"] == "holdout"
        else f"real photographs of the people in {result['set']}"
    )
    lines = [
        f"model {result['model']} {result['version']}, {result['photos']} {what} (full frames)",
        "",
        *_counts_table(rows, modes, "bona_fide"),
    ]
    live = [r for r in rows if r["kind"] == "bona_fide"]
    grey = Counter(r["decision"] for r in live if not r["colour"] and r["mode"] == "rgb")
    if grey:
        lines += [
            "",
            "black-and-white photographs, RGB only: "
            + ", ".join(f"{k} {v}" for k, v in grey.items()),
        ]
    for mode in modes:
        reasons = Counter(
            reason
            for r in live
            if r["mode"] == mode and r["decision"] == "uncertain"
            for reason in r["reasons"]
        )
        if reasons:
            lines += [
                "",
                f"{mode} uncertain because: "
                + ", ".join(f"{k} {v}" for k, v in reasons.most_common()),
            ]
    if "attack_summary" in result:
        attacks = [r for r in rows if r["kind"] != "bona_fide"]
        lines += [
            "",
            f"prints and replays rendered from them ({len(attacks) // len(modes)} per mode):",
            "",
        ]
        lines += _counts_table(rows, modes, "attack")
        per = Counter((r["mode"], r["kind"], r["decision"]) for r in attacks)
        lines += [
            "",
            "| input | species | spoof | uncertain | live | no face |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        for mode in modes:
            for sp in PHOTO_ATTACKS:
                n = [per[(mode, sp, d)] for d in ("spoof", "uncertain", "live", "no_face")]
                lines.append(f"| {mode} | {sp} | " + " | ".join(map(str, n)) + " |")
    if "adaptive" in result:
        ad = result["adaptive"]
        lines += [
            "",
            f"an attacker who follows the capture reasons, up to {ad['max_retries']} more "
            f"presentations each ({ad['re_presentations']} in all): the last answer",
            "",
            "| input | spoof | uncertain | live | no face | presented again |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        for mode in modes:
            c = ad["summary"].get(mode, {})
            again = sum(1 for r in ad["rows"] if r["mode"] == mode and r["tries"])
            n = [c.get(d, 0) for d in ("spoof", "uncertain", "live", "no_face")]
            lines.append(f"| {mode} | " + " | ".join(map(str, n)) + f" | {again} |")
        still = Counter(
            reason
            for r in ad["rows"]
            if r["decision"] in ("uncertain", "no_face")
            for reason in (r["reasons"] or ["no_face"])
        )
        if still:
            lines += [
                "",
                "still not judged because: "
                + ", ".join(f"{k} {v}" for k, v in still.most_common()),
            ]
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", type=Path, default=DEFAULT_MODEL_PATH)
    ap.add_argument("--distance-mm", type=float, default=600.0)
    ap.add_argument("--json", type=Path, help="also write the per-photo rows here")
    ap.add_argument(
        "--no-glints",
        action="store_true",
        help="render the NIR without corneal glints (eyes closed or hidden): how much the "
        "IR branch leans on them",
    )
    ap.add_argument(
        "--mode",
        action="append",
        choices=ALL_MODES,
        help=f"modality subset sent (repeatable; default: {' and '.join(MODES)})",
    )
    ap.add_argument(
        "--people",
        type=Path,
        help="a folder of real people (people.csv, photos/, meshes.npz) instead of the "
        "held-out people, e.g. benchmarks/real_people",
    )
    ap.add_argument(
        "--attacks",
        action="store_true",
        help="also render prints and replays of every photograph with a face mesh",
    )
    ap.add_argument(
        "--adaptive",
        type=int,
        default=0,
        metavar="N",
        help="with --attacks: present an attack again, up to N times, as its capture reason "
        "asks (closer for face_too_small, ...), and report the last answer",
    )
    args = ap.parse_args()
    if args.adaptive < 0:
        ap.error("--adaptive must be 0 or more")
    if args.adaptive and not args.attacks:
        ap.error("--adaptive needs --attacks")
    if args.people is not None and not (args.people / "people.csv").is_file():
        ap.error(f"--people {args.people}: no people.csv there")
    result = run(
        args.model,
        args.distance_mm,
        tuple(args.mode or MODES),
        not args.no_glints,
        args.people,
        args.attacks,
        args.adaptive,
    )
    print(markdown(result))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
