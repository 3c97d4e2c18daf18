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


def test_init_starts_from_a_checkpoints_weights(toy: Path, tmp_path: Path) -> None:
    """``init`` loads a previous run's weights (fine-tuning); a run of zero steps then ends
    exactly where it started, and a different network is refused by name."""
    from models.train import SetupError

    first = train(_cfg(toy, tmp_path / "a", epochs=1, max_steps=3))
    saved = torch.load(first, weights_only=False)["state_dict"]
    path = train(_cfg(toy, tmp_path / "b", init=str(first), max_steps=0, seed=7))
    again = torch.load(path, weights_only=False)["state_dict"]
    assert all(torch.equal(saved[k], again[k]) for k in saved)
    fresh = torch.load(train(_cfg(toy, tmp_path / "c", max_steps=0, seed=7)), weights_only=False)
    assert not all(torch.equal(saved[k], fresh["state_dict"][k]) for k in saved)
    with pytest.raises(SetupError, match="widths"):
        train(_cfg(toy, tmp_path / "d", init=str(first), model_overrides={"widths": [8, 16, 32]}))
    with pytest.raises(SetupError, match="no checkpoint"):
        train(_cfg(toy, tmp_path / "e", init=str(tmp_path / "missing.pt")))


def test_species_weight_draws_species_in_proportion(toy: Path) -> None:
    """``species_weight`` oversamples named species: with replay weighted 4, an epoch holds
    about four replays per print, a sample drawn twice is augmented twice (not copied); an
    unknown species or a non-positive weight is refused."""
    from models.datasets.crops import Augment, CropCache
    from models.datasets.protocol import BONA_FIDE
    from models.datasets.torch_dataset import PadDataset
    from models.spec import PreprocessSpec
    from models.train import SetupError, make_loader

    crops = CropCache.from_protocol(toy, "intra", "train")
    ds = PadDataset(crops, PreprocessSpec(input_size=112), Augment())
    cfg = _cfg(toy, toy / "unused", species_weight={"replay": 4.0}, batch_size=8)
    sampler = make_loader(ds, cfg, shuffle=True).sampler
    epoch = list(sampler)
    assert len(epoch) == len(ds) and len(set(epoch)) == len(epoch)  # repeats get new ids
    repeat = next(i for i in epoch if i >= len(ds))  # a sample drawn twice this epoch
    first, again = ds[repeat % len(ds)], ds[repeat]
    assert first["label"] == again["label"]
    assert not torch.equal(first["rgb"], again["rgb"])  # augmented differently
    drawn = [crops.species[i % len(ds)] for _ in range(40) for i in sampler]
    n = {s: drawn.count(s) for s in (BONA_FIDE, "print", "replay")}
    assert 3.0 < n["replay"] / n["print"] < 5.0
    assert 1.5 < n["replay"] / n[BONA_FIDE] < 2.5  # half the toy set is bona fide
    unweighted = make_loader(ds, _cfg(toy, toy / "unused"), shuffle=True).sampler
    assert sorted(unweighted) == list(range(len(ds)))  # a plain shuffle: each sample once
    with pytest.raises(SetupError, match="silicone"):
        make_loader(ds, _cfg(toy, toy / "u", species_weight={"silicone": 2.0}), shuffle=True)
    with pytest.raises(SetupError, match="positive"):
        make_loader(ds, _cfg(toy, toy / "u", species_weight={"print": 0}), shuffle=True)
    with pytest.raises(SetupError, match="positive"):  # YAML "yes" is a bool, not a weight
        make_loader(ds, _cfg(toy, toy / "u", species_weight={"print": True}), shuffle=True)


def test_extra_data_joins_another_roots_train_split(toy: Path, tmp_path: Path) -> None:
    """``extra_data`` adds another data root's train split (its paths resolved against its
    own root, same relative names as ``data``'s) while dev stays ``data``'s; a missing
    list is refused by its path."""
    import numpy as np

    from models.datasets.crops import CropCache
    from models.datasets.protocol import ProtocolError

    other = write_toy_dataset(tmp_path / "other", n_per_split=16, size=112, seed=5)
    joined = CropCache.from_protocols([toy, other], "intra", "train")
    own = CropCache.from_protocol(toy, "intra", "train")
    extra = CropCache.from_protocol(other, "intra", "train")
    assert len(joined) == len(own) + len(extra) == 48
    # the same relative file names, read from each root's own files
    assert joined.entries[0].rgb.endswith(own.entries[0].rgb)
    assert np.array_equal(joined[0].rgb, own[0].rgb)
    assert np.array_equal(joined[len(own)].rgb, extra[0].rgb)
    assert not np.array_equal(joined[len(own)].rgb, own[0].rgb)
    assert list(joined.labels) == list(own.labels) + list(extra.labels)
    path = train(_cfg(toy, tmp_path / "run", epochs=1, extra_data=[str(other)]))
    _, ckpt = load_checkpoint(path)
    assert ckpt["train_samples"] == 48
    assert ckpt["history"][0]["steps"] == 3  # 48 samples in batches of 16
    assert ckpt["history"][0]["dev_eer"] is not None  # dev: data's own
    with pytest.raises(ProtocolError, match="nowhere"):
        CropCache.from_protocols([toy, tmp_path / "nowhere"], "intra", "train")
