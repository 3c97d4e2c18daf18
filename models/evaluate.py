"""Evaluating an exported ONNX model on a protocol (``liveness eval``), the serving way.

Crops go through :func:`models.preprocess.preprocess_batch` and onnxruntime, exactly as
the service feeds the model, on every non-empty modality subset (the paper's four first:
rgb, rgb+depth, rgb+ir, rgb+depth+ir, then depth, ir, depth+ir). For each subset the
operating points are calibrated on the dev split and applied to the test split
(:mod:`models.metrics`). No torch here.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort

from models.datasets.crops import CropCache, restrict
from models.metrics import calibrate, pad_report
from models.preprocess import preprocess_batch
from models.spec import (
    INPUT_NAMES,
    OUTPUT_SCORE,
    SUBSET_ORDER,
    ModelSpec,
    parse_subset,
    subset_name,
)

log = logging.getLogger(__name__)

#: The paper's four sub-protocols: RGB alone and with each extra modality.
PAPER_SUBSETS: tuple[str, ...] = ("rgb", "rgb+depth", "rgb+ir", "rgb+depth+ir")


def session(model: str | Path | bytes, threads: int = 2) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    src = model if isinstance(model, bytes) else str(model)
    return ort.InferenceSession(src, opts, providers=["CPUExecutionProvider"])


def read_spec(model: str | Path | bytes) -> ModelSpec:
    m = onnx.load_from_string(model) if isinstance(model, bytes) else onnx.load(str(model))
    return ModelSpec.from_metadata({p.key: p.value for p in m.metadata_props})


def score_crops(
    sess: ort.InferenceSession,
    spec: ModelSpec,
    crops: CropCache,
    subset: Iterable[str],
    batch_size: int = 64,
) -> np.ndarray:
    """Bona fide scores of every sample with only ``subset`` present."""
    keep = tuple(subset)
    out = []
    for i in range(0, len(crops), batch_size):
        batch = [restrict(crops[j], keep) for j in range(i, min(i + batch_size, len(crops)))]
        feed = preprocess_batch(batch, spec)
        out.append(sess.run([OUTPUT_SCORE], {k: feed[k] for k in INPUT_NAMES})[0])
    return np.concatenate(out).astype(np.float64)


def evaluate_subsets(
    sess: ort.InferenceSession,
    spec: ModelSpec,
    dev: CropCache,
    test: CropCache | None,
    subsets: Iterable[tuple[str, ...]] = SUBSET_ORDER,
    fixed_thresholds: dict[str, float] | None = None,
) -> dict[str, dict[str, Any]]:
    """Per subset: dev-calibrated operating points and, when ``test`` is given, the test
    report (:func:`models.metrics.pad_report`). ``fixed_thresholds`` skips calibration."""
    results: dict[str, dict[str, Any]] = {}
    for subset in subsets:
        name = subset_name(subset)
        if fixed_thresholds is None:
            dev_scores = score_crops(sess, spec, dev, subset)
            ops = calibrate(dev_scores, dev.labels, dev.species)
        else:
            ops = dict(fixed_thresholds)
        entry: dict[str, Any] = {"operating_points": ops}
        if test is not None:
            test_scores = score_crops(sess, spec, test, subset)
            entry["test"] = pad_report(test_scores, test.labels, test.species, ops)
        results[name] = entry
        if test is not None:
            log.info("%-14s ACER %.4f  EER %.4f", name, entry["test"]["acer"], entry["test"]["eer"])
    return results


def summarise(results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Compact per-subset summary for the model metadata and the model card."""
    out: dict[str, Any] = {}
    for name, r in results.items():
        s: dict[str, Any] = {
            "thresholds": {k: round(v, 6) for k, v in r["operating_points"].items()}
        }
        t = r.get("test")
        if t:
            ab = t.get("apcer_at_bpcer1", {})
            s.update(
                {
                    k: round(float(t[k]), 5)
                    for k in ("acer", "apcer", "bpcer", "eer", "auc", "bpcer20", "bpcer100")
                    if k in t
                }
            )
            s["apcer_species"] = t["apcer_species"]
            s["apcer_per_species"] = {
                sp: round(v["value"], 5)
                for sp, v in t["operating_points"]["eer"]["apcer_per_species"].items()
            }
            if ab:
                s["apcer_at_bpcer1"] = round(ab["value"], 5)
                s["apcer_at_bpcer1_ci95"] = [round(x, 5) for x in ab["ci95"]]
            s["n_bona_fide"], s["n_attack"] = t["n_bona_fide"], t["n_attack"]
        out[name] = s
    return out


def format_table(results: dict[str, dict[str, Any]]) -> str:
    """Plain-text tables: one row per subset, then APCER per species per subset."""
    head = (
        f"{'subset':<14} {'ACER':>7} {'APCER':>7} {'(worst)':<16} {'BPCER':>7} {'EER':>7} "
        f"{'AUC':>7} {'BPCER20':>8} {'APCER@BPCER1 [95% CI]':>28}"
    )
    lines = [head, "-" * len(head)]
    species: set[str] = set()
    for name, r in results.items():
        t = r.get("test")
        if not t:
            continue
        ab = t["apcer_at_bpcer1"]
        lines.append(
            f"{name:<14} {t['acer']:7.2%} {t['apcer']:7.2%} {t['apcer_species']:<16} "
            f"{t['bpcer']:7.2%} {t['eer']:7.2%} {t['auc']:7.4f} {t['bpcer20']:8.2%} "
            f"{ab['value']:9.2%} [{ab['ci95'][0]:6.2%}, {ab['ci95'][1]:6.2%}]"
        )
        species |= set(t["operating_points"]["eer"]["apcer_per_species"])
    if species:
        names = sorted(species)
        lines += ["", "APCER per attack species at the dev-EER threshold:"]
        lines.append(f"{'subset':<14} " + " ".join(f"{s[:14]:>14}" for s in names))
        for name, r in results.items():
            t = r.get("test")
            if not t:
                continue
            per = t["operating_points"]["eer"]["apcer_per_species"]
            cells = [f"{per[s]['value']:14.2%}" if s in per else f"{'-':>14}" for s in names]
            lines.append(f"{name:<14} " + " ".join(cells))
    return "\n".join(lines)


def evaluate(
    model: str | Path,
    data: str | Path,
    protocol: str = "intra",
    split: str = "test",
    subsets: Iterable[str] | None = None,
    thresholds: str = "dev",
    depth_encoding: str = "mm16",
    threads: int = 2,
) -> dict[str, Any]:
    """Evaluate ``model`` on ``split`` of ``protocol``; thresholds from dev (or the model)."""
    spec = read_spec(model)
    sess = session(model, threads)
    kw = {"depth_encoding": depth_encoding, "depth_range_mm": spec.depth_range_mm}
    test = CropCache.from_protocol(data, protocol, split, **kw)
    chosen = [parse_subset(s) for s in subsets] if subsets else list(SUBSET_ORDER)
    if thresholds == "dev":
        dev = CropCache.from_protocol(data, protocol, "dev", **kw)
        results = evaluate_subsets(sess, spec, dev, test, chosen)
    elif thresholds == "model":
        results = evaluate_subsets(sess, spec, test, test, chosen, spec.operating_points)
    else:
        raise ValueError(f"thresholds must be 'dev' or 'model', got {thresholds!r}")
    return {
        "model": str(model),
        "model_name": spec.name,
        "model_version": spec.version,
        "data": str(data),
        "protocol": protocol,
        "split": split,
        "thresholds": thresholds,
        "subsets": results,
    }
