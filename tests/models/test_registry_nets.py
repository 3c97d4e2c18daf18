"""The paper's networks in the registry: central difference convolution, the model surface
(forward_features / forward_head), checkpoint configs and the paper-scale listing."""

from __future__ import annotations

from typing import Any

import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional

from models.nets import create_model, is_large, list_models  # noqa: E402
from models.nets.cdcn import CDConv2d  # noqa: E402
from models.spec import MODALITIES  # noqa: E402

torch.set_num_threads(1)

#: Narrow widths at 32 px for each registered name (every name must have an entry).
TINY: dict[str, dict[str, Any]] = {
    "cdcn": {"widths": [8, 12, 16, 8], "fused": 16, "trunk": 8, "input_size": 32},
    "cdcn_small": {"widths": [8, 12, 16, 8], "fused": 16, "trunk": 8, "input_size": 32},
    "resnet18": {"widths": [8, 8, 16, 16], "input_size": 32},
    "resnet50": {"widths": [4, 4, 8, 8], "layers": [1, 2, 1, 1], "input_size": 32},
    "vit_b16": {"dim": 32, "depth": 1, "heads": 2, "input_size": 32},
    "vit_tiny": {"dim": 24, "depth": 1, "heads": 2, "input_size": 32},
    "flexlive_lite": {"widths": [8, 16, 16], "fused": 16, "trunk": 16, "input_size": 32},
    "flexlive_lite_small": {"widths": [8, 8, 16], "fused": 16, "trunk": 16, "input_size": 32},
    "flexlive_lite_concat": {"widths": [8, 16, 16], "fused": 16, "trunk": 16, "input_size": 32},
    "efficientnet_lite0": {"input_size": 32, "pretrained": False},
    "ensemble": {
        "member": "flexlive_lite",
        "widths": [8, 16, 16],
        "fused": 16,
        "trunk": 16,
        "input_size": 32,
    },
    "flexlive_lite_crossattn": {
        "widths": [8, 16, 16],
        "fused": 16,
        "trunk": 16,
        "input_size": 32,
    },
}


def test_central_difference_is_the_weighted_sum_of_neighbour_differences() -> None:
    """out(p) = Σ_k w_k x(p+k) − θ Σ_k w_k x(p), computed here the slow way."""
    torch.manual_seed(0)
    conv = CDConv2d(2, 3, theta=0.7)
    x = torch.randn(1, 2, 6, 6)
    padded = F.pad(x, (1, 1, 1, 1))
    w = conv.weight
    slow = torch.zeros(1, 3, 6, 6)
    for i in range(3):
        for j in range(3):
            nb = padded[:, :, i : i + 6, j : j + 6]
            slow += torch.einsum("oc,nchw->nohw", w[:, :, i, j], nb - 0.7 * x)
    torch.testing.assert_close(conv(x), slow, atol=1e-5, rtol=1e-5)
    # θ = 0 is a vanilla convolution
    plain = CDConv2d(2, 3, theta=0.0)
    plain.weight.data.copy_(w.data)
    torch.testing.assert_close(plain(x), F.conv2d(x, w, padding=1))
    with pytest.raises(ValueError, match="theta"):
        CDConv2d(2, 3, theta=1.5)


def test_paper_scale_networks_are_registered_but_listed_on_request() -> None:
    default, everything = set(list_models()), set(list_models(include_large=True))
    assert {"cdcn", "resnet50", "vit_b16"} <= everything - default
    assert {"cdcn_small", "resnet18", "vit_tiny", "flexlive_lite"} <= default
    assert all(is_large(n) for n in everything - default)
    assert not any(is_large(n) for n in default)


@pytest.mark.parametrize("name", sorted(TINY))
def test_checkpoint_config_rebuilds_the_same_network(name: str) -> None:
    """config() stores the resolved builder arguments: they alone rebuild the network and
    its weights load, so a later change of a name's defaults cannot break a checkpoint."""
    net = create_model(name, fusion="cross_attention", **TINY[name]).eval()
    cfg = net.config()
    assert cfg["name"] == name and cfg["overrides"]["fusion"] == "cross_attention"
    assert cfg["overrides"].get("input_size", net.input_size) == net.input_size
    rebuilt = create_model(cfg["name"], **cfg["overrides"]).eval()
    rebuilt.load_state_dict(net.state_dict())  # raises on any shape or key mismatch
    S = net.input_size
    x = (torch.randn(2, 3, S, S), torch.randn(2, 1, S, S), torch.randn(2, 1, S, S))
    present = torch.tensor([[1.0, 0.0, 1.0], [1.0, 1.0, 1.0]])
    with torch.no_grad():
        torch.testing.assert_close(rebuilt(*x, present)["score"], net(*x, present)["score"])


@pytest.mark.parametrize("name", sorted(TINY))
def test_forward_is_features_then_head(name: str) -> None:
    net = create_model(name, **TINY[name]).eval()
    S = net.input_size
    x = (torch.randn(2, 3, S, S), torch.randn(2, 1, S, S), torch.randn(2, 1, S, S))
    present = torch.ones(2, len(MODALITIES))
    with torch.no_grad():
        fused = net.forward_features(*x, present)
        head = net.forward_head(fused)
        full = net(*x, present)
    assert fused.ndim == 4 and fused.shape[0] == 2
    assert head["pixel_map"].shape[-2:] == fused.shape[-2:]
    for key in ("logit", "score", "pixel_map", "embedding"):
        torch.testing.assert_close(head[key], full[key])


def test_absent_modality_is_ignored_by_the_paper_networks() -> None:
    """Garbage in an absent modality changes nothing (checked on the large ones, tiny)."""
    for name in ("cdcn", "resnet50", "vit_b16"):
        for fusion in ("concat", "se_concat", "cross_attention"):
            net = create_model(name, fusion=fusion, **TINY[name]).eval()
            S = net.input_size
            rgb = torch.randn(2, 3, S, S)
            present = torch.tensor([[1.0, 0.0, 0.0]] * 2)
            zeros = (torch.zeros(2, 1, S, S), torch.zeros(2, 1, S, S))
            noise = (torch.randn(2, 1, S, S) * 5, torch.randn(2, 1, S, S) * 5)
            with torch.no_grad():
                a = net(rgb, *zeros, present)["score"]
                b = net(rgb, *noise, present)["score"]
            torch.testing.assert_close(a, b, atol=1e-6, rtol=0)


def test_the_ensemble_is_a_registered_network_with_the_mean_logit() -> None:
    """create_model('ensemble', n=…) builds n freshly initialised members and scores their
    mean logit; a member cannot itself be an ensemble."""
    tiny = {k: v for k, v in TINY["ensemble"].items() if k != "member"}
    net = create_model("ensemble", n=3, fusion="concat", **tiny).eval()
    assert len(net.members) == 3 and net.model_name == "ensemble"
    assert net.fusion_name == "concat" and net.input_size == tiny["input_size"]
    S = net.input_size
    x = (torch.randn(2, 3, S, S), torch.randn(2, 1, S, S), torch.randn(2, 1, S, S))
    present = torch.ones(2, len(MODALITIES))
    with torch.no_grad():
        out = net(*x, present)
        logits = [m(*x, present)["logit"] for m in net.members]
    torch.testing.assert_close(out["logit"], torch.stack(logits).mean(dim=0))
    assert not torch.allclose(logits[0], logits[1])  # members are not copies
    with pytest.raises(ValueError, match="single networks"):
        create_model("ensemble", member="ensemble")
