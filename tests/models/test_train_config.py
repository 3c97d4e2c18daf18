"""Training runs from YAML configs, and a resumed run ends exactly where an uninterrupted
one does."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")

from click.testing import CliRunner  # noqa: E402

from models import train as train_mod  # noqa: E402
from models.nets import create_model, list_models  # noqa: E402
from models.train import ResumeError, TrainConfig, train  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = sorted((ROOT / "configs").glob("*.yaml"))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from synth import generate_benchmark

    out = tmp_path_factory.mktemp("tiny")
    generate_benchmark(out, scale="tiny", progress=False, workers=1)
    return out


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_checked_in_configs_describe_buildable_runs(path: Path) -> None:
    from models.nets.fusion import FUSIONS
    from models.nets.registry import is_large

    cfg = TrainConfig.from_yaml(path)
    assert cfg.model in list_models(include_large=True)
    assert cfg.model_overrides.get("fusion", "concat") in FUSIONS
    assert cfg.epochs > 0 and cfg.data
    if is_large(cfg.model):  # paper scale: built tiny by tests/models/test_registry_export.py
        assert path.name.startswith("paper-")
        return
    net = create_model(cfg.model, **cfg.model_overrides)
    if "fusion" in cfg.model_overrides:
        assert net.fusion_name == cfg.model_overrides["fusion"]


def test_every_paper_setting_has_a_config() -> None:
    """Backbone × fusion, as the paper's table: CDCN, ResNet-50 and ViT-B/16 with each
    of the three fusions."""
    from models.nets.fusion import FUSIONS

    seen = {
        (c.model, c.model_overrides.get("fusion"))
        for c in (TrainConfig.from_yaml(p) for p in CONFIGS if p.name.startswith("paper-"))
    }
    assert seen == {(b, f) for b in ("cdcn", "resnet50", "vit_b16") for f in FUSIONS}


def test_bundled_config_matches_the_model_card_recipe() -> None:
    cfg = TrainConfig.from_yaml(ROOT / "configs" / "flexlive-lite.yaml")
    card = (ROOT / "models" / "default" / "card" / "commands.sh").read_text()
    assert cfg.protocol == "combined" and f"--epochs {cfg.epochs}" in card
    assert cfg.data == "data/synth/large-train" and f"--data {cfg.data}" in card
    assert "DATA=data/synth/standard" in card  # calibrated and tested on standard
    # the fine-tuning stages: each starts from the previous stage's networks, on the same
    # data, and the card runs each of them
    # (the fifth and sixth on generator 2.2.0's scenes, whose train people are more varied,
    # the seventh on 2.3.0's, whose necks have no groove; the card generates both)
    previous = cfg
    stages = {f"finetune{i}": cfg.data for i in (1, 2, 3, 4)}
    stages |= {f"finetune{i}": "data/synth/large-train-220" for i in (5, 6)}
    stages |= {"finetune7": "data/synth/large-train-230"}
    for generated in ("large-train-220", "large-train-230"):
        assert f"--out data/synth/{generated} --scale large --split train --seed 0" in card
    for stage, data in stages.items():
        tuned = TrainConfig.from_yaml(ROOT / "configs" / f"flexlive-lite-{stage}.yaml")
        assert tuned.init == str(Path(previous.out) / "checkpoint.pt")
        assert (tuned.data, tuned.protocol, tuned.model) == (data, cfg.protocol, cfg.model)
        assert tuned.model_overrides == cfg.model_overrides and tuned.species_weight
        # the card runs the stage from the previous stage's networks, with its seed and out
        call = re.search(
            rf"^finetune configs/flexlive-lite-{stage}\.yaml (\S+) (\S+) (\d+)$", card, re.M
        )
        assert call is not None, stage
        assert (
            f"runs/{call[1]}-s0/checkpoint.pt" == tuned.init and f"runs/{call[2]}-s0" == tuned.out
        )
        assert int(call[3]) == tuned.seed, stage
        previous = tuned


def test_unknown_and_missing_keys_are_named(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("data: x\nepoch: 3\n")
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['epoch'\]"):
        TrainConfig.from_yaml(bad)
    bad.write_text("epochs: 3\n")
    with pytest.raises(ValueError, match="'data'"):
        TrainConfig.from_yaml(bad)


def test_cli_options_override_the_config_file(tiny: Path, tmp_path: Path) -> None:
    from service.cli import main

    cfg = tmp_path / "run.yaml"
    out = tmp_path / "run"
    cfg.write_text(
        f"data: {tiny}\nprotocol: intra\nepochs: 3\nbatch_size: 16\nseed: 5\nthreads: 1\n"
        f"out: {out}\nprogress: false\n"
    )
    res = CliRunner().invoke(main, ["train", "--config", str(cfg), "--epochs", "1"])
    assert res.exit_code == 0, res.output
    written = json.loads((out / "config.json").read_text())
    # given on the command line: wins; not given: the file's value, not the CLI default
    assert written["epochs"] == 1 and written["batch_size"] == 16 and written["seed"] == 5
    res = CliRunner().invoke(main, ["train", "--config", str(tmp_path / "nope.yaml")])
    assert res.exit_code == 2 and "nope.yaml" in res.output
    cfg.write_text("data: x\nbogus: 1\n")
    res = CliRunner().invoke(main, ["train", "--config", str(cfg)])
    assert res.exit_code == 1 and "bogus" in res.output and "Traceback" not in res.output


def test_fine_tuning_options_reach_the_run(tiny: Path, tmp_path: Path) -> None:
    """``--init`` and ``--species-weight`` land in the run's config; a malformed weight or a
    species the data lacks is one readable line, not a traceback."""
    from service.cli import main

    base = ["train", "--data", str(tiny), "--protocol", "intra", "--batch-size", "8",
            "--threads", "1"]  # fmt: skip
    first = tmp_path / "a"
    res = CliRunner().invoke(main, [*base, "--max-steps", "1", "--out", str(first)])
    assert res.exit_code == 0, res.output
    out = tmp_path / "b"
    args = [*base, "--max-steps", "1", "--out", str(out), "--init", str(first / "checkpoint.pt")]
    res = CliRunner().invoke(main, [*args, "--species-weight", "bona_fide=2"])
    assert res.exit_code == 0, res.output
    written = json.loads((out / "config.json").read_text())
    assert written["init"] == str(first / "checkpoint.pt")
    assert written["species_weight"] == {"bona_fide": 2.0}
    for bad in ("bona_fide", "bona_fide=lots", "=2"):
        res = CliRunner().invoke(main, [*args, "--species-weight", bad])
        assert res.exit_code == 2 and "SPECIES=WEIGHT" in res.output, bad
    res = CliRunner().invoke(main, [*args, "--override", "widths"])
    assert res.exit_code == 2 and "KEY=VALUE" in res.output
    res = CliRunner().invoke(main, [*args, "--species-weight", "unicorn=2"])
    assert res.exit_code == 1 and "unicorn" in res.output and "Traceback" not in res.output
    res = CliRunner().invoke(main, [*args, "--hide-glints", "0.25"])
    assert res.exit_code == 0, res.output
    assert json.loads((out / "config.json").read_text())["hide_glints"] == 0.25
    res = CliRunner().invoke(main, [*args, "--hide-glints", "1.5"])
    assert res.exit_code == 2 and "--hide-glints" in res.output
    # from a YAML file too: a rate outside [0, 1], or a YAML boolean, is refused by name
    for bad in ("1.5", "yes"):
        yml = tmp_path / f"bad-{bad}.yaml"
        yml.write_text(f"data: {tiny}\nprotocol: intra\nhide_glints: {bad}\n")
        res = CliRunner().invoke(main, ["train", "--config", str(yml), "--out", str(out)])
        assert res.exit_code == 1 and "hide_glints" in res.output, res.output


def _cfg(tiny: Path, out: Path, **kw: Any) -> TrainConfig:
    return TrainConfig(
        data=str(tiny), protocol="intra", out=str(out), epochs=2, batch_size=8, threads=1,
        progress=False, warmup_steps=2, **kw,
    )  # fmt: skip


def test_a_resumed_run_ends_with_the_uninterrupted_weights(
    tiny: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On the CPU a resumed run is bit-identical (on a GPU only close: its kernels are not
    deterministic, and only the CPU generators are restored; docs/training.md)."""

    straight = torch.load(train(_cfg(tiny, tmp_path / "a", device="cpu")), weights_only=False)

    calls = {"n": 0}
    real_predict = train_mod.predict

    def crash_in_epoch_two(*args: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 2:  # the dev pass that ends epoch 2: epoch 1's state is on disk
            raise KeyboardInterrupt
        return real_predict(*args)

    monkeypatch.setattr(train_mod, "predict", crash_in_epoch_two)
    with pytest.raises(KeyboardInterrupt):
        train(_cfg(tiny, tmp_path / "b", device="cpu"))
    monkeypatch.setattr(train_mod, "predict", real_predict)
    state = torch.load(tmp_path / "b" / "last.pt", weights_only=False)
    assert state["epoch"] == 1
    # written before a setting existed (here extra_data): that setting counts as its default
    del state["config"]["extra_data"]
    torch.save(state, tmp_path / "b" / "last.pt")
    resumed = torch.load(
        train(_cfg(tiny, tmp_path / "b", device="cpu", resume=True)), weights_only=False
    )
    assert [h["epoch"] for h in resumed["history"]] == [1, 2]
    for k, v in straight["state_dict"].items():
        assert torch.equal(v, resumed["state_dict"][k]), k
    # another run's state is refused, not silently continued
    with pytest.raises(ResumeError, match="lr"):
        train(_cfg(tiny, tmp_path / "b", device="cpu", resume=True, lr=0.01))


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU: cuda is valid")
def test_asking_for_a_gpu_without_one_is_one_line(tiny: Path, tmp_path: Path) -> None:
    from service.cli import main

    res = CliRunner().invoke(
        main, ["train", "--data", str(tiny), "--device", "cuda", "--out", str(tmp_path / "r")]
    )
    assert res.exit_code == 1 and "torch sees no GPU" in res.output, res.output
    assert not isinstance(res.exception, ValueError)  # handled, not a traceback


def test_more_processes_than_gpus_is_refused_before_the_group_forms(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """NCCL needs a GPU per process: two processes on a one-GPU node stop with a sentence
    that says what to start instead, before any process group is formed; on the CPUs
    (``--device cpu``) the same two processes would use gloo."""
    import torch.distributed as td

    from models.train import Distributed, SetupError

    formed: list[str] = []
    monkeypatch.setattr(td, "is_initialized", lambda: False)
    monkeypatch.setattr(td, "init_process_group", lambda backend: formed.append(backend))
    monkeypatch.setattr(td, "get_rank", lambda: 1)
    monkeypatch.setattr(td, "get_world_size", lambda: 2)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    for k, v in {"WORLD_SIZE": "2", "LOCAL_WORLD_SIZE": "2", "LOCAL_RANK": "1"}.items():
        monkeypatch.setenv(k, v)
    with pytest.raises(SetupError, match="2 training processes on this node but 1 GPU"):
        Distributed.from_env("auto")
    assert formed == []
    dist = Distributed.from_env("cpu")
    assert formed == ["gloo"] and (dist.rank, dist.world, dist.local_rank) == (1, 2, 1)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert Distributed.from_env("auto").local_rank == 1 and formed[-1] == "nccl"
