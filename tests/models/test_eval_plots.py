"""``liveness eval --plots``: DET/ROC curves and score histograms per modality subset, and
several models side by side."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from models.evaluate import error_rates, format_comparison, write_plots

pytest.importorskip("matplotlib")


def _is_png_with_content(path: Path) -> None:
    with Image.open(path) as im:
        im.verify()
    with Image.open(path) as im:
        assert im.format == "PNG" and im.size[0] > 200 and im.size[1] > 200
        colours = im.convert("RGB").getcolors(maxcolors=1 << 20)
    assert colours is not None and len(colours) > 10, f"{path} looks blank"


def test_error_rates_count_accepted_attacks_and_rejected_bona_fide() -> None:
    scores = np.array([0.9, 0.8, 0.3, 0.6, 0.2, 0.1])
    labels = np.array([1, 1, 1, 0, 0, 0])
    species = np.array(["b", "b", "b", "print", "replay", "print"])
    apcer, bpcer = error_rates(scores, labels)
    # thresholds: -inf, each distinct score ascending, +inf (accept if score >= t)
    np.testing.assert_allclose(apcer, [1, 1, 2 / 3, 1 / 3, 1 / 3, 0, 0, 0])
    np.testing.assert_allclose(bpcer, [0, 0, 0, 0, 1 / 3, 1 / 3, 2 / 3, 1])
    apcer_replay, _ = error_rates(scores, labels, species == "replay")
    np.testing.assert_allclose(apcer_replay, [1, 1, 1, 0, 0, 0, 0, 0])


def test_write_plots_one_set_per_subset(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    labels = np.array([1] * 30 + [0] * 30)
    species = ["bona_fide"] * 30 + ["print"] * 15 + ["replay"] * 15
    scores = {
        name: np.clip(rng.normal(0.3 + 0.4 * labels * k / 3, 0.15), 0, 1)
        for k, name in enumerate(["rgb", "rgb+depth", "rgb+depth+ir"], start=1)
    }
    written = write_plots(scores, labels, species, tmp_path / "p", {"rgb": 0.5}, "test")
    names = sorted(p.name for p in written)
    expected = sorted(
        [f"{kind}_{s}.png" for s in scores for kind in ("det", "roc", "hist")]
        + ["det.png", "roc.png"]
    )
    assert names == expected
    assert sorted(p.name for p in (tmp_path / "p").iterdir()) == expected
    for p in written:
        _is_png_with_content(p)


@pytest.fixture(scope="module")
def two_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A toy data root and two exported (untrained, tiny) models that score differently."""
    torch = pytest.importorskip("torch")
    from models.datasets.toy import write_toy_dataset
    from models.export import to_onnx_bytes, with_metadata
    from models.nets import create_model
    from models.spec import ModelSpec, default_normalisation

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("plots")
    data = write_toy_dataset(root / "data", n_per_split=12, size=32)
    out = {"data": data}
    for seed, name in ((0, "resnet18"), (1, "vit_tiny")):
        torch.manual_seed(seed)
        overrides = {"input_size": 32}
        overrides.update(
            {"widths": [8, 8, 16, 16]} if name == "resnet18" else {"dim": 24, "depth": 1}
        )
        net = create_model(name, **overrides).eval()
        spec = ModelSpec(
            name=name,
            version="0.0.1",
            input_size=32,
            normalisation=default_normalisation(),
            operating_points={"eer": 0.5},
            backbone=name,
            fusion=net.fusion_name,
            training_data="untrained",
            created="2026-01-01T00:00:00+00:00",
            has_pixel_map=True,
        )
        path = root / f"{name}.onnx"
        # the TorchScript exporter: several times faster than torch.export on a tiny net
        raw = to_onnx_bytes(net, dynamo=False)
        path.write_bytes(with_metadata(raw, spec).SerializeToString())
        out[name] = path
    return out


def test_eval_command_writes_plots_per_subset(two_models: dict[str, Path], tmp_path: Path) -> None:
    from service.cli import main

    plots = tmp_path / "plots"
    result = CliRunner().invoke(
        main,
        [
            "eval",
            "--model",
            str(two_models["resnet18"]),
            "--data",
            str(two_models["data"]),
            "--subset",
            "rgb",
            "--subset",
            "rgb+depth+ir",
            "--plots",
            str(plots),
            "--threads",
            "1",
        ],
    )
    assert result.exit_code == 0, result.output
    for subset in ("rgb", "rgb+depth+ir"):
        for kind in ("det", "roc", "hist"):
            _is_png_with_content(plots / f"{kind}_{subset}.png")
    assert not list(plots.glob("*_rgb+ir.png"))  # only the subsets asked for
    assert (plots / "det.png").is_file() and (plots / "roc.png").is_file()


def test_eval_compares_models_side_by_side(two_models: dict[str, Path], tmp_path: Path) -> None:
    from service.cli import main

    report = tmp_path / "r.json"
    args = ["eval", "--data", str(two_models["data"]), "--json", str(report), "--threads", "1"]
    for name in ("resnet18", "vit_tiny"):
        args += ["--model", str(two_models[name])]
    for subset in ("rgb", "rgb+depth", "rgb+ir", "rgb+depth+ir"):
        args += ["--subset", subset]
    result = CliRunner().invoke(main, [*args, "--plots", str(tmp_path / "p")])
    assert result.exit_code == 0, result.output
    body = json.loads(report.read_text())
    assert [r["model_name"] for r in body["models"]] == ["resnet18", "vit_tiny"]
    table = result.output.split("side by side")[1]
    assert "resnet18 0.0.1" in table and "vit_tiny 0.0.1" in table
    rows = [line.split() for line in table.splitlines() if line.startswith("rgb")]
    assert [r[0] for r in rows] == ["rgb", "rgb+depth", "rgb+ir", "rgb+depth+ir"]
    for row, name in zip(rows, ["rgb", "rgb+depth", "rgb+ir", "rgb+depth+ir"], strict=True):
        cells = [r["subsets"][name]["test"] for r in body["models"]]
        expected = [f"{c['acer']:.2%}" for c in cells]
        assert [row[1], row[4]] == expected  # ACER of each model, in --model order
    # one plot folder per model
    assert len(list((tmp_path / "p").glob("*/det_rgb.png"))) == 2
    assert format_comparison(body["models"]) in result.output
