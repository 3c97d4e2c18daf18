"""Training smoke test: a few steps on a tiny separable set, loss finite and decreasing."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from models.datasets.toy import write_toy_dataset  # noqa: E402
from models.train import TrainConfig, face_region, load_checkpoint, train  # noqa: E402


@pytest.fixture(scope="module")
def toy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_toy_dataset(tmp_path_factory.mktemp("toy"), n_per_split=32, size=112)


def _cfg(toy: Path, out: Path, **kw: object) -> TrainConfig:
    base = dict(
        data=str(toy),
        out=str(out),
        epochs=4,
        batch_size=16,
        lr=3e-3,
        warmup_steps=2,
        progress=False,
        threads=1,
        augment=False,
        p_drop_rgb=0.0,
        p_drop_depth=0.0,
        p_drop_ir=0.0,
    )
    base.update(kw)
    return TrainConfig(**base)  # type: ignore[arg-type]


def test_loss_finite_and_decreasing(toy: Path, tmp_path: Path) -> None:
    path = train(_cfg(toy, tmp_path / "run"))
    net, ckpt = load_checkpoint(path)
    losses = [h["loss"] for h in ckpt["history"]]
    assert all(torch.isfinite(torch.tensor(losses)))
    assert losses[-1] < losses[0]
    assert ckpt["model"]["name"] == "flexlive_lite"
    assert ckpt["model"]["overrides"]["widths"] == [24, 48, 96]  # resolved, not defaults
    assert ckpt["config"]["epochs"] == 4 and ckpt["train_seconds"] > 0
    assert (tmp_path / "run" / "config.json").is_file()
    assert not net.training


def test_seeded_runs_are_identical(toy: Path, tmp_path: Path) -> None:
    kw = {"max_steps": 2, "augment": True, "p_drop_depth": 0.5, "p_drop_ir": 0.5, "epochs": 1}
    a = torch.load(train(_cfg(toy, tmp_path / "a", **kw)), weights_only=False)["state_dict"]
    b = torch.load(train(_cfg(toy, tmp_path / "b", **kw)), weights_only=False)["state_dict"]
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_specialist_and_fusion_override(toy: Path, tmp_path: Path) -> None:
    path = train(
        _cfg(
            toy,
            tmp_path / "s",
            subset="rgb+ir",
            max_steps=1,
            epochs=1,
            model_overrides={"fusion": "cross_attention"},
        )
    )
    net, ckpt = load_checkpoint(path)
    assert net.fusion_name == "cross_attention"
    assert ckpt["config"]["subset"] == "rgb+ir"


def test_pixel_target_covers_the_face() -> None:
    m = face_region(14)
    assert m.shape == (14, 14)
    assert m[7, 7] == 1 and m[0, 0] == 0
    assert 0.25 < m.mean() < 0.7


def test_the_registered_ensemble_trains_and_its_checkpoint_rebuilds_it(
    toy: Path, tmp_path: Path
) -> None:
    path = train(
        _cfg(toy, tmp_path / "e", model="ensemble", max_steps=2, epochs=1,
             model_overrides={"n": 2, "fusion": "concat"})
    )  # fmt: skip
    net, ckpt = load_checkpoint(path)
    assert ckpt["model"]["name"] == "ensemble"
    assert [m["name"] for m in ckpt["model"]["overrides"]["members"]] == ["flexlive_lite"] * 2
    assert len(net.members) == 2 and net.fusion_name == "concat"
    saved = torch.load(path, weights_only=False)["state_dict"]
    assert all(torch.equal(saved[k], v) for k, v in net.state_dict().items())
    history = torch.load(path, weights_only=False)["history"]
    assert history and all(torch.isfinite(torch.tensor([h["loss"] for h in history])))


def test_a_dataset_without_dev_split_trains(toy: Path, tmp_path: Path) -> None:
    """``synth benchmark --split train`` writes an empty dev list: training still runs and
    the history says there was no dev EER (not a made-up 0.0)."""
    import shutil

    data = tmp_path / "train-only"
    shutil.copytree(toy, data)
    for dev in (data / "protocols").rglob("dev.txt"):
        dev.write_text("")
    _, ckpt = load_checkpoint(train(_cfg(data, tmp_path / "run", epochs=1)))
    assert [h["dev_eer"] for h in ckpt["history"]] == [None]
    _, with_dev = load_checkpoint(train(_cfg(toy, tmp_path / "run2", epochs=1)))
    assert 0.0 <= with_dev["history"][0]["dev_eer"] <= 1.0
