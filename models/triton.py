"""An NVIDIA Triton Inference Server model repository for an exported FlexLive model.

Triton's ``onnxruntime`` backend serves ``<repo>/<name>/<version>/model.onnx`` described by
``<repo>/<name>/config.pbtxt``. The config is read from the ONNX graph itself (names, element
types, shapes), so it cannot drift from the model: a leading symbolic dimension shared by
every input and output is the batch, which Triton owns (``max_batch_size`` and dims without
it). Only onnx is needed here, not torch, so a runtime image can write a repository.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import onnx

#: ONNX element type → Triton data type (the ones an ONNX model can carry at its boundary).
TRITON_DTYPES: dict[int, str] = {
    onnx.TensorProto.FLOAT: "TYPE_FP32",
    onnx.TensorProto.FLOAT16: "TYPE_FP16",
    onnx.TensorProto.BFLOAT16: "TYPE_BF16",
    onnx.TensorProto.DOUBLE: "TYPE_FP64",
    onnx.TensorProto.INT8: "TYPE_INT8",
    onnx.TensorProto.INT16: "TYPE_INT16",
    onnx.TensorProto.INT32: "TYPE_INT32",
    onnx.TensorProto.INT64: "TYPE_INT64",
    onnx.TensorProto.UINT8: "TYPE_UINT8",
    onnx.TensorProto.UINT16: "TYPE_UINT16",
    onnx.TensorProto.UINT32: "TYPE_UINT32",
    onnx.TensorProto.UINT64: "TYPE_UINT64",
    onnx.TensorProto.BOOL: "TYPE_BOOL",
    onnx.TensorProto.STRING: "TYPE_STRING",
}


@dataclass(frozen=True)
class TensorIO:
    """One input or output as Triton sees it: dims exclude the batch when batching."""

    name: str
    data_type: str
    dims: tuple[int, ...]


def _shape(value: onnx.ValueInfoProto) -> list[int | str]:
    dims: list[int | str] = []
    for d in value.type.tensor_type.shape.dim:
        if d.HasField("dim_value"):
            dims.append(int(d.dim_value))
        else:
            dims.append(d.dim_param or "?")
    return dims


def _graph_inputs(graph: onnx.GraphProto) -> list[onnx.ValueInfoProto]:
    # Initialisers may be listed as inputs in older exports; they are weights, not inputs.
    weights = {t.name for t in graph.initializer}
    return [v for v in graph.input if v.name not in weights]


def describe(model: onnx.ModelProto) -> tuple[bool, list[TensorIO], list[TensorIO]]:
    """(batched, inputs, outputs) of ``model`` in Triton's terms; ValueError if unsupported."""
    inputs = _graph_inputs(model.graph)
    outputs = list(model.graph.output)
    shapes = {v.name: _shape(v) for v in [*inputs, *outputs]}
    leading = [s[0] if s else None for s in shapes.values()]
    batched = bool(leading) and all(isinstance(d, str) for d in leading)

    def io(v: onnx.ValueInfoProto) -> TensorIO:
        elem = v.type.tensor_type.elem_type
        if elem not in TRITON_DTYPES:
            raise ValueError(f"{v.name}: ONNX element type {elem} has no Triton data type")
        dims = shapes[v.name][1:] if batched else shapes[v.name]
        # Any other symbolic dimension is variable-sized for Triton (-1).
        return TensorIO(
            v.name, TRITON_DTYPES[elem], tuple(d if isinstance(d, int) else -1 for d in dims)
        )

    return batched, [io(v) for v in inputs], [io(v) for v in outputs]


def _tensor_block(kind: str, tensors: list[TensorIO]) -> list[str]:
    lines = [f"{kind} ["]
    for i, t in enumerate(tensors):
        lines += ["  {", f'    name: "{t.name}"', f"    data_type: {t.data_type}"]
        if t.dims:
            lines.append(f"    dims: [ {', '.join(str(d) for d in t.dims)} ]")
        else:
            # A per-sample scalar (shape [batch]): Triton needs non-empty dims, so it is
            # declared [1] and reshaped to the model's true shape.
            lines += ["    dims: [ 1 ]", "    reshape: { shape: [ ] }"]
        lines.append("  }" + ("," if i < len(tensors) - 1 else ""))
    lines.append("]")
    return lines


def config_pbtxt(
    model: onnx.ModelProto,
    name: str,
    max_batch_size: int = 32,
    queue_delay_us: int = 2000,
    gpus: int = 1,
    cpu_instances: int = 1,
) -> str:
    """The ``config.pbtxt`` text (protobuf text format) for ``model`` served as ``name``.

    Two instance groups: ``KIND_GPU`` on the first ``gpus`` devices and ``KIND_CPU``, so the
    GPU instances take the batches while the CPU instance adds throughput. A Triton without
    GPUs refuses to load a KIND_GPU group: ``gpus=0`` writes the CPU group alone.
    """
    batched, inputs, outputs = describe(model)
    lines = [f'name: "{name}"', 'backend: "onnxruntime"']
    lines.append(f"max_batch_size: {max_batch_size if batched else 0}")
    lines += _tensor_block("input", inputs)
    lines += _tensor_block("output", outputs)
    if batched:
        lines += [
            "dynamic_batching {",
            f"  max_queue_delay_microseconds: {queue_delay_us}",
            "}",
        ]
    groups = []
    if gpus > 0:
        devices = ", ".join(str(g) for g in range(gpus))
        groups.append(f"  {{\n    count: 1\n    kind: KIND_GPU\n    gpus: [ {devices} ]\n  }}")
    groups.append(f"  {{\n    count: {cpu_instances}\n    kind: KIND_CPU\n  }}")
    lines.append("instance_group [\n" + ",\n".join(groups) + "\n]")
    return "\n".join(lines) + "\n"


def write_repository(
    model_path: str | Path,
    repo: str | Path,
    name: str | None = None,
    version: int = 1,
    max_batch_size: int = 32,
    gpus: int = 1,
) -> Path:
    """Write ``repo/<name>/<version>/model.onnx`` and ``repo/<name>/config.pbtxt``.

    ``name`` defaults to the model's file stem. Returns the model's directory.
    """
    model_path = Path(model_path)
    model = onnx.load(str(model_path), load_external_data=False)
    name = name or model_path.stem
    if not name or "/" in name:
        raise ValueError(f"not a Triton model name: {name!r}")
    text = config_pbtxt(model, name, max_batch_size=max_batch_size, gpus=gpus)
    model_dir = Path(repo) / name
    (model_dir / str(version)).mkdir(parents=True, exist_ok=True)
    shutil.copyfile(model_path, model_dir / str(version) / "model.onnx")
    (model_dir / "config.pbtxt").write_text(text)
    return model_dir
