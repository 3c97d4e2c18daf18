"""INT8 quantisation of an exported FlexLive model for the CPU (``liveness quantize``).

ONNX Runtime's static quantisation of the convolutions (QDQ format, per-channel int8
weights, uint8 activations; the head stays float) calibrated on preprocessed crops of a
protocol's *train* split — every modality subset, as the service feeds them — writes a
model with the same inputs, outputs and FlexLive metadata (the operating points are
recalibrated on the dev split, because int8 scores are not the float model's). Whether it
is worth it is measured, not assumed: ``liveness eval`` on both files gives the accuracy
change, ``benchmarks/pad_latency.py`` the speed change.
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from models.datasets.crops import CropCache, restrict
from models.evaluate import read_spec, session
from models.preprocess import preprocess_batch
from models.spec import INPUT_NAMES, OUTPUT_OOD, SUBSET_ORDER, ModelSpec

log = logging.getLogger(__name__)

#: Only the convolutions (the backbones' compute) are quantised. The fusion, the classifier
#: head, the OOD distance and the score stay float: quantising them with a small
#: calibration set collapsed the fine-tuned models' scores (large logits: 2.6.0's int8
#: test-split scores spread over 0.05, 2.7.0's over 0.004, against 0.99 in float).
QUANTIZED_OPS = ["Conv"]


def calibration_feeds(
    spec: ModelSpec, crops: CropCache, samples: int, batch: int = 16, seed: int = 0
) -> Iterator[dict[str, np.ndarray]]:
    """Batches of preprocessed inputs: ``samples`` train crops, each subset in turn."""
    rng = np.random.default_rng(seed)
    idx = rng.permutation(len(crops))[:samples]
    for start in range(0, len(idx), batch):
        subset = SUBSET_ORDER[(start // batch) % len(SUBSET_ORDER)]
        items = [restrict(crops[int(i)], subset) for i in idx[start : start + batch]]
        feed = preprocess_batch(items, spec)
        yield {k: feed[k] for k in INPUT_NAMES}


#: Metadata key of the RGB expert's fusion (models.fusion).
FUSION_KEY = "flexlive.rgb_expert"


def ood_thresholds(
    sess: Any, spec: ModelSpec, dev: CropCache, percentile: float, batch: int = 64
) -> dict[str, float]:
    """Per subset, the dev split's ``percentile`` of the model's own OOD distances."""
    out: dict[str, float] = {}
    for subset in SUBSET_ORDER:
        dists = []
        for start in range(0, len(dev), batch):
            items = [restrict(dev[i], subset) for i in range(start, min(start + batch, len(dev)))]
            feed = preprocess_batch(items, spec)
            dists.append(sess.run([OUTPUT_OOD], {k: feed[k] for k in INPUT_NAMES})[0])
        name = "+".join(subset)
        out[name] = round(float(np.percentile(np.concatenate(dists), percentile)), 4)
    return out


def quantize(
    model: Path,
    out: Path,
    data: str | Path,
    protocol: str,
    samples: int = 256,
) -> dict[str, Any]:
    """Write the INT8 model to ``out``; returns what was done (for the CLI to print)."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    spec = read_spec(model)
    train = CropCache.from_protocol(data, protocol, "train")
    feeds = calibration_feeds(spec, train, samples)

    class Reader(CalibrationDataReader):  # type: ignore[misc]
        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(feeds, None)

    source = onnx.load(str(model))
    metadata = {p.key: p.value for p in source.metadata_props}
    with tempfile.TemporaryDirectory() as tmp:
        pre = Path(tmp) / "pre.onnx"
        quant_pre_process(str(model), str(pre))
        quantize_static(
            str(pre),
            str(out),
            Reader(),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            op_types_to_quantize=QUANTIZED_OPS,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
        )
    # The int8 scores are not the float model's: recalibrate the operating points on dev
    # (as the export did for the float model) and keep every other piece of metadata.
    from models.evaluate import evaluate_subsets, summarise

    q = onnx.load(str(out))
    sess = session(q.SerializeToString())
    dev = CropCache.from_protocol(data, protocol, "dev")
    results = evaluate_subsets(sess, spec, dev, None, SUBSET_ORDER)
    summary = summarise(results)
    meta = ModelSpec.from_metadata(metadata)
    meta.subset_operating_points = {
        name: dict(r["operating_points"]) for name, r in results.items()
    }
    full = "+".join(spec.modalities)
    if full in results:
        meta.operating_points = dict(results[full]["operating_points"])
    if meta.ood_thresholds and meta.ood_percentile is not None:
        meta.ood_thresholds = ood_thresholds(sess, spec, dev, meta.ood_percentile)
    meta.version = f"{meta.version}-int8"
    meta.evaluation = {**meta.evaluation, "int8_dev": summary}
    new = {**metadata, **meta.to_metadata()}
    # The RGB expert's fusion was fitted on the float model's scores: not carried over
    # (refit it with `liveness expert calibrate --model OUT`).
    new.pop(FUSION_KEY, None)
    del q.metadata_props[:]
    for k, v in new.items():
        q.metadata_props.add(key=k, value=v)
    onnx.save(q, str(out))
    info = {
        "model": str(model),
        "out": str(out),
        "calibration": f"{samples} crops of {protocol}/train, every modality subset",
        "bytes": {"float": model.stat().st_size, "int8": out.stat().st_size},
    }
    log.info("quantised %s → %s", model, json.dumps(info))
    return info
