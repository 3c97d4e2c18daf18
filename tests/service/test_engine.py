"""The inference engine: contract checks on load, batching, one bad face fails alone."""

from __future__ import annotations

import hashlib
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from models import DEFAULT_MODEL_PATH
from models.preprocess import FaceCrops
from models.spec import META_PREFIX, parse_subset
from service.engine import EngineClosedError, InferenceEngine, ModelLoadError

S = 64


def crops(value: int = 180, size: int = S, subset: str = "rgb+depth+ir") -> FaceCrops:
    rng = np.random.default_rng(value)
    mods = parse_subset(subset)
    return FaceCrops(
        rgb=np.clip(rng.normal(value, 10, (size, size, 3)), 0, 255).astype(np.uint8)
        if "rgb" in mods
        else None,
        depth=rng.integers(480, 540, (size, size), dtype=np.uint16) if "depth" in mods else None,
        ir=rng.integers(30, 200, (size, size), dtype=np.uint8) if "ir" in mods else None,
    )


@pytest.fixture(scope="module")
def engine(test_model_path: Path) -> InferenceEngine:
    eng = InferenceEngine.load(test_model_path, providers="cpu", intra_op_threads=1, max_batch=4)
    eng.warmup(runs=1)
    return eng


def test_load_reads_spec_identity_and_becomes_ready(
    engine: InferenceEngine, test_model_path: Path
) -> None:
    assert engine.ready
    assert engine.spec.name == "flexlive-test" and engine.spec.input_size == S
    assert engine.info.sha256 == hashlib.sha256(test_model_path.read_bytes()).hexdigest()
    assert engine.info.providers == ("CPUExecutionProvider",)


def test_scores_are_probabilities_and_follow_the_input(engine: InferenceEngine) -> None:
    bright, dark = engine.predict([crops(200), crops(50)])
    assert isinstance(bright, float) and isinstance(dark, float)
    assert 0.0 <= dark < 0.5 < bright <= 1.0


def test_every_subset_is_servable(engine: InferenceEngine) -> None:
    for subset in engine.spec.supported_subsets:
        (score,) = engine.predict([crops(subset=subset)])
        assert isinstance(score, float) and 0.0 <= score <= 1.0, subset


def test_one_bad_face_fails_alone(engine: InferenceEngine) -> None:
    faces = [crops(200), crops(200, size=S // 2), crops(50), FaceCrops()]
    out = engine.predict(faces)
    assert isinstance(out[1], ValueError) and "model expects 64×64" in str(out[1])
    assert isinstance(out[3], ValueError) and "at least one modality" in str(out[3])
    alone = engine.predict([faces[0], faces[2]])
    assert out[0] == pytest.approx(alone[0]) and out[2] == pytest.approx(alone[1])


def test_batches_larger_than_max_batch_match_batch_one(engine: InferenceEngine) -> None:
    faces = [crops(40 + 20 * i) for i in range(9)]  # max_batch=4 → three ONNX calls
    batched = engine.predict(faces)
    single = [engine.predict([f])[0] for f in faces]
    assert batched == pytest.approx(single, abs=1e-6)


def test_concurrent_predictions_are_consistent(engine: InferenceEngine) -> None:
    faces = [crops(40 + 20 * i) for i in range(6)]
    expected = engine.predict(faces)
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: engine.predict(faces), range(16)))
    for r in results:
        assert r == pytest.approx(expected, abs=1e-6)


def test_closed_engine_refuses(test_model_path: Path) -> None:
    eng = InferenceEngine.load(test_model_path, providers="cpu", intra_op_threads=1)
    eng.close()
    assert not eng.ready
    with pytest.raises(EngineClosedError):
        eng.predict([crops()])


def _meta(drop: str | None = None, **raw: str) -> Any:
    """Metadata of the valid test spec with one key dropped or replaced by raw text."""

    def make(spec_meta: dict[str, str]) -> dict[str, str]:
        meta = {k: v for k, v in spec_meta.items() if k != f"{META_PREFIX}{drop}"}
        meta.update({META_PREFIX + k: v for k, v in raw.items()})
        return meta

    return make


@pytest.mark.parametrize(
    ("variant", "message"),
    [
        ({"metadata": lambda m: {"producer": "x"}}, "no FlexLive metadata"),
        ({"metadata": _meta(drop="operating_points")}, "missing flexlive.operating_points"),
        ({"metadata": _meta(operating_points=json.dumps({"eer": 1.5}))}, "outside [0, 1]"),
        ({"metadata": _meta(input_size="sixty-four")}, "not valid JSON"),
        ({"input_names": ("image", "depth", "ir", "present")}, "missing input(s) ['rgb']"),
        ({"batch": 1}, "must be dynamic"),
        ({"graph_input_size": 32}, "input_size 64"),
    ],
    ids=[
        "no-metadata",
        "missing-key",
        "bad-threshold",
        "bad-json",
        "input-names",
        "fixed-batch",
        "input-size",
    ],
)
def test_bad_models_are_refused_with_the_reason(
    tmp_path: Path, build_model: Any, make_spec: Any, variant: dict[str, Any], message: str
) -> None:
    kwargs = dict(variant)
    if "metadata" in kwargs:
        kwargs["metadata"] = kwargs["metadata"](make_spec().to_metadata())
    path = build_model(tmp_path / "bad.onnx", **kwargs)
    with pytest.raises(ModelLoadError) as info:
        InferenceEngine.load(path, providers="cpu", intra_op_threads=1)
    assert message in str(info.value)
    assert str(path) in str(info.value)


def test_missing_and_non_onnx_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="does not exist"):
        InferenceEngine.load(tmp_path / "nope.onnx")
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"this is not a protobuf")
    with pytest.raises(ModelLoadError, match="not a loadable ONNX model"):
        InferenceEngine.load(junk, providers="cpu")


def test_cuda_request_without_cuda_is_refused(test_model_path: Path) -> None:
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("CUDA is available here")
    with pytest.raises(ModelLoadError, match="CUDAExecutionProvider"):
        InferenceEngine.load(test_model_path, providers="cuda")


def test_bundled_model_loads_and_scores_every_subset() -> None:
    eng = InferenceEngine.load(DEFAULT_MODEL_PATH, providers="cpu", intra_op_threads=2)
    eng.warmup(runs=1)
    size = eng.spec.input_size
    out = eng.predict([crops(subset=s, size=size) for s in eng.spec.supported_subsets])
    assert all(isinstance(x, float) and 0.0 <= x <= 1.0 for x in out), out
