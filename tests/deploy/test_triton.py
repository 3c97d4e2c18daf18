"""``liveness export --triton DIR``: the repository's config.pbtxt matches the model that
ONNX Runtime loads from it (names, data types, dims without the batch)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

onnx = pytest.importorskip("onnx", reason="onnx (the train extra) not installed")
ort = pytest.importorskip("onnxruntime")

from conftest import build_test_model  # noqa: E402

from models.triton import write_repository  # noqa: E402
from service.settings import DEFAULT_MODEL_PATH  # noqa: E402

#: ONNX Runtime's type strings → Triton's (independent of models.triton's table).
ORT_TO_TRITON = {"tensor(float)": "TYPE_FP32", "tensor(int64)": "TYPE_INT64"}


def _field(pattern: str, text: str) -> str:
    match = re.search(pattern, text, re.M | re.S)
    assert match, f"{pattern!r} not in config.pbtxt"
    return match.group(1)


def _ints(text: str) -> list[int]:
    return [int(d) for d in text.replace(",", " ").split()]


def parse_pbtxt(text: str) -> dict[str, Any]:
    """The fields of a Triton config.pbtxt this project writes (protobuf text format)."""
    out: dict[str, Any] = {
        "name": _field(r'^name: "([^"]+)"', text),
        "backend": _field(r'^backend: "([^"]+)"', text),
        "max_batch_size": int(_field(r"^max_batch_size: (\d+)", text)),
        "kinds": re.findall(r"kind: (KIND_\w+)", text),
        "dynamic_batching": "dynamic_batching {" in text,
    }
    for kind in ("input", "output"):
        block = _field(rf"^{kind} \[\n(.*?)^\]", text)
        tensors = []
        for entry in re.findall(r"\{\n(.*?)\n  \}", block, re.S):
            reshape = re.search(r"reshape: \{ shape: \[([^\]]*)\] \}", entry)
            # The shape the model sees: the reshape when there is one, else the dims.
            dims = (
                _ints(reshape.group(1)) if reshape else _ints(_field(r"dims: \[([^\]]*)\]", entry))
            )
            name = _field(r'name: "([^"]+)"', entry)
            tensors.append(
                {"name": name, "data_type": _field(r"data_type: (\w+)", entry), "dims": dims}
            )
        out[kind] = tensors
    return out


def expected(args: list[Any], batched: bool) -> list[dict[str, Any]]:
    """What Triton should see for ORT's inputs or outputs."""
    rows = []
    for a in args:
        shape = a.shape[1:] if batched else a.shape
        dims = [d if isinstance(d, int) else -1 for d in shape]
        rows.append({"name": a.name, "data_type": ORT_TO_TRITON[a.type], "dims": dims})
    return rows


def check_repository(model_dir: Path, name: str, batched: bool) -> dict[str, Any]:
    config = parse_pbtxt((model_dir / "config.pbtxt").read_text())
    session = ort.InferenceSession(
        str(model_dir / "1" / "model.onnx"), providers=["CPUExecutionProvider"]
    )
    assert config["name"] == name == model_dir.name
    assert config["backend"] == "onnxruntime"
    assert config["input"] == expected(session.get_inputs(), batched)
    assert config["output"] == expected(session.get_outputs(), batched)
    return config


def test_bundled_model_repository_matches_the_model(tmp_path: Path) -> None:
    model_dir = write_repository(DEFAULT_MODEL_PATH, tmp_path, "flexlive-lite", max_batch_size=16)
    config = check_repository(model_dir, "flexlive-lite", batched=True)
    assert config["max_batch_size"] == 16
    assert config["dynamic_batching"]
    assert config["kinds"] == ["KIND_GPU", "KIND_CPU"]
    assert (model_dir / "1/model.onnx").read_bytes() == DEFAULT_MODEL_PATH.read_bytes()
    # The contract's inputs, in the model's order.
    assert [t["name"] for t in config["input"]] == ["rgb", "depth", "ir", "present"]
    assert {"score"} <= {t["name"] for t in config["output"]}


def test_fixed_batch_model_is_not_batched_by_triton(tmp_path: Path) -> None:
    model = build_test_model(tmp_path / "fixed.onnx", batch=1)
    model_dir = write_repository(model, tmp_path / "repo", gpus=0)
    config = check_repository(model_dir, "fixed", batched=False)
    assert config["max_batch_size"] == 0
    assert not config["dynamic_batching"]
    assert config["kinds"] == ["KIND_CPU"]


def test_cli_writes_the_repository(tmp_path: Path, test_model_path: Path) -> None:
    from service.cli import main

    result = CliRunner().invoke(
        main,
        [
            "export",
            "--triton",
            str(tmp_path),
            "--model",
            str(test_model_path),
            "--name",
            "fixture",
            "--triton-max-batch",
            "8",
        ],
    )
    assert result.exit_code == 0, result.output
    config = check_repository(tmp_path / "fixture", "fixture", batched=True)
    assert config["max_batch_size"] == 8


def test_cli_export_without_triton_still_needs_a_checkpoint(tmp_path: Path) -> None:
    from service.cli import main

    result = CliRunner().invoke(main, ["export", "--out", str(tmp_path / "m.onnx")])
    assert result.exit_code == 2
    assert "--checkpoint" in result.output
