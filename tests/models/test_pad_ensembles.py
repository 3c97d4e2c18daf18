"""benchmarks/pad_ensembles.py: every mean-logit ensemble of several models on dev, and how
many errors the models share."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCH))

import pad_ensembles as pe  # noqa: E402

BUNDLED = Path(__file__).resolve().parents[2] / "models" / "default" / "flexlive-lite.onnx"


def _data() -> tuple[np.ndarray, list[str]]:
    labels = np.array([1] * 10 + [0] * 10)
    species = ["bona_fide"] * 10 + ["print_flat"] * 5 + ["mask_silicone"] * 5
    return labels, species


def test_combine_averages_logits_not_probabilities() -> None:
    s = {"a": np.array([0.99, 0.9]), "b": np.array([0.01, 0.5])}
    out = pe.combine(s, ["a", "b"])
    assert out[0] == pytest.approx(0.5)
    # logit(0.9) = 2.197, logit(0.5) = 0: mean 1.099 -> 0.75 (a probability mean gives 0.7)
    assert out[1] == pytest.approx(0.75, abs=1e-3)
    assert pe.combine(s, ["a"]) == pytest.approx(s["a"])


def test_models_that_miss_the_same_samples_gain_nothing_together() -> None:
    labels, species = _data()
    rng = np.random.default_rng(0)
    base = np.where(labels == 1, rng.uniform(0.7, 0.95, 20), rng.uniform(0.05, 0.3, 20))
    base[12] = 0.9  # one print every model takes for live
    res = pe.ensemble_table({"a": base, "b": base.copy()}, labels, species)
    rows = {"+".join(r["members"]): r for r in res["ensembles"]}
    assert set(rows) == {"a", "b", "a+b"}
    assert rows["a+b"]["acer"] == pytest.approx(rows["a"]["acer"]) and rows["a"]["acer"] > 0
    assert rows["a"]["worst_species"] == "print_flat" and rows["a"]["worst_errors"] == 1
    (o,) = res["overlap"]
    assert o["jaccard"] == 1.0 and o["shared"] == o["errors_a"] == o["errors_b"] >= 1


def test_models_with_different_mistakes_cancel_them() -> None:
    labels, species = _data()
    a = np.where(labels == 1, 0.9, 0.1)
    b = a.copy()
    a[12], b[17] = 0.95, 0.95  # each takes a different attack for live, the other is sure
    res = pe.ensemble_table({"a": a, "b": b}, labels, species, max_size=2)
    rows = {"+".join(r["members"]): r for r in res["ensembles"]}
    assert rows["a"]["acer"] > 0 and rows["b"]["acer"] > 0
    assert rows["a+b"]["acer"] == 0.0 and rows["a+b"]["bpcer_errors"] == 0
    (o,) = res["overlap"]
    assert o["shared"] == 0 and o["jaccard"] == 0.0
    only_pairs = pe.ensemble_table({"a": a, "b": b, "c": a}, labels, species, max_size=2)
    assert max(len(r["members"]) for r in only_pairs["ensembles"]) == 2
    assert len(only_pairs["ensembles"]) == 3 + 3 and len(only_pairs["overlap"]) == 3


def test_parse_model_names() -> None:
    assert pe.parse_model("x=runs/a/net.onnx") == ("x", Path("runs/a/net.onnx"))
    assert pe.parse_model("runs/a/net.onnx") == ("net", Path("runs/a/net.onnx"))


@pytest.fixture(scope="module")
def dev_only(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from synth import generate_benchmark

    out = tmp_path_factory.mktemp("ens_bench")
    generate_benchmark(out, scale="tiny", seed=3, progress=False, workers=1, splits=("dev",))
    return out


def test_cli_scores_real_models_on_the_dev_split(
    dev_only: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "ens.json"
    rc = pe.main(
        ["--data", str(dev_only), "--model", f"a={BUNDLED}", "--model", f"b={BUNDLED}",
         "--subset", "rgb+depth+ir", "--json", str(out)]
    )  # fmt: skip
    assert rc == 0
    res = json.loads(out.read_text())
    assert res["split"] == "dev" and res["subset"] == "rgb+depth+ir"
    rows = {"+".join(r["members"]): r for r in res["ensembles"]}
    # the same file twice is the same model: same threshold, same errors
    assert rows["a+b"]["acer"] == pytest.approx(rows["a"]["acer"])
    assert rows["a+b"]["threshold"] == pytest.approx(rows["a"]["threshold"], abs=1e-9)
    assert rows["a"]["bpcer_n"] > 0 and rows["a"]["worst_n"] > 0
    assert res["overlap"][0]["jaccard"] == 1.0
    assert "a+b" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--model", "nope.onnx"], "no such model file"),
        (["--model", f"a={BUNDLED}", "--model", f"a={BUNDLED}"], "share a name"),
        (["--model", str(BUNDLED), "--subset", "rgb+thermal"], "modalities are"),
    ],
)
def test_cli_refuses_bad_arguments_with_a_reason(
    dev_only: Path, extra: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        pe.main(["--data", str(dev_only), *extra])
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_cli_refuses_a_root_without_a_dev_split(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        pe.main(["--data", str(tmp_path), "--model", str(BUNDLED)])
    assert exc.value.code == 2
    assert "no dev split" in capsys.readouterr().err
