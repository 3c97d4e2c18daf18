"""Every registered network: forward on each modality subset, mask-awareness, ONNX parity."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")

from models.export import to_onnx_bytes  # noqa: E402
from models.nets import FUSIONS, create_model, list_models, register_model  # noqa: E402
from models.spec import INPUT_NAMES, MODALITIES, all_subsets, subset_name  # noqa: E402

torch.set_num_threads(1)
SUBSETS = all_subsets()


def _inputs(n: int, size: int, subset: tuple[str, ...], seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = {
        "rgb": torch.randn(n, 3, size, size, generator=g),
        "depth": torch.randn(n, 1, size, size, generator=g),
        "ir": torch.randn(n, 1, size, size, generator=g),
    }
    present = torch.tensor([[float(m in subset) for m in MODALITIES]] * n)
    for m in MODALITIES:
        if m not in subset:
            x[m] = torch.zeros_like(x[m])
    x["present"] = present
    return x


def test_registry_lists_the_lite_family_and_every_fusion_is_used() -> None:
    names = list_models()
    assert "flexlive_lite" in names
    used = {create_model(n).fusion_name for n in names}
    assert set(FUSIONS) <= used


def test_registry_rejects_duplicates_and_unknown_names() -> None:
    with pytest.raises(ValueError, match="already registered"):

        @register_model
        def flexlive_lite() -> None:  # noqa: F811
            raise AssertionError

    with pytest.raises(KeyError, match="unknown model"):
        create_model("no_such_net")


def test_overrides_reach_the_builder() -> None:
    net = create_model("flexlive_lite", fusion="concat")
    assert net.fusion_name == "concat"
    assert net.config()["name"] == "flexlive_lite"
    assert net.config()["overrides"]["fusion"] == "concat"


def test_checkpoint_config_fixes_the_architecture() -> None:
    # A checkpoint rebuilds its network from config(): the resolved widths are stored, so
    # the stored arguments alone give the same network even where the registered name's
    # defaults differ (flexlive_lite's defaults were widened once already).
    small = create_model("flexlive_lite_small")
    cfg = small.config()
    assert cfg["overrides"]["widths"] == [16, 32, 64]
    rebuilt = create_model("flexlive_lite", **cfg["overrides"])
    assert rebuilt.state_dict().keys() == small.state_dict().keys()
    assert all(rebuilt.state_dict()[k].shape == v.shape for k, v in small.state_dict().items())


@pytest.mark.parametrize("name", list_models())
def test_forward_every_subset(name: str) -> None:
    net = create_model(name).eval()
    S = net.input_size
    for subset in SUBSETS:
        with torch.no_grad():
            out = net(*_inputs(2, S, subset).values())
        assert out["score"].shape == (2,)
        assert out["logit"].shape == (2,)
        assert out["pixel_map"].ndim == 4 and out["pixel_map"].shape[:2] == (2, 1)
        for v in out.values():
            assert torch.isfinite(v).all(), subset_name(subset)
        assert ((out["score"] >= 0) & (out["score"] <= 1)).all()


@pytest.mark.parametrize("name", list_models())
def test_absent_modalities_do_not_leak(name: str) -> None:
    """Whatever sits in an absent modality's tensor, present=0 makes it irrelevant."""
    net = create_model(name).eval()
    S = net.input_size
    x = _inputs(2, S, ("rgb",))
    noisy = dict(x)
    noisy["depth"] = torch.randn_like(x["depth"]) * 5
    noisy["ir"] = torch.randn_like(x["ir"]) * 5
    with torch.no_grad():
        a, b = net(*x.values())["score"], net(*noisy.values())["score"]
    assert torch.allclose(a, b, atol=1e-6)


@pytest.mark.parametrize("name", list_models())
def test_onnx_round_trip_every_subset(name: str) -> None:
    torch.manual_seed(0)
    net = create_model(name).eval()
    # non-trivial BN statistics so parity covers them (pretrained layers have their own:
    # random ones under ImageNet weights would blow activations up)
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d) and bool((m.running_var == 1).all()):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
    sess = ort.InferenceSession(to_onnx_bytes(net), providers=["CPUExecutionProvider"])
    assert [i.name for i in sess.get_inputs()] == list(INPUT_NAMES)
    assert [o.name for o in sess.get_outputs()] == ["score", "pixel_map"]
    for k, subset in enumerate(SUBSETS):
        n = 1 + k % 3  # dynamic batch
        x = _inputs(n, net.input_size, subset, seed=k)
        with torch.no_grad():
            ref = net(*x.values())
        score, pmap = sess.run(None, {key: v.numpy() for key, v in x.items()})
        np.testing.assert_allclose(score, ref["score"].numpy(), atol=1e-5)
        np.testing.assert_allclose(pmap, ref["pixel_map"].numpy(), atol=1e-5)
