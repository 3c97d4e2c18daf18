"""Exporting a trained checkpoint to a self-describing ONNX model (``liveness export``).

1. torch → ONNX (inputs ``rgb``/``depth``/``ir``/``present``, outputs ``score`` and
   ``pixel_map``, dynamic batch);
2. operating points calibrated on the dev split through onnxruntime and the serving
   preprocessing (``eer``, ``apcer5``, ``apcer1``, ``bpcer1``; on rgb+depth+ir, the
   per-subset thresholds go into the evaluation summary);
3. the held-out test split evaluated on every modality subset (the summary is stored);
4. the full :class:`~models.spec.ModelSpec` written into ``metadata_props``;
5. parity: torch and onnxruntime must agree on real dev crops on every subset.

Several checkpoints (the same recipe from different seeds) export as one ensemble graph
that averages their logits (:class:`~models.nets.ensemble.FlexModalEnsemble`).
"""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch

from models.datasets.crops import CropCache, restrict
from models.evaluate import SUBSET_ORDER, evaluate_subsets, session, summarise
from models.nets.base import FlexModalNet, OnnxWrapper
from models.nets.ensemble import FlexModalEnsemble
from models.ood import OodHead, distances, fit_gaussians
from models.preprocess import preprocess_batch
from models.spec import (
    INPUT_NAMES,
    MODALITIES,
    OUTPUT_OOD,
    OUTPUT_PIXEL_MAP,
    OUTPUT_SCORE,
    ModelSpec,
    default_normalisation,
    subset_name,
)
from models.train import base_spec, load_checkpoint

log = logging.getLogger(__name__)

OPSET = 18
PARITY_ATOL = 1e-4
#: The OOD distance whitens the embedding, which magnifies float rounding: compare it
#: relatively (a 0.5 % difference moves no decision that matters).
OOD_PARITY_RTOL = 5e-3

#: What export turns into ONNX: one network, or an ensemble of several.
Exportable = FlexModalNet | FlexModalEnsemble


class ParityError(RuntimeError):
    """The exported ONNX model does not reproduce the torch model."""


def to_onnx_bytes(
    net: Exportable, opset: int = OPSET, dynamo: bool = True, ood: OodHead | None = None
) -> bytes:
    """Export the network (and its OOD head, when given) to ONNX bytes with a dynamic batch
    dimension.

    Uses torch's ``torch.export``-based exporter; falls back to the TorchScript exporter
    (deprecated upstream) only if that fails, so older torch builds still export.
    """
    wrapper = OnnxWrapper(net, ood).eval()
    S = net.input_size
    dummy = (
        torch.zeros(2, 3, S, S),
        torch.zeros(2, 1, S, S),
        torch.zeros(2, 1, S, S),
        torch.ones(2, len(MODALITIES)),
    )
    outputs = [OUTPUT_SCORE, OUTPUT_PIXEL_MAP] + ([OUTPUT_OOD] if ood is not None else [])
    if dynamo:
        # the exporter's optimiser logs every pass at INFO
        logging.getLogger("onnx_ir").setLevel(logging.WARNING)
        try:
            batch = torch.export.Dim("batch")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                program = torch.onnx.export(
                    wrapper,
                    dummy,
                    input_names=list(INPUT_NAMES),
                    output_names=outputs,
                    dynamic_shapes=tuple({0: batch} for _ in INPUT_NAMES),
                    opset_version=max(opset, 18),
                    dynamo=True,
                    verbose=False,
                )
            assert program is not None
            return program.model_proto.SerializeToString()
        except Exception as exc:  # noqa: BLE001 - any exporter failure → legacy path
            log.warning("torch.export-based ONNX export failed (%s); using the legacy one", exc)
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            wrapper,
            dummy,
            buf,
            input_names=list(INPUT_NAMES),
            output_names=outputs,
            dynamic_axes={n: {0: "batch"} for n in (*INPUT_NAMES, *outputs)},
            opset_version=opset,
            dynamo=False,
        )
    return buf.getvalue()


def with_metadata(onnx_bytes: bytes, spec: ModelSpec) -> onnx.ModelProto:
    model = onnx.load_from_string(onnx_bytes)
    del model.metadata_props[:]
    for k, v in spec.to_metadata().items():
        model.metadata_props.add(key=k, value=v)
    model.producer_name = "flexlive"
    model.doc_string = f"{spec.name} {spec.version}: FlexLive flexible-modal face PAD model"
    onnx.checker.check_model(model)
    return model


def check_parity(
    net: Exportable,
    onnx_bytes: bytes,
    feeds: list[dict[str, np.ndarray]],
    atol: float = PARITY_ATOL,
    ood: OodHead | None = None,
) -> float:
    """Max |torch − ORT| over ``feeds`` (score and pixel map); raise above ``atol``, or
    when the OOD distance differs by more than :data:`OOD_PARITY_RTOL` relatively."""
    sess = session(onnx_bytes)
    wrapper = OnnxWrapper(net, ood).eval()
    names = [OUTPUT_SCORE, OUTPUT_PIXEL_MAP] + ([OUTPUT_OOD] if ood is not None else [])
    worst = worst_ood = 0.0
    with torch.no_grad():
        for feed in feeds:
            t = [x.numpy() for x in wrapper(*(torch.from_numpy(feed[k]) for k in INPUT_NAMES))]
            o = sess.run(names, feed)
            worst = max(
                worst, *(float(np.abs(a - b).max()) for a, b in zip(o[:2], t[:2], strict=True))
            )
            if ood is not None:
                rel = np.abs(o[2] - t[2]) / np.maximum(np.abs(t[2]), 1.0)
                worst_ood = max(worst_ood, float(rel.max()))
    if worst > atol:
        raise ParityError(f"ONNX differs from torch by {worst:.2e} (> {atol:.0e})")
    if worst_ood > OOD_PARITY_RTOL:
        raise ParityError(
            f"ONNX OOD distance differs from torch by {worst_ood:.2%} (> {OOD_PARITY_RTOL:.1%})"
        )
    return worst


def describe_data(data: str | Path, protocol: str, train_samples: int) -> str:
    """A one-paragraph training data description (+ the benchmark's own manifest if any)."""
    text = f"protocol '{protocol}' of {Path(data).name} ({train_samples} training samples)"
    for name in ("benchmark.json", "manifest.json", "meta.json", "README.md"):
        p = Path(data) / name
        if p.is_file() and p.suffix == ".json":
            try:
                meta = json.loads(p.read_text())
            except json.JSONDecodeError:
                continue
            keep = {
                k: meta[k]
                for k in ("name", "version", "generator_version", "scale", "seed", "profiles")
                if k in meta
            }
            if keep:
                text += f"; benchmark {json.dumps(keep, sort_keys=True)}"
            break
    return text


def load_members(
    checkpoints: Sequence[str | Path],
) -> tuple[Exportable, dict[str, Any], list[dict[str, Any]]]:
    """The network to export (an ensemble when several checkpoints are given), the first
    checkpoint (its preprocessing settings apply to all) and every checkpoint dict."""
    if not checkpoints:
        raise ValueError("at least one checkpoint is required")
    loaded = [load_checkpoint(p) for p in checkpoints]

    def preprocessing(ck: dict[str, Any]) -> dict[str, Any]:
        return {
            "depth_range_mm": ck.get("depth_range_mm", 120.0),
            "depth_encoding": ck["config"].get("depth_encoding", "mm16"),
        }

    first = loaded[0][1]
    want = preprocessing(first)
    for path, (_, ck) in zip(checkpoints[1:], loaded[1:], strict=True):
        for key, value in preprocessing(ck).items():
            if value != want[key]:
                raise ValueError(
                    f"{path}: {key} is {value!r} but {checkpoints[0]} has {want[key]!r}; "
                    "ensemble members must share the preprocessing"
                )
    if len(loaded) == 1:
        return loaded[0][0], first, [first]
    return FlexModalEnsemble([n for n, _ in loaded]), first, [ck for _, ck in loaded]


def embeddings(
    net: Exportable, spec: ModelSpec, crops: CropCache, subset: tuple[str, ...], batch: int = 128
) -> np.ndarray:
    """The network's penultimate embedding (N, D) of every crop with only ``subset``."""
    out = []
    with torch.no_grad():
        for start in range(0, len(crops), batch):
            items = [
                restrict(crops[i], subset) for i in range(start, min(len(crops), start + batch))
            ]
            feed = preprocess_batch(items, spec)
            res = net(*(torch.from_numpy(feed[k]) for k in INPUT_NAMES))
            out.append(res["embedding"].numpy())
    return np.concatenate(out).astype(np.float64)


def calibrate_ood(
    net: Exportable,
    spec: ModelSpec,
    train: CropCache,
    dev: CropCache,
    subsets: Sequence[tuple[str, ...]],
    percentile: float,
) -> tuple[OodHead, dict[str, float]]:
    """Fit the OOD model on the train split, thresholds at ``percentile`` of dev distances."""
    train_emb = {subset_name(s): embeddings(net, spec, train, s) for s in subsets}
    means, whiten = fit_gaussians(train_emb, np.asarray(train.labels))
    thresholds = {}
    for s in subsets:
        d = distances(embeddings(net, spec, dev, s), s, means, whiten)
        thresholds[subset_name(s)] = round(float(np.percentile(d, percentile)), 4)
    log.info("OOD thresholds (dev p%.1f): %s", percentile, thresholds)
    return OodHead(means, whiten).eval(), thresholds


def export(
    checkpoint: str | Path | Sequence[str | Path],
    out: str | Path,
    data: str | Path,
    protocol: str = "intra",
    name: str = "flexlive-lite",
    version: str = "0.1.0",
    training_data: str | None = None,
    evaluate_test: bool = True,
    default_operating_point: str = "eer",
    uncertain_margin: float = 0.05,
    ood_percentile: float | None = 99.5,
) -> ModelSpec:
    """Export ``checkpoint`` (or several, as an ensemble) to ``out`` with calibrated
    metadata; returns the written spec."""
    torch.set_num_threads(1)  # tracing and parity checks are light
    paths = [checkpoint] if isinstance(checkpoint, str | Path) else list(checkpoint)
    net, ckpt, members = load_members(paths)
    cfg = ckpt["config"]
    prep = base_spec(net, ckpt.get("depth_range_mm", 120.0))
    kw = {
        "depth_encoding": cfg.get("depth_encoding", "mm16"),
        "depth_range_mm": prep.depth_range_mm,
    }
    dev = CropCache.from_protocol(data, protocol, "dev", **kw)
    test = CropCache.from_protocol(data, protocol, "test", **kw) if evaluate_test else None

    subsets = [tuple(MODALITIES), *[s for s in SUBSET_ORDER if s != tuple(MODALITIES)]]
    ood: OodHead | None = None
    ood_thresholds: dict[str, float] = {}
    if ood_percentile is not None:
        train = CropCache.from_protocol(data, protocol, "train", **kw)
        ood, ood_thresholds = calibrate_ood(net, prep, train, dev, subsets, ood_percentile)
    raw = to_onnx_bytes(net, ood=ood)
    sess = session(raw)
    results = evaluate_subsets(sess, prep, dev, test, subsets)
    full = subset_name(MODALITIES)
    operating_points = {k: float(v) for k, v in results[full]["operating_points"].items()}

    ordered = {subset_name(s): results[subset_name(s)] for s in SUBSET_ORDER}
    evaluation: dict[str, Any] = {
        "protocol": protocol,
        "thresholds": "per subset, calibrated on the dev split; test metrics at dev thresholds",
        "split": "test" if test is not None else "none",
        "subsets": summarise(ordered),
        "train_seconds": round(sum(float(c.get("train_seconds", 0.0)) for c in members), 1),
        "model": ckpt["model"] if len(members) == 1 else net.config(),
        "train_config": {
            k: cfg[k]
            for k in (
                "epochs",
                "batch_size",
                "lr",
                "seed",
                "p_drop_rgb",
                "p_drop_depth",
                "p_drop_ir",
                "pixel_weight",
                "weight_decay",
            )
            if k in cfg
        },
    }
    if len(members) > 1:
        evaluation["train_config"]["seed"] = [c["config"].get("seed") for c in members]
        evaluation["ensemble"] = len(members)
    spec = ModelSpec(
        name=name,
        version=version,
        input_size=net.input_size,
        normalisation=default_normalisation(),
        depth_range_mm=prep.depth_range_mm,
        operating_points=operating_points,
        subset_operating_points={
            name: {k: float(v) for k, v in r["operating_points"].items()}
            for name, r in ordered.items()
        },
        default_operating_point=default_operating_point,
        uncertain_margin=uncertain_margin,
        backbone=net.model_name,
        fusion=net.fusion_name,
        training_data=training_data
        or describe_data(data, protocol, int(ckpt.get("train_samples", 0))),
        evaluation=evaluation,
        created=dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat(),
        has_pixel_map=True,
        ood_thresholds=ood_thresholds,
        ood_percentile=ood_percentile if ood is not None else None,
    )
    model = with_metadata(raw, spec)

    # parity on real dev crops, every subset
    n = min(len(dev), 16)
    feeds = []
    for subset in SUBSET_ORDER:
        feeds.append(preprocess_batch([restrict(dev[i], subset) for i in range(n)], spec))
    diff = check_parity(net, model.SerializeToString(), feeds, ood=ood)
    log.info("parity torch vs onnxruntime: max |diff| %.2e over %d subsets", diff, len(feeds))

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(out))
    ModelSpec.from_metadata({p.key: p.value for p in onnx.load(str(out)).metadata_props})
    log.info("wrote %s (%d bytes)", out, out.stat().st_size)
    return spec
