"""Every registered network × every fusion, built tiny: ONNX parity through the project's
exporter (dynamic batch, metadata) and a few training steps that move the loss.

Paper-scale networks (``cdcn``, ``resnet50``, ``vit_b16``) are built here at a tiny size
through their builder overrides; their paper configuration is the same code with larger
numbers.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")

from models.export import check_parity, to_onnx_bytes, with_metadata  # noqa: E402
from models.nets import FUSIONS, create_model, list_models  # noqa: E402
from models.spec import (  # noqa: E402
    INPUT_NAMES,
    MODALITIES,
    SUBSET_ORDER,
    ModelSpec,
    default_normalisation,
    subset_name,
)
from models.train import loss_fn  # noqa: E402
from tests.models.test_registry_nets import TINY  # noqa: E402

torch.set_num_threads(1)

CASES = [(n, f) for n in list_models(include_large=True) for f in sorted(FUSIONS)]


def tiny(name: str, fusion: str) -> Any:
    torch.manual_seed(0)
    net = create_model(name, fusion=fusion, **TINY[name])
    assert net.fusion_name == fusion and net.input_size == TINY[name]["input_size"]
    return net


def feed(n: int, size: int, subset: tuple[str, ...], seed: int) -> dict[str, np.ndarray]:
    """Random normalised inputs; absent modalities zero and flagged 0, as served."""
    rng = np.random.default_rng(seed)
    out = {
        "rgb": rng.normal(size=(n, 3, size, size)),
        "depth": rng.normal(size=(n, 1, size, size)),
        "ir": rng.normal(size=(n, 1, size, size)),
    }
    for m in MODALITIES:
        if m not in subset:
            out[m] = np.zeros_like(out[m])
    out["present"] = np.tile([float(m in subset) for m in MODALITIES], (n, 1))
    return {k: v.astype(np.float32) for k, v in out.items()}


def test_every_registered_name_has_a_tiny_configuration() -> None:
    assert set(TINY) == set(list_models(include_large=True))
    assert {"cdcn", "resnet18", "resnet50", "vit_b16", "vit_tiny"} <= set(TINY)


@pytest.mark.parametrize(("name", "fusion"), CASES)
def test_onnx_export_matches_torch(name: str, fusion: str) -> None:
    net = tiny(name, fusion).eval()
    # non-trivial BatchNorm statistics, so parity covers the folded normalisation too
    g = torch.Generator().manual_seed(1)
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.rand(m.running_mean.shape, generator=g) * 0.4 - 0.2)
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
    S = net.input_size
    spec = ModelSpec(
        name=f"test-{name}",
        version="0.0.1",
        input_size=S,
        normalisation=default_normalisation(),
        operating_points={"eer": 0.5},
        backbone=net.model_name,
        fusion=net.fusion_name,
        training_data="none (untrained)",
        created="2026-01-01T00:00:00+00:00",
        has_pixel_map=True,
    )
    model = with_metadata(to_onnx_bytes(net), spec)
    meta = {p.key: p.value for p in model.metadata_props}
    back = ModelSpec.from_metadata(meta)
    assert (back.backbone, back.fusion, back.input_size) == (name, fusion, S)

    raw = model.SerializeToString()
    sess = ort.InferenceSession(raw, providers=["CPUExecutionProvider"])
    assert [i.name for i in sess.get_inputs()] == list(INPUT_NAMES)
    assert [o.name for o in sess.get_outputs()] == ["score", "pixel_map"]
    feeds = []
    for k, subset in enumerate(SUBSET_ORDER):
        for n in (1, 3):  # dynamic batch
            x = feed(n, S, subset, seed=10 * k + n)
            feeds.append(x)
            with torch.no_grad():
                ref = net(*(torch.from_numpy(x[i]) for i in INPUT_NAMES))
            score, pmap = sess.run(None, x)
            assert score.shape == (n,), subset_name(subset)
            np.testing.assert_allclose(score, ref["score"].numpy(), atol=1e-4)
            np.testing.assert_allclose(pmap, ref["pixel_map"].numpy(), atol=1e-4)
    # the scores depend on the input (a constant graph would pass the comparison above)
    all_scores = np.concatenate([sess.run(["score"], x)[0] for x in feeds])
    assert np.ptp(all_scores) > 1e-6
    # the exporter's own parity check agrees
    assert check_parity(net, raw, feeds[:4]) <= 1e-4


@pytest.mark.parametrize(("name", "fusion"), CASES)
def test_a_few_training_steps_move_the_loss(name: str, fusion: str) -> None:
    net = tiny(name, fusion).train()
    S = net.input_size
    x = feed(4, S, tuple(MODALITIES), seed=0)
    inputs = [torch.from_numpy(x[k]) for k in INPUT_NAMES]
    label = torch.tensor([1.0, 0.0, 1.0, 0.0])
    opt = torch.optim.AdamW(net.parameters(), lr=2e-3)
    losses = []
    for step in range(5):
        loss, _ = loss_fn(net(*inputs), label, pixel_weight=0.5)
        opt.zero_grad()
        loss.backward()
        if step == 0:
            # every parameter takes part: no branch, fusion or head is disconnected
            dead = [
                k for k, p in net.named_parameters() if p.grad is None or not p.grad.abs().sum()
            ]
            assert not dead, dead
        opt.step()
        losses.append(float(loss.detach()))
    assert all(np.isfinite(losses))
    # the same batch five times: fitting it must lower the loss
    assert losses[-1] < losses[0]
