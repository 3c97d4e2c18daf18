"""Build the independent real-people set from the inter-faces photographs (CC0).

An offline, one-off step (its output is committed beside this file); nothing at run time
calls it. It needs MediaPipe 0.10.14 (see ``synth/build_faces.py``), which is not a
FlexLive dependency::

    git clone https://github.com/cjdowner/interfaces /tmp/interfaces   # v1.4, 2166b22
    python -m venv /tmp/mp && /tmp/mp/bin/pip install mediapipe==0.10.14 scipy
    /tmp/mp/bin/python benchmarks/real_people/build.py \
        --photos "/tmp/interfaces/500 x 500" --credits /tmp/interfaces/CREDITS.md \
        --out benchmarks/real_people

For every photograph it writes ``photos/<id>.jpg`` (the published 500×500 photograph
re-encoded at JPEG quality 90 to keep the repository small; no other change), and where
MediaPipe finds exactly one face, its 468-point face mesh (``meshes.npz``, the
photograph's own pixels) and person mask (``photos/<id>_mask.png``), so that checks with
depth and infrared can render a live head on the photograph's pixel grid
(:func:`synth.realcheck.live_depth_ir`). ``people.csv`` records source, licence, split,
whether the photograph is in colour and whether it has a mesh.

Splits (by photograph, each a different person): odd ids ``library`` (added to the
generator's face library as training identities by ``python -m synth.build_faces
--append-people``), even ids ``test`` (never rendered by the generator, never used to
choose a model: report only).
"""

from __future__ import annotations

import argparse
import csv
import re
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from synth.build_faces import _colourfulness, five_points  # noqa: E402

LICENCE = "CC0 1.0 (inter-faces v1.4 by cjdowner; photographs from Pexels and Unsplash)"
#: Mean |R−G| + |G−B| of the face box below this: a black-and-white photograph.
GREY_COLOURFULNESS = 6.0


def credits(path: Path) -> dict[str, str]:
    """``NNN`` → the original photograph's page, from the collection's CREDITS.md."""
    out = {}
    for m in re.finditer(r"\[(\d{3})\.jpg\]\((\S+?)\)", path.read_text()):
        out[m.group(1)] = m.group(2)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--photos", type=Path, required=True, help="the collection's 500 x 500 folder")
    ap.add_argument("--credits", type=Path, required=True, help="the collection's CREDITS.md")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)

    import mediapipe as mp  # noqa: PLC0415 - only this offline step needs it

    mesh_model = mp.solutions.face_mesh.FaceMesh(
        static_image_mode=True, max_num_faces=2, refine_landmarks=False
    )
    seg_model = mp.solutions.selfie_segmentation.SelfieSegmentation(model_selection=0)
    urls = credits(args.credits)
    (args.out / "photos").mkdir(parents=True, exist_ok=True)
    rows, ids, meshes = [], [], []
    for path in sorted(args.photos.glob("*.jpg")):
        ident = path.stem
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is None:
            raise SystemExit(f"{path}: unreadable")
        cv2.imwrite(str(args.out / "photos" / f"{ident}.jpg"), bgr, [cv2.IMWRITE_JPEG_QUALITY, 90])
        # Fit on the bytes that are committed, so mesh and photograph agree.
        bgr = cv2.imread(str(args.out / "photos" / f"{ident}.jpg"), cv2.IMREAD_COLOR)
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        h, w = rgb.shape[:2]
        faces = mesh_model.process(rgb).multi_face_landmarks or []
        mesh = None
        if len(faces) == 1:
            mesh = np.array([[p.x * w, p.y * h, p.z * w] for p in faces[0].landmark])
            x0, y0 = np.clip(mesh[:, :2].min(0).astype(int), 0, None)
            x1, y1 = mesh[:, :2].max(0).astype(int)
            colour = _colourfulness(rgb[y0:y1, x0:x1]) >= GREY_COLOURFULNESS
            seg = seg_model.process(rgb).segmentation_mask
            mask = (np.clip(seg, 0, 1) * 255).round().astype(np.uint8)
            cv2.imwrite(str(args.out / "photos" / f"{ident}_mask.png"), mask)
            ids.append(ident)
            meshes.append(mesh)
        else:
            colour = _colourfulness(rgb) >= GREY_COLOURFULNESS
        lm = five_points(mesh) if mesh is not None else None
        rows.append(
            {
                "id": ident,
                "split": "library" if int(ident) % 2 else "test",
                "colour": int(colour),
                "mesh": int(mesh is not None),
                "ied_px": round(float(np.linalg.norm(lm[1] - lm[0])), 1) if lm is not None else "",
                "source": "cjdowner/interfaces " + f"500 x 500/{ident}.jpg",
                "original": urls.get(ident, ""),
                "licence": LICENCE,
            }
        )
    np.savez_compressed(
        args.out / "meshes.npz", ids=np.array(ids), mesh=np.stack(meshes).astype(np.float32)
    )
    with (args.out / "people.csv").open("w", newline="") as fh:
        wr = csv.DictWriter(fh, fieldnames=list(rows[0]))
        wr.writeheader()
        wr.writerows(rows)
    print(
        f"{len(rows)} photographs, {len(ids)} with one fitted face mesh, "
        f"{sum(1 - int(r['colour']) for r in rows)} black and white"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
