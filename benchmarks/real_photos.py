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

    python benchmarks/real_photos.py [--model models/default/flexlive-lite.onnx] [--json out.json]
        [--mode rgb --mode rgb+depth --mode rgb+ir --mode rgb+depth+ir] [--no-glints]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import cv2

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models import DEFAULT_MODEL_PATH  # noqa: E402
from synth.realcheck import holdout_photos, live_depth_ir  # noqa: E402

MODES = ("rgb", "rgb+depth+ir")
#: Every modality subset with colour (``--mode``); the default is MODES.
ALL_MODES = ("rgb", "rgb+depth", "rgb+ir", "rgb+depth+ir")


def _png(img: Any) -> bytes:
    ok, buf = cv2.imencode(".png", img)
    if not ok:
        raise RuntimeError("PNG encoding failed")
    return buf.tobytes()


def run(
    model: Path,
    distance_mm: float = 600.0,
    modes: tuple[str, ...] = MODES,
    glints: bool = True,
) -> dict[str, Any]:
    from fastapi.testclient import TestClient

    from service.api import create_app
    from service.settings import Settings

    app = create_app(Settings(model_path=model, max_faces=1))
    rows: list[dict[str, Any]] = []
    with TestClient(app) as client:
        for _ in range(600):
            if client.get("/readyz").status_code == 200:
                break
            time.sleep(0.05)
        for photo in holdout_photos():
            bgr = cv2.cvtColor(photo.rgb, cv2.COLOR_RGB2BGR)
            depth, ir = live_depth_ir(photo, distance_mm, glints=glints)
            for mode in modes:
                files = {"rgb": ("rgb.jpg", cv2.imencode(".jpg", bgr)[1].tobytes())}
                if "depth" in mode.split("+"):
                    files["depth"] = ("depth.png", _png(depth))
                if "ir" in mode.split("+"):
                    files["ir"] = ("ir.png", _png(ir))
                r = client.post("/liveness", files=files, data={"depth_scale": "0.001"})
                if r.status_code != 200:
                    raise RuntimeError(f"{photo.name} {mode}: HTTP {r.status_code} {r.text}")
                body = r.json()
                faces = body["faces"]
                face = faces[0] if faces else None
                rows.append(
                    {
                        "photo": photo.name,
                        "mode": mode,
                        "decision": face["decision"] if face else "no_face",
                        "score": round(float(face["score"]), 4) if face else None,
                        "reasons": (face["reasons"] if face else body.get("reasons", [])),
                        "components": face.get("scores", {}) if face else {},
                        "ood_distance": face.get("ood_distance") if face else None,
                        "subset": body.get("modalities_used") or body.get("modalities"),
                    }
                )
        info = client.get("/v1/models").json()
    summary = {
        mode: dict(Counter(r["decision"] for r in rows if r["mode"] == mode)) for mode in modes
    }
    return {
        "model": info.get("name", str(model)),
        "version": info.get("version"),
        "photos": len(holdout_photos()),
        "summary": summary,
        "rows": rows,
    }


def markdown(result: dict[str, Any]) -> str:
    lines = [
        f"model {result['model']} {result['version']}, {result['photos']} real photographs "
        "of held-out people (full frames)",
        "",
        "| input | live | uncertain | spoof | no face |",
        "| --- | --- | --- | --- | --- |",
    ]
    for mode, c in result["summary"].items():
        lines.append(
            f"| {mode} | {c.get('live', 0)} | {c.get('uncertain', 0)} | {c.get('spoof', 0)} "
            f"| {c.get('no_face', 0)} |"
        )
    reasons = Counter(
        reason for r in result["rows"] if r["decision"] == "uncertain" for reason in r["reasons"]
    )
    if reasons:
        lines += ["", "uncertain because: " + ", ".join(f"{k} {v}" for k, v in reasons.items())]
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
    args = ap.parse_args()
    result = run(args.model, args.distance_mm, tuple(args.mode or MODES), not args.no_glints)
    print(markdown(result))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
