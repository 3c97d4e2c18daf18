"""Build the generator's face assets from public-domain portrait photographs.

An offline, one-off step (its output is committed under ``synth/assets/``); the generator
itself never runs it. It needs MediaPipe 0.10.14 (the last wheel that ships its face
models, Apache-2.0) and SciPy, which are not FlexLive dependencies: run it in a separate
virtual environment::

    python -m venv /tmp/mp && /tmp/mp/bin/pip install mediapipe==0.10.14 scipy
    /tmp/mp/bin/python -m synth.build_faces --photos DIR --members members.csv \
        --out synth/assets

For every photograph it fits MediaPipe's 468-point face mesh (x, y in pixels, z relative
depth on the same scale as x) and the selfie segmentation (person vs. background),
rejects what cannot serve as a frontal colour face texture, aligns the rest to one
canonical frame (eyes level, fixed inter-eye distance) and writes:

- ``faces/<id>.jpg``      aligned colour texture (RGB content, JPEG)
- ``faces/<id>_mask.png`` aligned person mask (hair, head, neck, shoulders), 8-bit
- ``faces.npz``           ``ids``, ``mesh`` (N×468×3 texture pixels, float16),
                          ``triangles`` (T×3 mesh indices), texture geometry
- ``faces.csv``           manifest: id, name, source, path, licence, split, measurements

Splits are by identity (train / dev / test), and ``holdout`` identities are kept out of
all three for the real-photograph check.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import cv2
import numpy as np

#: Canonical texture frame: size (w, h), eye midpoint, inter-eye distance (pixels).
TEX_W, TEX_H = 200, 240
TEX_EYE_MID = (100.0, 96.0)
TEX_IED = 40.0
#: MediaPipe face-mesh indices: eye contours (image-left eye = the subject's right eye),
#: nose tip, mouth corners.
LEFT_EYE = (33, 133, 159, 145, 160, 144, 158, 153)
RIGHT_EYE = (362, 263, 386, 374, 387, 373, 385, 380)
NOSE_TIP = 1
MOUTH = (61, 291)

LICENCE = (
    "public domain (official portrait of a member of the U.S. Congress, a work of the "
    "U.S. federal government, 17 U.S.C. 105)"
)


def five_points(mesh: np.ndarray) -> np.ndarray:
    """The project's 5 landmarks from a 468-point mesh (x, y)."""
    return np.array(
        [
            mesh[list(LEFT_EYE), :2].mean(0),
            mesh[list(RIGHT_EYE), :2].mean(0),
            mesh[NOSE_TIP, :2],
            mesh[MOUTH[0], :2],
            mesh[MOUTH[1], :2],
        ]
    )


def _split(identity: str, holdout: set[str]) -> str:
    if identity in holdout:
        return "holdout"
    h = int(hashlib.sha256(identity.encode()).hexdigest()[:8], 16) % 100
    return "train" if h < 70 else ("dev" if h < 85 else "test")


def _colourfulness(rgb: np.ndarray) -> float:
    f = rgb.astype(np.float32)
    return float(np.mean(np.abs(f[..., 0] - f[..., 1]) + np.abs(f[..., 1] - f[..., 2])))


def fit_photo(
    ident: str, bgr: np.ndarray, mesh_model: Any, seg_model: Any, min_ied: float
) -> dict[str, object] | str:
    """One photograph fitted and aligned to the canonical texture frame, or why it cannot
    serve as a frontal colour face texture (a reason to count)."""
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    h, w = rgb.shape[:2]
    res = mesh_model.process(rgb)
    faces = res.multi_face_landmarks or []
    if len(faces) != 1:
        return "not exactly one face"
    mesh = np.array([[p.x * w, p.y * h, p.z * w] for p in faces[0].landmark])
    lm = five_points(mesh)
    ied = float(np.linalg.norm(lm[1] - lm[0]))
    if ied < min_ied:
        return "face too small"
    mid = (lm[0] + lm[1]) / 2
    if abs(float(lm[2, 0] - mid[0])) / ied > 0.16:
        return "turned head"
    # A mesh touching the frame's edge is kept (the committed library was built so; the
    # texture's border is reflected and the person mask covers the rest).
    x0, y0 = np.floor(mesh[:, :2].min(0)).astype(int)
    x1, y1 = np.ceil(mesh[:, :2].max(0)).astype(int)
    if _colourfulness(rgb[max(y0, 0) : y1, max(x0, 0) : x1]) < 16.0:
        return "black and white"
    seg = seg_model.process(rgb).segmentation_mask
    # Similarity: eyes level at the canonical midpoint and distance.
    d = lm[1] - lm[0]
    s = TEX_IED / ied
    ang = np.arctan2(d[1], d[0])
    c, si = s * np.cos(-ang), s * np.sin(-ang)
    M = np.array([[c, -si, 0.0], [si, c, 0.0]])
    M[:, 2] = np.asarray(TEX_EYE_MID) - M[:, :2] @ mid
    tex = cv2.warpAffine(
        rgb,
        M,
        (TEX_W, TEX_H),
        flags=cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC,
        borderMode=cv2.BORDER_REFLECT,
    )
    inside = cv2.warpAffine(np.ones((h, w), np.float32), M, (TEX_W, TEX_H), borderValue=0)
    person = cv2.warpAffine(seg.astype(np.float32), M, (TEX_W, TEX_H), borderValue=0)
    person = np.clip(person * (inside > 0.99), 0, 1)
    tmesh = np.concatenate([mesh[:, :2] @ M[:, :2].T + M[:, 2], mesh[:, 2:] * s], axis=1)
    if float(person[int(TEX_EYE_MID[1]), int(TEX_EYE_MID[0])]) < 0.5:
        return "segmentation missed the face"
    return {
        "id": ident,
        "tex": tex,
        "mask": (person * 255).round().astype(np.uint8),
        "mesh": tmesh,
        "ied_px": round(ied, 1),
        "source_size": f"{w}x{h}",
        "photo": rgb,
        "photo_mesh": mesh,
        "photo_mask": (np.clip(seg, 0, 1) * 255).round().astype(np.uint8),
    }


def _head_cut(person: np.ndarray) -> bool:
    """Whether the photograph's top edge cuts through the person (more than a tenth of the
    top rows is person): rendered, such a head would end in a straight line, a cue no live
    head carries."""
    return float((person[:3].max(0) > 127).mean()) > 0.1


def append_people(
    out: Path, people: Path, take: str, prefix: str, mesh_model: Any, seg_model: Any, min_ied: float
) -> dict[str, object]:
    """Add the photographs of a real-people folder (``people.csv`` + ``photos/``, as
    ``benchmarks/real_people``) whose split is ``take`` to the library as **train**
    identities named ``<prefix><id>``, leaving every existing identity, the mesh triangles
    and the dev/test/holdout splits untouched."""
    data = dict(np.load(out / "faces.npz"))
    rows = list(csv.DictReader((out / "faces.csv").open(newline="")))
    known = {r["id"] for r in rows}
    added, rejected = [], {}
    for r in csv.DictReader((people / "people.csv").open(newline="")):
        if r["split"] != take:
            continue
        ident = prefix + r["id"]
        if ident in known:
            raise SystemExit(f"identity {ident} is already in {out / 'faces.csv'}")
        bgr = cv2.imread(str(people / "photos" / f"{r['id']}.jpg"), cv2.IMREAD_COLOR)
        if bgr is None:
            raise SystemExit(f"{people / 'photos' / r['id']}.jpg: unreadable")
        fitted = fit_photo(ident, bgr, mesh_model, seg_model, min_ied)
        if not isinstance(fitted, str) and _head_cut(np.asarray(fitted["photo_mask"])):
            fitted = "head cut by the frame"
        if isinstance(fitted, str):
            rejected[fitted] = rejected.get(fitted, 0) + 1
            continue
        cv2.imwrite(
            str(out / "faces" / f"{ident}.jpg"),
            cv2.cvtColor(np.asarray(fitted["tex"]), cv2.COLOR_RGB2BGR),
            [cv2.IMWRITE_JPEG_QUALITY, 90],
        )
        cv2.imwrite(str(out / "faces" / f"{ident}_mask.png"), np.asarray(fitted["mask"]))
        added.append(fitted)
        rows.append(
            {
                "id": ident,
                "name": f"inter-faces {r['id']}",
                "split": "train",
                "source": r["source"],
                "source_path": r["original"],
                "licence": r["licence"],
                "ied_px": fitted["ied_px"],
                "source_size": fitted["source_size"],
            }
        )
    data["ids"] = np.concatenate([data["ids"], np.array([str(k["id"]) for k in added])])
    new_mesh = np.stack([np.asarray(k["mesh"]) for k in added]).astype(np.float16)
    data["mesh"] = np.concatenate([data["mesh"], new_mesh])
    np.savez_compressed(out / "faces.npz", **data)
    with (out / "faces.csv").open("w", newline="") as fh:
        wr = csv.DictWriter(fh, fieldnames=list(rows[0]))
        wr.writeheader()
        wr.writerows(rows)
    return {"added": len(added), "rejected": rejected}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--photos", type=Path, help="folder of <icpsr>.jpg")
    ap.add_argument("--members", type=Path, help="voteview members.csv")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--max", type=int, default=480, help="most identities kept")
    ap.add_argument("--holdout", type=int, default=24, help="identities kept for real checks")
    ap.add_argument("--min-ied", type=float, default=26.0)
    ap.add_argument(
        "--extra",
        action="append",
        default=[],
        metavar="NAME=PATH=CREDIT",
        help="another public-domain portrait for the holdout set only",
    )
    ap.add_argument(
        "--append-people",
        type=Path,
        metavar="DIR",
        help="instead of building: add the --append-split photographs of this real-people "
        "folder to the existing library in --out as train identities",
    )
    ap.add_argument("--append-split", default="library")
    ap.add_argument("--append-prefix", default="if")
    args = ap.parse_args(argv)
    if args.append_people is None and (args.photos is None or args.members is None):
        ap.error("--photos and --members are required unless --append-people is given")

    import mediapipe as mp  # noqa: PLC0415 - only this offline step needs it
    from scipy.spatial import Delaunay  # noqa: PLC0415

    mesh_model = mp.solutions.face_mesh.FaceMesh(
        static_image_mode=True, max_num_faces=2, refine_landmarks=False
    )
    seg_model = mp.solutions.selfie_segmentation.SelfieSegmentation(model_selection=0)
    if args.append_people is not None:
        res = append_people(
            args.out,
            args.append_people,
            args.append_split,
            args.append_prefix,
            mesh_model,
            seg_model,
            args.min_ied,
        )
        print(json.dumps(res, indent=1))
        return 0
    members = {r["icpsr"]: r for r in csv.DictReader(args.members.open())}
    kept: list[dict[str, object]] = []
    rejected: dict[str, int] = {}

    def reject(why: str) -> None:
        rejected[why] = rejected.get(why, 0) + 1

    extras: dict[str, str] = {}
    jobs = [(p.stem, p) for p in sorted(args.photos.glob("*.jpg"))]
    for spec in args.extra:
        name, path_s, credit = spec.split("=", 2)
        extras[name] = credit
        members[name] = {"name": name, "credit": credit}
        jobs.append((name, Path(path_s)))
    for ident, path in jobs:
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is None or ident not in members:
            reject("unreadable or unknown")
            continue
        fitted = fit_photo(ident, bgr, mesh_model, seg_model, args.min_ied)
        if isinstance(fitted, str):
            reject(fitted)
            continue
        kept.append(fitted)
    extra_kept = [k for k in kept if k["id"] in extras]
    kept = [k for k in kept if k["id"] not in extras][: args.max]
    # Holdout: every k-th identity in id order, deterministic; extras are held out too.
    step = max(1, len(kept) // max(args.holdout, 1))
    holdout = {str(k["id"]) for k in kept[::step][: args.holdout]} | set(extras)
    kept += extra_kept
    out = args.out
    (out / "faces").mkdir(parents=True, exist_ok=True)
    mean_mesh = np.mean([np.asarray(k["mesh"])[:, :2] for k in kept], axis=0)
    triangles = Delaunay(mean_mesh).simplices.astype(np.int16)
    rows = []
    for k in kept:
        ident = str(k["id"])
        split = _split(ident, holdout)
        if split != "holdout":
            cv2.imwrite(
                str(out / "faces" / f"{ident}.jpg"),
                cv2.cvtColor(np.asarray(k["tex"]), cv2.COLOR_RGB2BGR),
                [cv2.IMWRITE_JPEG_QUALITY, 90],
            )
            cv2.imwrite(str(out / "faces" / f"{ident}_mask.png"), np.asarray(k["mask"]))
        m = members[ident]
        extra = ident in extras
        rows.append(
            {
                "id": ident,
                "name": m["name"],
                "split": split,
                "source": extras[ident].split(";")[0]
                if extra
                else ("voteview/member_photos (Biographical Directory of the U.S. Congress)"),
                "source_path": extras[ident].split(";")[1]
                if extra
                else (f"images/bio_guide/{ident}.jpg"),
                "licence": extras[ident].split(";")[2] if extra else LICENCE,
                "ied_px": k["ied_px"],
                "source_size": k["source_size"],
            }
        )
    used = [k for k, r in zip(kept, rows, strict=True) if r["split"] != "holdout"]
    np.savez_compressed(
        out / "faces.npz",
        ids=np.array([str(k["id"]) for k in used]),
        mesh=np.stack([np.asarray(k["mesh"]) for k in used]).astype(np.float16),
        triangles=triangles,
        texture=np.array([TEX_W, TEX_H, TEX_EYE_MID[0], TEX_EYE_MID[1], TEX_IED]),
    )
    # Held-out people: the original full-frame photograph, its mesh and person mask in the
    # photograph's own pixels, for the real-photograph check (never rendered from).
    held = [k for k, r in zip(kept, rows, strict=True) if r["split"] == "holdout"]
    (out / "holdout").mkdir(exist_ok=True)
    for k in held:
        ident = str(k["id"])
        cv2.imwrite(
            str(out / "holdout" / f"{ident}.jpg"),
            cv2.cvtColor(np.asarray(k["photo"]), cv2.COLOR_RGB2BGR),
            [cv2.IMWRITE_JPEG_QUALITY, 95],
        )
        cv2.imwrite(str(out / "holdout" / f"{ident}_mask.png"), np.asarray(k["photo_mask"]))
    np.savez_compressed(
        out / "holdout.npz",
        ids=np.array([str(k["id"]) for k in held]),
        mesh=np.stack([np.asarray(k["photo_mesh"]) for k in held]).astype(np.float32),
    )
    with (out / "faces.csv").open("w", newline="") as fh:
        wr = csv.DictWriter(fh, fieldnames=list(rows[0]))
        wr.writeheader()
        wr.writerows(rows)
    summary = {
        "kept": len(kept),
        "rejected": rejected,
        "splits": {
            s: sum(r["split"] == s for r in rows) for s in ("train", "dev", "test", "holdout")
        },
    }
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
