"""Training checkpoints rebuilt from an exported model: fine-tune a network you only have as ONNX.

``liveness export`` folds every batch normalisation into the convolution before it (the
ONNX file holds ``conv.weight`` already scaled and a ``conv.weight_bias``), so the file
has every learnt number but not the running statistics a network trains with. This
module rebuilds each network of the file (each member of an ensemble) with those folded
weights: the convolution keeps the folded kernel and the batch norm after it becomes
the identity with the folded shift as its bias (running mean 0, running variance
1 − eps, scale 1). A batch norm that follows no convolution (the cross-attention
fusion's) stays an operator in the file, and its statistics are copied as they are. In
eval mode that is exactly the exported function — checked here against ONNX Runtime on
every modality subset before anything is written. Networks whose batch norms follow
their convolution under another name (the paper-scale ones) are refused.

A network rebuilt this way must be fine-tuned with its batch norms in eval mode
(``liveness train --freeze-batchnorm``): batch statistics of the folded activations
would replace the identity and change the function on the first step. Their scale and
shift still learn; only the running statistics stay fixed — the usual way to fine-tune
a detector or classifier from few samples anyway.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from models.nets.registry import create_model
from models.spec import CHANNELS, INPUT_PRESENT, MODALITIES, OUTPUT_SCORE

#: Checkpoint key telling ``liveness train --init`` that the batch norms are folded.
FOLDED_KEY = "batchnorm_folded"
#: Largest score difference between the rebuilt network and ONNX Runtime accepted.
PARITY_TOLERANCE = 1e-4
_PREFIX = "net."


class RecoveryError(ValueError):
    """The ONNX file is not one ``liveness export`` wrote, or its weights do not fit."""


def _metadata(model: Any) -> dict[str, Any]:
    meta = {p.key: p.value for p in model.metadata_props}
    if "flexlive.evaluation" not in meta:
        raise RecoveryError(
            "no 'flexlive.evaluation' metadata: not a model written by 'liveness export'"
        )
    evaluation = json.loads(meta["flexlive.evaluation"])
    if "model" not in evaluation:
        raise RecoveryError("the model's metadata does not name the network it holds")
    return {
        "network": evaluation["model"],
        "depth_range_mm": float(json.loads(meta.get("flexlive.depth_range_mm", "120"))),
        "version": json.loads(meta["flexlive.version"]) if "flexlive.version" in meta else "",
        "name": json.loads(meta["flexlive.name"]) if "flexlive.name" in meta else "",
    }


def _unfold(
    net: nn.Module, weights: dict[str, np.ndarray], kept: dict[str, list[str]]
) -> tuple[dict[str, torch.Tensor], int]:
    """``net``'s state dict filled from the ONNX initialisers (``net.`` + key) and how many
    batch norms were folded. A folded batch norm becomes the identity plus the shift of the
    convolution before it; one the exporter kept as an operator (``kept``: its scale
    initialiser → the node's scale, shift, mean and variance inputs) is copied as it is."""
    state = net.state_dict()
    out: dict[str, torch.Tensor] = {}
    folded = 0
    modules = dict(net.named_modules())
    for name, module in modules.items():
        if not isinstance(module, nn.modules.batchnorm._BatchNorm):
            continue
        n = module.num_features
        node = kept.get(f"{_PREFIX}{name}.weight")
        if node is not None and all(i in weights for i in node):
            for key, source in zip(
                ("weight", "bias", "running_mean", "running_var"), node, strict=True
            ):
                out[f"{name}.{key}"] = torch.from_numpy(weights[source].astype(np.float32).copy())
            out[f"{name}.num_batches_tracked"] = torch.zeros((), dtype=torch.long)
            continue
        parent, _, index = name.rpartition(".")
        conv = f"{parent}.{int(index) - 1}" if index.isdigit() else ""
        shift = weights.get(f"{_PREFIX}{conv}.weight_bias")
        if not isinstance(modules.get(conv), nn.Conv2d) or shift is None:
            raise RecoveryError(
                f"batch norm '{name}' is neither kept in the file nor folded into a convolution "
                "just before it in the same Sequential (the flexlive_lite layout); this "
                "network cannot be rebuilt from its ONNX file"
            )
        folded += 1
        out[f"{name}.weight"] = torch.ones(n)
        out[f"{name}.bias"] = torch.from_numpy(shift.astype(np.float32).copy())
        out[f"{name}.running_mean"] = torch.zeros(n)
        out[f"{name}.running_var"] = torch.full((n,), 1.0 - module.eps)
        out[f"{name}.num_batches_tracked"] = torch.zeros((), dtype=torch.long)
    missing = []
    for key, value in state.items():
        if key in out:
            continue
        array = weights.get(_PREFIX + key)
        if array is None:
            missing.append(key)
            continue
        if tuple(array.shape) != tuple(value.shape):
            raise RecoveryError(
                f"'{key}': shape {array.shape} in the file, {tuple(value.shape)} here"
            )
        out[key] = torch.from_numpy(array.astype(np.float32).copy())
    if missing:
        raise RecoveryError(f"weights missing from the file: {', '.join(missing[:8])}")
    return out, folded


def _parity(net: nn.Module, model_bytes: bytes, size: int) -> float:
    """Largest |score difference| between ``net`` (eval) and ONNX Runtime over every
    non-empty modality subset on random inputs."""
    import onnxruntime as ort

    session = ort.InferenceSession(model_bytes, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    feeds = {
        m: rng.normal(0, 1, (4, CHANNELS[m], size, size)).astype(np.float32) for m in MODALITIES
    }
    worst = 0.0
    for mask in itertools.product((0.0, 1.0), repeat=len(MODALITIES)):
        if not any(mask):
            continue
        present = np.tile(np.array(mask, np.float32), (4, 1))
        inputs = {m: feeds[m] * present[:, i, None, None, None] for i, m in enumerate(MODALITIES)}
        ref = session.run([OUTPUT_SCORE], {**inputs, INPUT_PRESENT: present})[0].reshape(-1)
        with torch.no_grad():
            got = net(*(torch.from_numpy(inputs[m]) for m in MODALITIES), torch.from_numpy(present))
        worst = max(worst, float(np.abs(got["score"].numpy().reshape(-1) - ref).max()))
    return worst


def checkpoints_from_onnx(model: str | Path, out: str | Path) -> list[Path]:
    """Write one training checkpoint per network of ``model`` (``out/member-K/checkpoint.pt``
    for an ensemble, ``out/checkpoint.pt`` otherwise) after checking that the rebuilt
    networks reproduce the file's scores; returns their paths."""
    import onnx
    from onnx import numpy_helper

    path = Path(model)
    try:
        proto = onnx.load(str(path))
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the same user error
        raise RecoveryError(f"{path}: not a readable ONNX file ({exc})") from None
    meta = _metadata(proto)
    weights = {i.name: numpy_helper.to_array(i) for i in proto.graph.initializer}
    kept = {
        node.input[1]: list(node.input[1:5])
        for node in proto.graph.node
        if node.op_type == "BatchNormalization"
    }
    spec = meta["network"]
    try:
        net = create_model(spec["name"], **spec.get("overrides", {}))
    except (KeyError, TypeError, ValueError) as exc:
        raise RecoveryError(
            f"the metadata names a network this version cannot build: {exc}"
        ) from None
    state, folded = _unfold(net, weights, kept)
    net.load_state_dict(state)
    net.eval()
    worst = _parity(net, proto.SerializeToString(), int(net.input_size))
    if worst > PARITY_TOLERANCE:
        raise RecoveryError(
            f"the rebuilt network differs from the file by {worst:.2e} in score "
            f"(more than {PARITY_TOLERANCE:g}); not written"
        )
    members = list(getattr(net, "members", [net]))
    dest = Path(out)
    paths = []
    for k, member in enumerate(members):
        folder = dest / f"member-{k}" if len(members) > 1 else dest
        folder.mkdir(parents=True, exist_ok=True)
        ckpt = {
            # The exported input contract: depth in millimetres (the file does not say how
            # its training crops were stored; a fine-tuning run sets its own encoding).
            "config": {"depth_encoding": "mm16", "depth_range_mm": meta["depth_range_mm"]},
            "model": member.config(),
            "state_dict": {key: v.detach().clone() for key, v in member.state_dict().items()},
            "depth_range_mm": meta["depth_range_mm"],
            FOLDED_KEY: folded > 0,
            "source": {
                "onnx": str(path),
                "name": meta["name"],
                "version": meta["version"],
                "member": k,
                "parity_max_abs": worst,
            },
            "history": [],
            "torch_version": torch.__version__,
        }
        target = folder / "checkpoint.pt"
        torch.save(ckpt, target)
        paths.append(target)
    return paths


def freeze_batchnorm(net: nn.Module) -> int:
    """Put every batch norm of ``net`` in eval mode (running statistics fixed, scale and
    shift still trained); returns how many there are. Call after ``net.train()``."""
    count = 0
    for module in net.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.eval()
            count += 1
    return count
