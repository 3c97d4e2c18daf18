"""Export round trip: checkpoint → ONNX with metadata → engine-side spec, parity, eval."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from click.testing import CliRunner

torch = pytest.importorskip("torch")

from models.datasets.crops import CropCache, restrict  # noqa: E402
from models.datasets.toy import write_toy_dataset  # noqa: E402
from models.evaluate import SUBSET_ORDER, read_spec, session  # noqa: E402
from models.preprocess import preprocess_batch  # noqa: E402
from models.spec import INPUT_NAMES, ModelSpec, all_subsets, subset_name  # noqa: E402
from models.train import TrainConfig, load_checkpoint, train  # noqa: E402
from service.cli import main  # noqa: E402


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("exp")
    data = write_toy_dataset(root / "data", n_per_split=24)
    ckpt = train(
        TrainConfig(
            data=str(data),
            out=str(root / "run"),
            epochs=1,
            batch_size=16,
            progress=False,
            threads=1,
            warmup_steps=1,
        )
    )
    out = root / "model.onnx"
    result = CliRunner().invoke(
        main,
        [
            "export",
            "--checkpoint",
            str(ckpt),
            "--out",
            str(out),
            "--data",
            str(data),
            "--version",
            "9.9.9",
        ],
    )
    assert result.exit_code == 0, result.output
    return {"data": data, "ckpt": ckpt, "onnx": out}


def test_engine_reads_the_metadata_back(exported: dict[str, Path]) -> None:
    model = onnx.load(str(exported["onnx"]))
    spec = ModelSpec.from_metadata({p.key: p.value for p in model.metadata_props})
    assert spec.name == "flexlive-lite" and spec.version == "9.9.9"
    assert spec.backbone == "flexlive_lite" and spec.fusion == "se_concat"
    assert set(spec.operating_points) == {"eer", "apcer5", "apcer1", "bpcer1"}
    assert spec.has_pixel_map and spec.input_size == 112
    assert set(spec.supported_subsets) == {subset_name(s) for s in all_subsets()}
    subsets = spec.evaluation["subsets"]
    assert set(subsets) == {subset_name(s) for s in SUBSET_ORDER}  # JSON sorts keys
    assert all("acer" in v and "thresholds" in v for v in subsets.values())
    # every subset carries its own dev-calibrated thresholds, served by the pipeline
    assert set(spec.subset_operating_points) == set(subsets)
    assert all(
        spec.subset_operating_points[k] == pytest.approx(v["thresholds"], abs=1e-5)
        for k, v in subsets.items()
    )
    assert spec.created and "training samples" in spec.training_data
    assert [i.name for i in model.graph.input] == list(INPUT_NAMES)
    assert [o.name for o in model.graph.output] == ["score", "pixel_map", "ood_distance"]
    assert set(spec.ood_thresholds) == set(subsets) and spec.ood_percentile == 99.5


def test_onnx_matches_torch_on_every_subset(exported: dict[str, Path]) -> None:
    net, _ = load_checkpoint(exported["ckpt"])
    spec = read_spec(exported["onnx"])
    sess = session(exported["onnx"])
    dev = CropCache.from_protocol(exported["data"], "intra", "dev")
    for subset in all_subsets():
        feed = preprocess_batch([restrict(dev[i], subset) for i in range(5)], spec)
        score, pmap, _ = sess.run(None, feed)
        with torch.no_grad():
            ref = net(*(torch.from_numpy(feed[k]) for k in INPUT_NAMES))
        np.testing.assert_allclose(score, ref["score"].numpy(), atol=1e-5)
        np.testing.assert_allclose(pmap, ref["pixel_map"].numpy(), atol=1e-5)


def test_eval_command_reports_every_subset(exported: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    result = CliRunner().invoke(
        main,
        [
            "eval",
            "--model",
            str(exported["onnx"]),
            "--data",
            str(exported["data"]),
            "--json",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "rgb+depth+ir" in result.output and "APCER per attack species" in result.output
    report = json.loads(out.read_text())
    assert list(report["subsets"]) == [subset_name(s) for s in SUBSET_ORDER]
    for r in report["subsets"].values():
        assert 0.0 <= r["test"]["acer"] <= 1.0
        assert set(r["test"]["operating_points"]["eer"]["apcer_per_species"]) == {"print", "replay"}


def test_bundled_default_model_is_servable(exported: dict[str, Path]) -> None:
    """The committed model: metadata valid, every subset runs, scores are probabilities."""
    from models import DEFAULT_MODEL_PATH

    spec = read_spec(DEFAULT_MODEL_PATH)
    assert spec.backbone.startswith("flexlive_lite") and spec.input_size == 112
    sess = session(DEFAULT_MODEL_PATH)
    dev = CropCache.from_protocol(exported["data"], "intra", "dev")
    for subset in all_subsets():
        feed = preprocess_batch([restrict(dev[i], subset) for i in range(3)], spec)
        score, pmap, _ = sess.run(None, feed)
        assert score.shape == (3,) and ((score >= 0) & (score <= 1)).all()
        assert pmap.shape[:2] == (3, 1)


def _toy_checkpoint(exported: dict[str, Path], out: Path, **kw: object) -> Path:
    cfg = TrainConfig(
        data=str(exported["data"]),
        out=str(out),
        epochs=1,
        batch_size=16,
        progress=False,
        threads=1,
        warmup_steps=1,
        seed=1,
    )
    for k, v in kw.items():
        setattr(cfg, k, v)
    return train(cfg)


def test_ensemble_export_averages_the_members_logits(
    exported: dict[str, Path], tmp_path: Path
) -> None:
    second = _toy_checkpoint(exported, tmp_path / "seed1")
    out = tmp_path / "ensemble.onnx"
    args = ["export", "--checkpoint", str(exported["ckpt"]), "--checkpoint", str(second)]
    result = CliRunner().invoke(main, [*args, "--out", str(out), "--data", str(exported["data"])])
    assert result.exit_code == 0, result.output
    spec = read_spec(out)
    assert spec.backbone == "flexlive_lite ensemble of 2"
    assert spec.evaluation["ensemble"] == 2
    assert spec.evaluation["train_config"]["seed"] == [0, 1]
    members = [load_checkpoint(p)[0] for p in (exported["ckpt"], second)]
    sess = session(out)
    dev = CropCache.from_protocol(exported["data"], "intra", "dev")
    for subset in (("rgb",), ("depth", "ir"), ("rgb", "depth", "ir")):
        feed = preprocess_batch([restrict(dev[i], subset) for i in range(6)], spec)
        (score,) = sess.run(["score"], feed)
        with torch.no_grad():
            logits = [
                m(*(torch.from_numpy(feed[k]) for k in INPUT_NAMES))["logit"] for m in members
            ]
        expected = torch.sigmoid((logits[0] + logits[1]) / 2).numpy()
        np.testing.assert_allclose(score, expected, atol=1e-5)
        # the ensemble is not just one of its members
        single = torch.sigmoid(logits[0]).numpy()
        assert np.abs(score - single).max() > 1e-4

    # the model card generator describes the ensemble from its metadata and eval report
    report = tmp_path / "eval.json"
    ev = CliRunner().invoke(
        main,
        ["eval", "--model", str(out), "--data", str(exported["data"]), "--json", str(report)],
    )
    assert ev.exit_code == 0, ev.output
    card = tmp_path / "CARD.md"
    script = Path(__file__).resolve().parents[2] / "benchmarks" / "pad_model_card.py"
    proc = subprocess.run(
        [
            sys.executable,
            str(script),
            "--model",
            str(out),
            "--eval",
            str(report),
            "--out",
            str(card),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    text = card.read_text()
    assert "`flexlive_lite ensemble of 2`" in text and "holds 2 such networks" in text
    assert "Seeds 0, 1" in text and "Trained on synthetic data only" in text


def test_ensemble_members_must_share_preprocessing(
    exported: dict[str, Path], tmp_path: Path
) -> None:
    other = _toy_checkpoint(exported, tmp_path / "range", depth_range_mm=200.0)
    result = CliRunner().invoke(
        main,
        [
            "export",
            "--checkpoint",
            str(exported["ckpt"]),
            "--checkpoint",
            str(other),
            "--out",
            str(tmp_path / "bad.onnx"),
            "--data",
            str(exported["data"]),
        ],
    )
    assert result.exit_code != 0
    assert "depth_range_mm" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "bad.onnx").exists()


def test_ood_distance_is_the_mahalanobis_distance_of_the_embedding(
    exported: dict[str, Path],
) -> None:
    """The in-graph distance equals the numpy reference on the torch embedding, per subset,
    and the dev split (where the thresholds were set) sits mostly under its threshold."""
    from models.ood import distances, fit_gaussians

    net, _ = load_checkpoint(exported["ckpt"])
    spec = read_spec(exported["onnx"])
    sess = session(exported["onnx"])
    train = CropCache.from_protocol(exported["data"], "intra", "train")
    dev = CropCache.from_protocol(exported["data"], "intra", "dev")
    from models.export import embeddings

    for subset in all_subsets():
        name = subset_name(subset)
        means, whiten = fit_gaussians(
            {name: embeddings(net, spec, train, subset)}, np.asarray(train.labels)
        )
        feed = preprocess_batch([restrict(dev[i], subset) for i in range(len(dev))], spec)
        (dist,) = sess.run(["ood_distance"], feed)
        ref = distances(embeddings(net, spec, dev, subset), subset, means, whiten)
        np.testing.assert_allclose(dist, ref, rtol=5e-3)
        assert np.mean(dist <= spec.ood_thresholds[name]) >= 0.9


def test_far_inputs_are_answered_out_of_distribution(exported: dict[str, Path]) -> None:
    """Inputs unlike the training crops (noise, saturation) get a distance above the
    threshold, and the pipeline answers uncertain / out_of_distribution; a dev crop does
    not get that reason."""
    from sensors.bundle import FrameBundle
    from service.engine import InferenceEngine
    from service.pipeline import LivenessPipeline, build_face_stage
    from service.settings import Settings

    engine = InferenceEngine.load(exported["onnx"], providers="cpu", intra_op_threads=1)
    settings = Settings(model_path=exported["onnx"])
    pipeline = LivenessPipeline(engine, build_face_stage(settings.face, 112), settings)
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, (112, 112, 3), dtype=np.uint8)
    far = pipeline.analyze(FrameBundle(rgb=noise), cropped=True)
    (face,) = far.faces
    assert face.ood_distance is not None
    assert face.ood_distance > engine.spec.ood_thresholds["rgb"]
    assert face.decision == "uncertain" and "out_of_distribution" in face.reasons
    assert face.score is not None  # the score is still reported
    dev = CropCache.from_protocol(exported["data"], "intra", "dev")
    (scored,) = engine.score([dev[0]])
    assert not isinstance(scored, Exception) and scored.ood_distance is not None
    assert scored.ood_distance <= engine.spec.ood_thresholds["rgb+depth+ir"]


def test_model_without_ood_output_still_serves(exported: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "no-ood.onnx"
    result = CliRunner().invoke(
        main,
        ["export", "--checkpoint", str(exported["ckpt"]), "--out", str(out), "--data",
         str(exported["data"]), "--no-test", "--no-ood"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert [o.name for o in onnx.load(str(out)).graph.output] == ["score", "pixel_map"]
    from service.engine import InferenceEngine

    engine = InferenceEngine.load(out, providers="cpu", intra_op_threads=1)
    assert engine.spec.ood_thresholds == {}
    dev = CropCache.from_protocol(exported["data"], "intra", "dev")
    (scored,) = engine.score([dev[0]])
    assert not isinstance(scored, Exception) and scored.ood_distance is None
