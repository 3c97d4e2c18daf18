"""Occlusion sensitivity of an ONNX model: does its evidence lie on the face?

On ``--n`` test crops (spread evenly over species) a ``--patch``×``--patch`` square slides
with ``--stride`` over the preprocessed input, at the same place in every present modality,
filled with 0 — the normalised mid-grey, which is also what an absent modality looks like.
Each pixel's sensitivity is the mean |Δlogit| (or |Δscore|) over the patch positions that
cover it. Per species and overall, the mean map is split into the face region of the crop
convention and the outer ring (``--ring`` px at 112 px, as in ``pad_baselines.py --region
border``) and the share of the total sensitivity in each is reported, beside the ring's share
of the area (what a model that looks everywhere alike would get). Preprocessing comes from the
model's metadata, the way ``liveness eval`` runs a model (``models.evaluate``); no torch.

    python benchmarks/pad_occlusion.py --model models/default/flexlive-lite.onnx \
        --data data/synth/standard --protocol combined --n 100 --png occlusion.png \
        [--subset rgb+depth+ir] [--measure logit|score] [--json out.json]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _audit import (  # noqa: E402
    RING_PX,
    border_mask,
    data_info,
    md_table,
    pct,
    ring_width,
    select_balanced,
    species_order,
    write_json,
)

from models.datasets.crops import CropCache, restrict  # noqa: E402
from models.evaluate import read_spec, session  # noqa: E402
from models.preprocess import preprocess_batch  # noqa: E402
from models.spec import (  # noqa: E402
    INPUT_NAMES,
    INPUT_PRESENT,
    MODALITIES,
    OUTPUT_SCORE,
    parse_subset,
    subset_name,
)

DEFAULT_MODEL = "models/default/flexlive-lite.onnx"
MEASURES = ("logit", "score")
_EPS = 1e-6


def positions(size: int, patch: int, stride: int) -> list[int]:
    """Patch origins along one axis: every ``stride``, and flush with the far edge."""
    if not 0 < patch <= size or stride <= 0:
        raise ValueError(f"need 0 < patch <= {size} and stride > 0, got {patch}, {stride}")
    p = list(range(0, size - patch + 1, stride))
    if p[-1] != size - patch:
        p.append(size - patch)
    return p


Predictor = Callable[[dict[str, np.ndarray]], np.ndarray]


def predictor(model: str | Path, measure: str = "logit", threads: int = 2) -> Predictor:
    """``feed → measure`` per sample. For ``logit``, when ``score`` is a Sigmoid's output
    (every FlexLive export), the Sigmoid's input is added as a graph output and read
    directly, so saturated scores (1.0 in float32 beyond logit ≈ 17) keep their logit;
    otherwise the logit of the clipped score."""
    if measure not in MEASURES:
        raise ValueError(f"measure must be one of {MEASURES}, got {measure!r}")
    name = OUTPUT_SCORE
    src: str | Path | bytes = model
    if measure == "logit":
        m = onnx.load(str(model))
        node = next((n for n in m.graph.node if OUTPUT_SCORE in n.output), None)
        if node is not None and node.op_type == "Sigmoid":
            name = node.input[0]
            if name not in {o.name for o in m.graph.output}:
                m.graph.output.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, None))
            src = m.SerializeToString()
    sess = session(src, threads)

    def run(feed: dict[str, np.ndarray]) -> np.ndarray:
        out = np.asarray(sess.run([name], {k: feed[k] for k in INPUT_NAMES})[0], np.float64)
        out = out.reshape(len(feed[INPUT_PRESENT]))
        if measure == "logit" and name == OUTPUT_SCORE:
            s = np.clip(out, _EPS, 1.0 - _EPS)
            return np.log(s) - np.log1p(-s)
        return out

    return run


def occlusion_maps(
    predict: Predictor,
    feed: dict[str, np.ndarray],
    patch: int = 16,
    stride: int = 8,
    batch_size: int = 64,
) -> tuple[np.ndarray, np.ndarray]:
    """Sensitivity maps ``N×S×S`` and the unoccluded output (N) of a preprocessed feed.

    The patch (value 0) covers the same pixels of every modality flagged present."""
    S = feed[MODALITIES[0]].shape[-1]
    origins = [(y, x) for y in positions(S, patch, stride) for x in positions(S, patch, stride)]
    cover = np.zeros((S, S))
    for y, x in origins:
        cover[y : y + patch, x : x + patch] += 1
    n = feed[INPUT_PRESENT].shape[0]
    base = predict(feed)
    maps = np.zeros((n, S, S))
    for i in range(n):
        present = [m for j, m in enumerate(MODALITIES) if feed[INPUT_PRESENT][i, j] > 0]
        deltas: list[np.ndarray] = []
        for c in range(0, len(origins), batch_size):
            chunk = origins[c : c + batch_size]
            b = {k: np.repeat(feed[k][i : i + 1], len(chunk), axis=0) for k in INPUT_NAMES}
            for j, (y, x) in enumerate(chunk):
                for m in present:
                    b[m][j, :, y : y + patch, x : x + patch] = 0.0
            out = predict(b)
            deltas.append(np.abs(out - base[i]))
        d = np.concatenate(deltas)
        for (y, x), v in zip(origins, d, strict=True):
            maps[i, y : y + patch, x : x + patch] += v
    return maps / cover, base


def region_share(m: np.ndarray, ring: int) -> float:
    """Share of the map's total in the face region (1 − the ring's share); NaN if all 0."""
    total = float(m.sum())
    if total <= 0:
        return float("nan")
    return 1.0 - float(m[border_mask(m.shape[-1], ring)].sum()) / total


def run(
    model: str | Path,
    data: str | Path,
    protocol: str = "combined",
    split: str = "test",
    n: int = 100,
    subset: str = "rgb+depth+ir",
    patch: int = 16,
    stride: int = 8,
    measure: str = "logit",
    ring: int = RING_PX,
    seed: int = 0,
    threads: int = 2,
) -> dict[str, Any]:
    """Mean sensitivity maps per species and overall, and their face / ring shares."""
    spec = read_spec(model)
    predict = predictor(model, measure, threads)
    keep = parse_subset(subset)
    cache = CropCache.from_protocol(
        data, protocol, split, depth_range_mm=spec.depth_range_mm, cache=False
    )
    idx = select_balanced(cache.species, n, seed)
    species = [cache.species[i] for i in idx]
    crops = [cache[i] for i in idx]
    feed = preprocess_batch([restrict(c, keep) for c in crops], spec)
    maps, base = occlusion_maps(predict, feed, patch, stride)
    S = spec.input_size
    ring_area = float(border_mask(S, ring).mean())
    groups = {"all": list(range(len(idx)))}
    for sp in species_order(species):
        groups[sp] = [i for i, s in enumerate(species) if s == sp]
    rows: dict[str, dict[str, Any]] = {}
    mean_maps: dict[str, np.ndarray] = {}
    for g, members in groups.items():
        mm = maps[members].mean(0)
        mean_maps[g] = mm
        per = [region_share(maps[i], ring) for i in members]
        face = region_share(mm, ring)
        rows[g] = {
            "n": len(members),
            "mean_score": float(np.mean(to_score(base[members], measure))),
            "mean_sensitivity": float(mm.mean()),
            "face_share": face,
            "border_share": 1.0 - face,
            "face_share_median_sample": _nanmedian(per),
        }
    return {
        "model": str(model),
        "model_name": spec.name,
        "model_version": spec.version,
        "training_data": spec.training_data,
        "data": str(data),
        **data_info(data),
        "protocol": protocol,
        "split": split,
        "subset": subset_name(keep),
        "patch": patch,
        "stride": stride,
        "measure": measure,
        "ring": ring,
        "ring_px": ring_width(S, ring),
        "input_size": S,
        "ring_area_share": ring_area,
        "groups": rows,
        "_maps": mean_maps,
        "_rgb": {g: _mean_image(crops, members) for g, members in groups.items()},
    }


def to_score(v: np.ndarray, measure: str) -> np.ndarray:
    return v if measure == "score" else 1.0 / (1.0 + np.exp(-v))


def _nanmedian(v: list[float]) -> float:
    x = np.asarray(v, dtype=np.float64)
    x = x[np.isfinite(x)]
    return float(np.median(x)) if x.size else float("nan")


def _mean_image(crops: list[Any], members: list[int]) -> np.ndarray:
    """Mean RGB crop of a group (IR as grey when there is no RGB), uint8 H×W×3 RGB."""
    imgs = []
    for i in members:
        c = crops[i]
        if c.rgb is not None:
            imgs.append(c.rgb.astype(np.float64))
        elif c.ir is not None:
            imgs.append(np.repeat(c.ir.astype(np.float64)[..., None], 3, axis=2))
    if not imgs:
        return np.zeros((1, 1, 3), np.uint8)
    return np.clip(np.mean(imgs, axis=0), 0, 255).astype(np.uint8)


def markdown(res: dict[str, Any]) -> str:
    unit = "|Δlogit|" if res["measure"] == "logit" else "|Δscore|"
    head = ["species", "n", "mean score", f"mean {unit}", "face share", "ring share"]
    rows = [
        [
            g if g == "all" else f"`{g}`",
            r["n"],
            f"{r['mean_score']:.3f}",
            f"{r['mean_sensitivity']:.3f}",
            pct(r["face_share"]),
            pct(r["border_share"]),
        ]
        for g, r in res["groups"].items()
    ]
    S, rp = res["input_size"], res["ring_px"]
    return "\n".join(
        [
            f"Occlusion sensitivity of {res['model_name']} {res['model_version']} on "
            f"`{res['protocol']}` {res['split']} ({res['subset']}; {res['patch']}×"
            f"{res['patch']} patch, stride {res['stride']}, {unit}). Face region = central "
            f"{S - 2 * rp}×{S - 2 * rp} of {S}×{S}; the {rp}-px ring is "
            f"{pct(res['ring_area_share'])} of the area:",
            "",
            md_table(head, rows),
        ]
    )


def write_png(res: dict[str, Any], path: str | Path, scale: int = 2) -> Path:
    """One row per group (all, then species): mean RGB crop | sensitivity | overlay, the
    face region outlined; each row's heat map scaled to its own maximum."""
    import cv2

    S, rp = res["input_size"], res["ring_px"]
    side = S * scale
    rows = []
    for g, mm in res["_maps"].items():
        rgb = cv2.resize(res["_rgb"][g], (S, S), interpolation=cv2.INTER_AREA)
        bgr = cv2.resize(rgb[..., ::-1], (side, side), interpolation=cv2.INTER_NEAREST)
        top = mm.max()
        heat = np.zeros((S, S), np.uint8) if top <= 0 else (255 * mm / top).astype(np.uint8)
        heat = cv2.applyColorMap(
            cv2.resize(heat, (side, side), interpolation=cv2.INTER_NEAREST), cv2.COLORMAP_INFERNO
        )
        over = cv2.addWeighted(bgr, 0.45, heat, 0.55, 0.0)
        cells = [bgr.copy(), heat, over]
        for c in cells:
            cv2.rectangle(c, (rp * scale, rp * scale), ((S - rp) * scale - 1,) * 2, (0, 255, 0), 1)
        label = np.full((side, 150, 3), 255, np.uint8)
        r = res["groups"][g]
        for k, text in enumerate((g, f"n={r['n']}", f"face {pct(r['face_share'])}")):
            cv2.putText(label, text, (4, 20 + 20 * k), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (0, 0, 0), 1)
        rows.append(np.hstack([label, *cells]))
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(out), np.vstack(rows)):
        raise OSError(f"cannot write {out}")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--data", required=True)
    ap.add_argument("--protocol", default="combined")
    ap.add_argument("--split", default="test")
    ap.add_argument("--n", type=int, default=100, help="crops, spread evenly over species")
    ap.add_argument("--subset", default="rgb+depth+ir")
    ap.add_argument("--patch", type=int, default=16)
    ap.add_argument("--stride", type=int, default=8)
    ap.add_argument("--measure", choices=MEASURES, default="logit")
    ap.add_argument(
        "--ring", type=int, default=RING_PX, help="border ring width, px of a 112-px crop"
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--png", default=None)
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    t0 = time.perf_counter()
    res = run(
        a.model,
        a.data,
        a.protocol,
        a.split,
        a.n,
        a.subset,
        a.patch,
        a.stride,
        a.measure,
        a.ring,
        a.seed,
        a.threads,
    )
    res["seconds"] = round(time.perf_counter() - t0, 1)
    print(markdown(res))
    if a.png:
        print(f"\nmean maps: {write_png(res, a.png)}")
    write_json(a.json, {k: v for k, v in res.items() if not k.startswith("_")})


if __name__ == "__main__":
    main()
