"""`liveness quantize`: an INT8 copy of the bundled model that the service loads, with its
operating points recalibrated on dev and scores that follow the float model's."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from click.testing import CliRunner

from models import DEFAULT_MODEL_PATH
from models.datasets.crops import CropCache
from models.evaluate import read_spec, score_crops, session
from models.quantize import FUSION_KEY


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from synth import generate_benchmark

    out = tmp_path_factory.mktemp("tiny")
    generate_benchmark(out, scale="tiny", progress=False, workers=1)
    return out


def test_int8_model_is_served_and_follows_the_float_model(tiny: Path, tmp_path: Path) -> None:
    from service.cli import main
    from service.engine import InferenceEngine

    out = tmp_path / "int8.onnx"
    args = ["quantize", "--model", str(DEFAULT_MODEL_PATH), "--data", str(tiny),
            "--protocol", "intra", "--samples", "32", "--out", str(out)]  # fmt: skip
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
    graph = onnx.load(str(out)).graph
    assert any(n.op_type == "QuantizeLinear" for n in graph.node)
    assert out.stat().st_size < DEFAULT_MODEL_PATH.stat().st_size
    # the service loads it (the model contract holds) under its own version
    engine = InferenceEngine.load(out, providers="cpu", intra_op_threads=1)
    float_spec, int8_spec = read_spec(DEFAULT_MODEL_PATH), engine.spec
    engine.close()
    assert int8_spec.version == float_spec.version + "-int8"
    assert set(int8_spec.subset_operating_points) == set(float_spec.subset_operating_points)
    assert set(int8_spec.ood_thresholds) == set(float_spec.ood_thresholds)
    meta = {p.key for p in onnx.load(str(out)).metadata_props}
    assert FUSION_KEY not in meta  # fitted on float scores: not carried over
    # scores on held-out crops follow the float model's
    test = CropCache.from_protocol(tiny, "intra", "test")
    subset = ("rgb", "depth", "ir")
    a = score_crops(session(DEFAULT_MODEL_PATH), float_spec, test, subset)
    b = score_crops(session(out), int8_spec, test, subset)
    # The int8 model has its own (recalibrated) thresholds, so what must follow is the
    # ordering: it separates bona fide from attack as well as the float model does.
    # (Pearson on the raw scores was fragile: a 32-crop calibration compresses the int8
    # scores of a model whose logits are large.)
    labels = np.asarray(test.labels)
    assert set(labels.tolist()) == {0, 1}

    def auc(s: np.ndarray) -> float:
        pos, neg = s[labels == 1][:, None], s[labels == 0][None, :]
        return float(np.mean(pos > neg) + 0.5 * np.mean(pos == neg))

    assert np.ptp(b) > 0.01, b  # not a constant
    assert auc(b) >= auc(a) - 0.05, (a, b)
    res = CliRunner().invoke(main, [*args[:-1], str(DEFAULT_MODEL_PATH)])
    assert res.exit_code == 2 and "next to the float one" in res.output
