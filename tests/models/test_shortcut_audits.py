"""Shortcut audits of the synthetic benchmark (benchmarks/pad_baselines.py, pad_occlusion.py,
their shared helpers in benchmarks/_audit.py) on a tiny generated benchmark."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCH))

import _audit  # noqa: E402
import pad_baselines  # noqa: E402
import pad_occlusion  # noqa: E402

from models.crop import template  # noqa: E402
from models.datasets.crops import CropCache, restrict  # noqa: E402
from models.preprocess import FaceCrops  # noqa: E402
from models.spec import MODALITIES, all_subsets, subset_name  # noqa: E402

PROTOCOL = "audit"


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny benchmark, plus protocol ``audit`` = ``combined`` with test as dev too (the
    audits' thresholds and their expectations were set on that)."""
    from synth import generate_benchmark

    out = tmp_path_factory.mktemp("audit_bench")
    generate_benchmark(out, scale="tiny", seed=0, progress=False, workers=1)
    src, dst = out / "protocols" / "combined", out / "protocols" / PROTOCOL
    dst.mkdir()
    for split in ("train", "test"):
        for suffix in ("", "_species"):
            shutil.copy(src / f"{split}{suffix}.txt", dst / f"{split}{suffix}.txt")
    for suffix in ("", "_species"):
        shutil.copy(src / f"test{suffix}.txt", dst / f"dev{suffix}.txt")
    return out


@pytest.fixture(scope="module")
def crops(bench: Path) -> CropCache:
    return CropCache.from_protocol(bench, PROTOCOL, "test")


# -- regions ----------------------------------------------------------------------------------
def test_face_region_follows_the_crop_convention() -> None:
    m = _audit.face_mask(112)
    assert m.sum() == 80 * 80 and m[16:96, 16:96].all()
    assert not m[:16].any() and not m[96:].any() and not m[:, :16].any() and not m[:, 96:].any()
    for x, y in template(112):  # every landmark of the convention is well inside the face
        assert m[int(y) - 11 : int(y) + 12, int(x) - 11 : int(x) + 12].all()
    assert _audit.ring_width(64) == 9 and _audit.face_mask(64).sum() == 46 * 46
    np.testing.assert_array_equal(_audit.border_mask(112), ~m)
    with pytest.raises(ValueError, match="reaches the face"):
        _audit.face_mask(112, ring=40)


def _with_noise(c: FaceCrops, region: np.ndarray, seed: int) -> FaceCrops:
    rng = np.random.default_rng(seed)

    def fill(x: np.ndarray) -> np.ndarray:
        y = x.copy()
        hi = 255 if x.dtype == np.uint8 else 3000
        y[region] = rng.integers(0, hi, size=y[region].shape, dtype=x.dtype)
        return y

    assert c.rgb is not None and c.depth is not None and c.ir is not None
    return FaceCrops(fill(c.rgb), fill(c.depth), fill(c.ir), c.depth_scale)


def test_border_features_do_not_see_the_face(crops: CropCache) -> None:
    face = _audit.face_mask(112)
    for i in (0, 1, len(crops) - 1):
        c = crops[i]
        noisy = _with_noise(c, face, seed=i)
        a = _audit.modality_features(c, "border")
        b = _audit.modality_features(noisy, "border")
        for m in MODALITIES:  # bit-identical: nothing of the face reaches them
            np.testing.assert_array_equal(a[m], b[m])
        # ... while the whole-crop features do change, and so do the border features when
        # the border is replaced
        full_a, full_b = _audit.modality_features(c), _audit.modality_features(noisy)
        assert all(not np.allclose(full_a[m], full_b[m]) for m in MODALITIES)
        other = _audit.modality_features(_with_noise(c, ~face, seed=i), "border")
        assert all(not np.allclose(a[m], other[m]) for m in MODALITIES)


def test_subset_features_are_those_of_the_restricted_crop(crops: CropCache) -> None:
    blocks = _audit.feature_blocks(crops, "border")
    n_per = {m: b.shape[1] for m, b in blocks.items()}
    assert n_per == {"rgb": 27, "depth": 9, "ir": 9}
    for subset in all_subsets():
        X = _audit.subset_features(blocks, subset)
        for i in (0, 5):
            f = _audit.modality_features(restrict(crops[i], subset), "border")
            np.testing.assert_allclose(X[i], np.concatenate([f[m] for m in subset]))


# -- classifiers --------------------------------------------------------------------------------
def test_the_mlp_learns_what_the_linear_model_cannot() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(1200, 4))
    y = (X[:, 0] * X[:, 1] > 0).astype(np.float64)  # XOR of two signs: not linear
    tr, dv, te = slice(0, 800), slice(800, 1000), slice(1000, 1200)
    Xs = {"train": X[tr], "dev": X[dv], "test": X[te]}
    ys = {"train": y[tr], "dev": y[dv], "test": y[te]}
    from models.metrics import auc

    lin = _audit.train_and_score("logreg", Xs, ys)["test"]
    mlp = _audit.train_and_score("mlp", Xs, ys)["test"]
    assert auc(lin, y[te]) < 0.65
    assert auc(mlp, y[te]) > 0.95
    # reproducible for a seed
    again = _audit.train_and_score("mlp", Xs, ys)["test"]
    np.testing.assert_array_equal(mlp, again)
    with pytest.raises(ValueError, match="unknown baseline"):
        _audit.train_and_score("svm", Xs, ys)


def test_select_balanced_spreads_over_species() -> None:
    sp = ["bona_fide"] * 10 + ["print_flat"] * 3 + ["mask_rigid"] * 10
    idx = _audit.select_balanced(sp, 9, seed=1)
    assert len(idx) == 9 and idx == sorted(set(idx))
    assert sorted(sp[i] for i in idx).count("print_flat") == 3
    assert _audit.select_balanced(sp, 100) == list(range(len(sp)))
    assert _audit.species_order(["mask_rigid", "bona_fide", "print_flat", "other"]) == [
        "bona_fide",
        "print_flat",
        "mask_rigid",
        "other",
    ]


def test_dev_split_without_attacks_is_refused(bench: Path) -> None:
    from models.datasets.protocol import read_protocol, write_protocol

    src, dst = bench / "protocols" / "combined", bench / "protocols" / "dev_bona_fide_only"
    for split in ("train", "test"):
        write_protocol(dst / f"{split}.txt", read_protocol(src / f"{split}.txt"))
    dev = [e for e in read_protocol(src / "dev.txt") if e.label == 1]
    write_protocol(dst / "dev.txt", dev)
    with pytest.raises(ValueError, match="dev split needs bona fide and attack"):
        pad_baselines.run(bench, dst.name, baselines=("logreg",), subsets=(("ir",),))


# -- the baseline commands ------------------------------------------------------------------------
@pytest.mark.parametrize("region", ["full", "border"])
def test_baselines_command(bench: Path, tmp_path: Path, region: str) -> None:
    out = tmp_path / "b.json"
    proc = subprocess.run(
        [
            sys.executable,
            str(BENCH / "pad_baselines.py"),
            "--data",
            str(bench),
            "--protocol",
            PROTOCOL,
            "--region",
            region,
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    res = json.loads(out.read_text())
    names = [subset_name(s) for s in all_subsets()]
    assert res["region"] == region and res["protocol"] == PROTOCOL
    assert res["generator_version"].startswith("2.")
    assert list(res["models"]) == ["logreg", "mlp"] and res["baseline"] == res["models"]["logreg"]
    for b in ("logreg", "mlp"):
        assert list(res["models"][b]) == names
        for r in res["models"][b].values():
            assert 0.0 <= r["eer"] <= 1.0 and 0.0 <= r["auc"] <= 1.0
            assert len(r["eer_per_species"]) == 9
    table = proc.stdout
    assert "| subset | logreg EER | logreg ACER | logreg AUC | mlp EER |" in table
    assert all(f"| {n} | " in table for n in names)
    assert ("outer 16-px ring only" in table) == (region == "border")


# -- occlusion ------------------------------------------------------------------------------
def _region_model(
    path: Path, make_spec: Any, modality: str, box: tuple[int, int, int, int], gain: float = 4.0
) -> Path:
    """A contract-honouring model whose logit is ``gain · mean(modality[y0:y1, x0:x1])``."""
    import onnx
    from onnx import TensorProto, helper

    S = 112
    y0, y1, x0, x1 = box
    chans = {"rgb": 3, "depth": 1, "ir": 1}
    inputs = [
        helper.make_tensor_value_info(m, TensorProto.FLOAT, ["N", chans[m], S, S])
        for m in MODALITIES
    ] + [helper.make_tensor_value_info("present", TensorProto.FLOAT, ["N", 3])]

    def ints(name: str, v: list[int]) -> Any:
        return helper.make_node(
            "Constant", [], [name], value=helper.make_tensor(name, TensorProto.INT64, [len(v)], v)
        )

    nodes = [
        ints("starts", [y0, x0]),
        ints("ends", [y1, x1]),
        ints("axes", [2, 3]),
        helper.make_node("Slice", [modality, "starts", "ends", "axes"], ["win"]),
        helper.make_node("ReduceMean", ["win"], ["m"], axes=[1, 2, 3], keepdims=0),
        helper.make_node(
            "Constant",
            [],
            ["gain"],
            value=helper.make_tensor("gain", TensorProto.FLOAT, [], [gain]),
        ),
        helper.make_node("Mul", ["m", "gain"], ["logit"]),
        helper.make_node("Sigmoid", ["logit"], ["score"]),
    ]
    out = helper.make_tensor_value_info("score", TensorProto.FLOAT, ["N"])
    model = helper.make_model(
        helper.make_graph(nodes, "region", inputs, [out]),
        opset_imports=[helper.make_opsetid("", 17)],
    )
    model.ir_version = 8
    for k, v in make_spec(input_size=S).to_metadata().items():
        e = model.metadata_props.add()
        e.key, e.value = k, v
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def _feed(crops: CropCache, subset: tuple[str, ...], n: int = 4) -> dict[str, np.ndarray]:
    from models.preprocess import preprocess_batch

    return preprocess_batch([restrict(crops[i], subset) for i in range(n)], _audit.SPEC)


def test_logit_is_read_before_the_sigmoid(tmp_path: Path, make_spec: Any, crops: CropCache) -> None:
    model = _region_model(tmp_path / "m.onnx", make_spec, "rgb", (40, 72, 40, 72), gain=60.0)
    feed = _feed(crops, ("rgb", "depth", "ir"))
    expected = 60.0 * feed["rgb"][:, :, 40:72, 40:72].mean(axis=(1, 2, 3))
    assert np.abs(expected).max() > 20  # scores saturate in float32 ...
    logit = pad_occlusion.predictor(model, "logit")(feed)
    np.testing.assert_allclose(logit, expected, rtol=1e-4)  # ... the logit does not
    score = pad_occlusion.predictor(model, "score")(feed)
    np.testing.assert_allclose(score, 1 / (1 + np.exp(-expected)), atol=1e-6)


def test_occlusion_map_lies_where_the_model_looks(
    tmp_path: Path, make_spec: Any, crops: CropCache
) -> None:
    patch, stride = 16, 8
    corner = _region_model(tmp_path / "corner.onnx", make_spec, "ir", (0, 16, 0, 16))
    maps, _ = pad_occlusion.occlusion_maps(
        pad_occlusion.predictor(corner), _feed(crops, ("rgb", "ir")), patch, stride
    )
    reach = np.zeros((112, 112), bool)
    reach[: 16 + patch - stride, : 16 + patch - stride] = True  # patches touching the window
    assert (maps[:, ~reach] == 0).all() and (maps[:, :16, :16] > 0).all()
    assert all(pad_occlusion.region_share(m, 16) < 0.2 for m in maps)

    centre = _region_model(tmp_path / "centre.onnx", make_spec, "depth", (48, 64, 48, 64))
    predict = pad_occlusion.predictor(centre)
    maps, _ = pad_occlusion.occlusion_maps(
        predict, _feed(crops, ("rgb", "depth", "ir")), patch, stride
    )
    assert all(pad_occlusion.region_share(m, 16) == 1.0 for m in maps)
    assert np.unravel_index(maps[0].argmax(), maps[0].shape) >= (48, 48)
    # an absent modality is never occluded: without depth the model sees only zeros
    maps, _ = pad_occlusion.occlusion_maps(predict, _feed(crops, ("rgb", "ir")), patch, stride)
    assert (maps == 0).all()


def test_positions_cover_the_whole_crop() -> None:
    assert pad_occlusion.positions(112, 16, 8) == list(range(0, 97, 8))
    assert pad_occlusion.positions(20, 16, 8) == [0, 4]
    with pytest.raises(ValueError):
        pad_occlusion.positions(112, 0, 8)


def test_occlusion_command(bench: Path, tmp_path: Path, make_spec: Any) -> None:
    model = _region_model(tmp_path / "centre.onnx", make_spec, "rgb", (40, 72, 40, 72))
    png, out = tmp_path / "occ.png", tmp_path / "occ.json"
    proc = subprocess.run(
        [
            sys.executable,
            str(BENCH / "pad_occlusion.py"),
            "--model",
            str(model),
            "--data",
            str(bench),
            "--protocol",
            PROTOCOL,
            "--n",
            "12",
            "--png",
            str(png),
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    res = json.loads(out.read_text())
    groups = res["groups"]
    assert groups["all"]["n"] == 12 and list(groups)[1] == "bona_fide"
    assert sum(g["n"] for k, g in groups.items() if k != "all") == 12
    for g in groups.values():
        assert g["face_share"] == pytest.approx(1.0) and g["border_share"] == pytest.approx(0.0)
    assert res["ring_area_share"] == pytest.approx(1 - (80 / 112) ** 2)
    assert "| all | 12 |" in proc.stdout and "100.0 %" in proc.stdout
    img = cv2.imread(str(png))
    assert img is not None and img.shape[0] == len(groups) * 224


# -- errors by head pose ---------------------------------------------------------------------
def test_errors_by_pose_partition_the_test_split(bench: Path) -> None:
    """Each axis's bins split the test split without loss, and their errors add up to the
    model's overall BPCER/APCER at its own threshold; the landmark proxies grow with the
    head's pitch (down) and fall with its yaw, as the face stage's limits assume."""
    import pad_by_pose

    from models.evaluate import read_spec, score_crops, session
    from models.spec import parse_subset

    model = Path(__file__).resolve().parents[2] / "models" / "default" / "flexlive-lite.onnx"
    out = pad_by_pose.errors_by_pose(model, bench, "combined", ["rgb", "rgb+depth+ir"], 1)
    test = CropCache.from_protocol(bench, "combined", "test")
    bona = test.labels == 1
    spec = read_spec(model)
    for name, e in out.items():
        scores = score_crops(session(model, 1), spec, test, parse_subset(name))
        t = spec.threshold(None, parse_subset(name))
        assert e["threshold"] == t
        for axis in ("pitch", "yaw ±"):
            rows = [r for r in e["bins"] if r["axis"] == axis]
            assert sum(r["bona_fide"] for r in rows) == bona.sum()
            assert sum(r["attacks"] for r in rows) == (~bona).sum()
            missed = sum(r["bpcer"] * r["bona_fide"] for r in rows if r["bona_fide"])
            passed = sum(r["apcer"] * r["attacks"] for r in rows if r["attacks"])
            assert missed == pytest.approx(np.sum(scores[bona] < t))
            assert passed == pytest.approx(np.sum(scores[~bona] >= t))
    prox = pad_by_pose.proxies(16)
    assert prox["found"] >= 14
    assert prox["pitch_per_degree"] > 0.004 and prox["yaw_per_degree"] < -0.01
    lo, hi = prox["pitch_limit_degrees"]
    assert lo < 0 < hi
    assert 0 < prox["pitch_error_degrees_with_mouth_width"] <= prox["pitch_error_degrees"] + 1e-9
    assert "pitch ≥ 12°" in pad_by_pose.report(out, prox)
