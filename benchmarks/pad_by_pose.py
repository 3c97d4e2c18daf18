"""Where does head pose start to cost accuracy, and what do the service's pose limits mean?

Two measurements behind the face stage's ``pose_too_large`` limits (docs/face-stage.md):

1. **Errors by true pose.** The model's BPCER and APCER on a benchmark's test split at its
   own operating point per modality subset (the thresholds the service uses), binned by
   the head's true yaw and pitch from ``samples.jsonl`` (the generator's ground truth).
2. **What the landmark proxies measure** (``--scenes N``): N bona fide training-split
   scenes of the generator (both sensor profiles) go through the service's MTCNN; the
   5-landmark proxies of ``service.face.quality.pose`` are fitted against the true angles
   (slope per degree), with their spread and the share beyond the default limits.

    python benchmarks/pad_by_pose.py --model models/default/flexlive-lite.onnx \\
        --data data/synth/standard --protocol combined [--scenes 400] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.datasets.crops import CropCache  # noqa: E402
from models.evaluate import read_spec, score_crops, session  # noqa: E402
from models.metrics import Rate, bpcer  # noqa: E402
from models.spec import parse_subset  # noqa: E402

#: (name, lower, upper) bins of the true angles, degrees (pitch > 0: head down).
PITCH_BINS = (
    ("< -8°", -90.0, -8.0),
    ("-8…8°", -8.0, 8.0),
    ("8…12°", 8.0, 12.0),
    ("≥ 12°", 12.0, 90.0),
)
YAW_BINS = (("< 15°", 0.0, 15.0), ("15…20°", 15.0, 20.0), ("≥ 20°", 20.0, 90.0))


def errors_by_pose(
    model: Path, data: Path, protocol: str, subsets: list[str], threads: int
) -> dict[str, Any]:
    spec = read_spec(model)
    sess = session(model, threads)
    test = CropCache.from_protocol(data, protocol, "test", depth_range_mm=spec.depth_range_mm)
    meta = {}
    for line in (data / "samples.jsonl").read_text().splitlines():
        r = json.loads(line)
        meta[r["id"]] = r
    ids = [Path(e.rgb).stem for e in test.entries]
    yaw = np.abs([float(meta[i]["yaw"]) for i in ids])
    pitch = np.array([float(meta[i]["pitch"]) for i in ids])
    bona = test.labels == 1
    out: dict[str, Any] = {}
    for name in subsets:
        subset = parse_subset(name)
        scores = score_crops(sess, spec, test, subset)
        t = spec.threshold(None, subset)
        rows = []
        for axis, values, bins in (("pitch", pitch, PITCH_BINS), ("yaw ±", yaw, YAW_BINS)):
            for label, lo, hi in bins:
                m = (values >= lo) & (values < hi)
                missed = bpcer(scores[m], test.labels[m], t)
                attacks = scores[m & ~bona]
                passed = Rate(int((attacks >= t).sum()), int(attacks.size))
                rows.append(
                    {
                        "axis": axis,
                        "bin": label,
                        "bona_fide": missed.total,
                        "bpcer": missed.value if missed.total else None,
                        "bpcer_ci95": list(missed.interval),
                        "attacks": passed.total,
                        "apcer": passed.value if passed.total else None,
                        "apcer_ci95": list(passed.interval),
                    }
                )
        out[name] = {"threshold": t, "bins": rows}
    return out


def proxies(n: int) -> dict[str, Any]:
    from service.face.config import FaceStageConfig
    from service.face.detectors import create_detector
    from service.face.quality import pose
    from synth.profiles import PROFILES
    from synth.scene import render_scene

    cfg = FaceStageConfig()
    det = create_detector("mtcnn", cfg)
    deg, prox, mouth = [], [], []
    for i in range(n):
        scene = render_scene("bona_fide", PROFILES[i % len(PROFILES)], 10_000 + i, split="train")
        found = det.detect(scene.rgb)
        if not found:
            continue
        lm = np.asarray(max(found, key=lambda d: d.confidence).landmarks, dtype=np.float64)
        p = pose(lm)
        deg.append((float(scene.info["yaw"]), float(scene.info["pitch"])))
        prox.append((p["yaw"], p["pitch"]))
        # mouth width over eye distance: a smile widens the mouth and lifts its corners
        mouth.append(np.linalg.norm(lm[4] - lm[3]) / np.linalg.norm(lm[1] - lm[0]))
    d, p, mw = np.array(deg), np.array(prox), np.array(mouth)
    lo, hi = cfg.quality_pitch_range
    yaw_fit, pitch_fit = np.polyfit(d[:, 0], p[:, 0], 1), np.polyfit(d[:, 1], p[:, 1], 1)
    near = np.abs(d[:, 0]) < 15  # how well the proxy predicts the true pitch, in degrees

    def residual_deg(*features: np.ndarray) -> float:
        x = np.column_stack([np.ones(near.sum()), *(f[near] for f in features)])
        coef, *_ = np.linalg.lstsq(x, d[near, 1], rcond=None)
        return float(np.std(d[near, 1] - x @ coef))

    return {
        "scenes": n,
        "found": len(d),
        "yaw_per_degree": float(yaw_fit[0]),
        "pitch_per_degree": float(pitch_fit[0]),
        "pitch_at_0": float(pitch_fit[1]),
        "pitch_limit_degrees": [float((x - pitch_fit[1]) / pitch_fit[0]) for x in (lo, hi)],
        "yaw_limit_degrees": float(cfg.quality_max_yaw / abs(yaw_fit[0])),
        "pitch_percentiles": {q: float(np.percentile(p[:, 1], q)) for q in (1, 5, 50, 95, 99)},
        "abs_yaw_percentiles": {q: float(np.percentile(np.abs(p[:, 0]), q)) for q in (50, 95, 99)},
        "pitch_error_degrees": residual_deg(p[:, 1]),
        "pitch_error_degrees_with_mouth_width": residual_deg(p[:, 1], mw),
        "beyond_limits": float(
            np.mean((np.abs(p[:, 0]) > cfg.quality_max_yaw) | (p[:, 1] < lo) | (p[:, 1] > hi))
        ),
    }


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f} %"


def _ci(interval: list[float]) -> str:
    return f"[{100 * interval[0]:.1f}, {100 * interval[1]:.1f}]"


def report(errors: dict[str, Any], prox: dict[str, Any] | None) -> str:
    lines = []
    for name, e in errors.items():
        lines += [
            f"**{name}** (threshold {e['threshold']:.3f})",
            "",
            "| true pose | bona fide | BPCER [95 % CI] | attacks | APCER [95 % CI] |",
            "| --- | --- | --- | --- | --- |",
        ]
        for r in e["bins"]:
            lines.append(
                f"| {r['axis']} {r['bin']} | {r['bona_fide']} | {_pct(r['bpcer'])} "
                f"{_ci(r['bpcer_ci95'])} | {r['attacks']} | {_pct(r['apcer'])} "
                f"{_ci(r['apcer_ci95'])} |"
            )
        lines.append("")
    if prox is not None:
        lo, hi = prox["pitch_limit_degrees"]
        lines += [
            f"Landmark proxies on {prox['found']} of {prox['scenes']} rendered bona fide scenes: "
            f"yaw {prox['yaw_per_degree']:.4f} per degree "
            f"(limit ≈ {prox['yaw_limit_degrees']:.0f}°), "
            f"pitch {prox['pitch_at_0']:.3f} + {prox['pitch_per_degree']:.4f} per degree "
            f"(limits ≈ {lo:.0f}° … {hi:.0f}°); pitch percentiles "
            + ", ".join(f"{q}: {v:.2f}" for q, v in prox["pitch_percentiles"].items())
            + f"; beyond the default limits: {_pct(prox['beyond_limits'])}. "
            f"True pitch from the proxy (|yaw| < 15°): ± {prox['pitch_error_degrees']:.1f}° "
            f"(1 s.d.), with the mouth's width as well ± "
            f"{prox['pitch_error_degrees_with_mouth_width']:.1f}°.",
        ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", type=Path, default=Path("models/default/flexlive-lite.onnx"))
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--protocol", default="combined")
    ap.add_argument("--subset", action="append", help="default: rgb and rgb+depth+ir")
    ap.add_argument("--scenes", type=int, default=0, help="render this many scenes for proxies")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", type=Path)
    a = ap.parse_args(argv)
    if not (a.data / "samples.jsonl").is_file():
        ap.error(f"{a.data}: no samples.jsonl (a liveness synth benchmark folder is needed)")
    errors = errors_by_pose(
        a.model, a.data, a.protocol, a.subset or ["rgb", "rgb+depth+ir"], a.threads
    )
    prox = proxies(a.scenes) if a.scenes > 0 else None
    print(report(errors, prox))
    if a.json:
        a.json.write_text(json.dumps({"errors": errors, "proxies": prox}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
