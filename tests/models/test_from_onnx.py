"""Training checkpoints rebuilt from the bundled ONNX model (``liveness checkpoints``)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")

from click.testing import CliRunner  # noqa: E402

from models.datasets.toy import write_toy_dataset  # noqa: E402
from models.from_onnx import (  # noqa: E402
    FOLDED_KEY,
    RecoveryError,
    checkpoints_from_onnx,
    freeze_batchnorm,
)
from models.nets.ensemble import FlexModalEnsemble  # noqa: E402
from models.spec import CHANNELS, MODALITIES  # noqa: E402
from models.train import SetupError, TrainConfig, load_checkpoint, train  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
BUNDLED = ROOT / "models" / "default" / "flexlive-lite.onnx"


@pytest.fixture(scope="module")
def members(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return checkpoints_from_onnx(BUNDLED, tmp_path_factory.mktemp("rebuilt"))


def _inputs(n: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    out = {m: rng.uniform(-2, 2, (n, CHANNELS[m], 112, 112)).astype(np.float32) for m in MODALITIES}
    present = np.ones((n, len(MODALITIES)), np.float32)
    present[: n // 2, 1:] = 0.0  # half the batch RGB only, as the service feeds it
    out["depth"][: n // 2] = 0.0
    out["ir"][: n // 2] = 0.0
    out["present"] = present
    return out


def test_rebuilt_members_reproduce_the_bundled_model(members: list[Path]) -> None:
    """One checkpoint per ensemble member; together they score what the ONNX file scores."""
    import onnxruntime as ort

    assert [p.parent.name for p in members] == ["member-0", "member-1"]
    nets, ckpts = zip(*(load_checkpoint(p) for p in members), strict=True)
    assert all(c[FOLDED_KEY] for c in ckpts)
    assert ckpts[0]["source"]["version"] == json.loads(
        next(p.value for p in onnx.load(str(BUNDLED)).metadata_props if p.key == "flexlive.version")
    )
    ensemble = FlexModalEnsemble(list(nets)).eval()
    feeds = _inputs(6, seed=11)
    ref = ort.InferenceSession(str(BUNDLED), providers=["CPUExecutionProvider"]).run(
        ["score"], feeds
    )[0]
    with torch.no_grad():
        got = ensemble(*(torch.from_numpy(feeds[k]) for k in (*MODALITIES, "present")))
    np.testing.assert_allclose(got["score"].numpy().reshape(-1), ref.reshape(-1), atol=1e-4)
    # The members differ (two seeds), so each is really its own network.
    assert not torch.equal(nets[0].state_dict()["fc.weight"], nets[1].state_dict()["fc.weight"])


def test_frozen_batchnorm_keeps_the_rebuilt_function_in_training_mode(members: list[Path]) -> None:
    """In training mode a folded network is its exported self only with frozen batch norms:
    batch statistics would replace the identity they were rebuilt as."""
    net, _ = load_checkpoint(members[0])
    feeds = _inputs(8, seed=3)
    args = [torch.from_numpy(feeds[k]) for k in (*MODALITIES, "present")]
    with torch.no_grad():
        ref = net(*args)["logit"]
        net.train()
        for m in net.modules():
            if isinstance(m, torch.nn.Dropout):
                m.eval()
        unfrozen = copy.deepcopy(net)
        assert freeze_batchnorm(net) > 0
        frozen = net(*args)["logit"]
        batch_stats = unfrozen(*args)["logit"]  # (also moves its running statistics)
    torch.testing.assert_close(frozen, ref)
    assert not torch.allclose(batch_stats, ref, atol=1e-3)


def test_fine_tuning_a_rebuilt_member_needs_frozen_batchnorm(
    members: list[Path], tmp_path: Path
) -> None:
    toy = write_toy_dataset(tmp_path / "toy", n_per_split=16, size=112)
    base = dict(
        data=str(toy), epochs=1, batch_size=8, progress=False, threads=1, init=str(members[0])
    )
    with pytest.raises(SetupError, match="freeze-batchnorm"):
        train(TrainConfig(out=str(tmp_path / "a"), **base))  # type: ignore[arg-type]
    before = torch.load(members[0], weights_only=False)["state_dict"]
    path = train(
        TrainConfig(out=str(tmp_path / "b"), freeze_batchnorm=True, max_steps=2, lr=1e-3, **base)  # type: ignore[arg-type]
    )
    after = torch.load(path, weights_only=False)["state_dict"]
    stats = [k for k in before if k.endswith(("running_mean", "running_var"))]
    assert stats and all(torch.equal(before[k], after[k]) for k in stats)
    learnt = [k for k in before if k.endswith("weight") and not torch.equal(before[k], after[k])]
    assert learnt  # the weights did train


def test_files_that_are_not_an_exported_model_are_refused(tmp_path: Path) -> None:
    from models.commands import checkpoints

    detector = ROOT / "models" / "face_detector" / "pnet.onnx"
    with pytest.raises(RecoveryError, match="liveness export"):
        checkpoints_from_onnx(detector, tmp_path / "x")
    # Metadata naming another network than the file's weights: refused by shape.
    proto = onnx.load(str(BUNDLED))
    for prop in proto.metadata_props:
        if prop.key == "flexlive.evaluation":
            ev = json.loads(prop.value)
            for member in ev["model"]["overrides"]["members"]:
                member["overrides"]["widths"] = [16, 32, 64]
            prop.value = json.dumps(ev)
    other = tmp_path / "other.onnx"
    onnx.save(proto, str(other))
    with pytest.raises(RecoveryError, match="shape"):
        checkpoints_from_onnx(other, tmp_path / "y")
    assert not (tmp_path / "y").exists()  # nothing written
    for prop in proto.metadata_props:
        if prop.key == "flexlive.evaluation":
            prop.value = json.dumps({"model": {"name": "no_such_net", "overrides": {}}})
    onnx.save(proto, str(other))
    with pytest.raises(RecoveryError, match="cannot build.*no_such_net"):
        checkpoints_from_onnx(other, tmp_path / "y")
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"not a model")
    result = CliRunner().invoke(checkpoints, [str(garbage), "--out", str(tmp_path / "z")])
    assert result.exit_code == 1 and "not a readable ONNX file" in result.output


def test_a_batch_norm_kept_as_an_operator_is_copied(tmp_path: Path) -> None:
    """The cross-attention fusion normalises a sum, not a convolution: the exporter keeps
    that batch norm as an operator, and the rebuild copies its statistics as they are."""
    from models.export import to_onnx_bytes
    from models.nets.registry import create_model

    torch.manual_seed(0)
    net = create_model("flexlive_lite", fusion="cross_attention")
    norm = net.fusion.norm  # type: ignore[union-attr]
    with torch.no_grad():  # trained-looking statistics (identical ones share one initialiser)
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.normal_()
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_()
    net.eval()
    proto = onnx.load_from_string(to_onnx_bytes(net))
    onnx.helper.set_model_props(proto, {"flexlive.evaluation": json.dumps({"model": net.config()})})
    path = tmp_path / "xattn.onnx"
    onnx.save(proto, str(path))
    (ckpt_path,) = checkpoints_from_onnx(path, tmp_path / "rebuilt")
    rebuilt, ckpt = load_checkpoint(ckpt_path)
    assert ckpt[FOLDED_KEY]  # the other batch norms were folded into their convolutions
    for key in ("running_mean", "running_var", "weight", "bias"):
        torch.testing.assert_close(
            getattr(rebuilt.fusion.norm, key),
            getattr(norm, key),  # type: ignore[union-attr]
        )


def test_cli_writes_one_checkpoint_per_member(tmp_path: Path) -> None:
    from service.cli import main

    result = CliRunner().invoke(main, ["checkpoints", str(BUNDLED), "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    written = [line.split(": ", 1)[1] for line in result.output.splitlines()]
    assert written == [str(tmp_path / f"member-{k}" / "checkpoint.pt") for k in (0, 1)]
    assert all(Path(p).is_file() for p in written)
