"""Convert the published MiniFASNet state dicts into ONNX files (needs torch and onnx).

Each graph takes ``image``: float32 [N, 80, 80, 3], **BGR**, raw 0–255 values (the
publisher's input convention), transposes it to NCHW itself and returns ``logits`` and
``probs`` (softmax), both [N, 3]; class 1 is bona fide. The metadata carries the crop
scale, the class layout and the sha256 of the source state dict.

Usage::

    python -m models.rgb_expert.convert --weights-dir ../shared/third_party/minifasnet \
        --out models/rgb_expert
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import warnings
from pathlib import Path

import torch
from torch import nn

from models.rgb_expert import VARIANTS, Variant
from models.rgb_expert.net import INPUT_SIDE, REAL_CLASS, MiniFASNet

log = logging.getLogger(__name__)

#: State-dict keys and shapes of both networks (written by :func:`convert`).
ARCHITECTURE_FILE = "architecture.json"


class FastPReLU(nn.Module):
    """PReLU written as ``relu(x) − a · relu(−x)``: identical values, but ONNX Runtime runs
    these element-wise ops fast and keeps the convolutions in its blocked layout, where its
    ``PRelu`` kernel with a per-channel slope took 60 % of the network's time (profiled)."""

    slope: torch.Tensor

    def __init__(self, prelu: nn.PReLU) -> None:
        super().__init__()
        self.register_buffer("slope", prelu.weight.detach().clone().view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x) - self.slope * torch.relu(-x)


def with_fast_prelu(net: nn.Module) -> nn.Module:
    """A copy of ``net`` whose PReLU modules are :class:`FastPReLU`."""
    import copy

    out = copy.deepcopy(net)
    for module in list(out.modules()):
        for child_name, child in list(module.named_children()):
            if isinstance(child, nn.PReLU):
                setattr(module, child_name, FastPReLU(child))
    return out


class PixelWrapper(nn.Module):
    """NHWC BGR 0–255 → the network → (logits, softmax)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.net(image.permute(0, 3, 1, 2))
        return logits, torch.softmax(logits, dim=1)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load(weights_dir: Path, variant: Variant) -> MiniFASNet:
    state = torch.load(weights_dir / variant.source, map_location="cpu", weights_only=True)
    return MiniFASNet(state)


def export(net: MiniFASNet, variant: Variant, source_sha256: str, path: Path) -> None:
    path = Path(path)
    dummy = torch.full((2, INPUT_SIDE, INPUT_SIDE, 3), 128.0)
    with warnings.catch_warnings():
        # The TorchScript exporter gives a plain opset-17 graph without onnxscript.
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            PixelWrapper(with_fast_prelu(net)).eval(),
            (dummy,),
            str(path),
            input_names=["image"],
            output_names=["logits", "probs"],
            dynamic_axes={"image": {0: "n"}, "logits": {0: "n"}, "probs": {0: "n"}},
            opset_version=17,
            dynamo=False,
        )
    import onnx

    model = onnx.load(str(path))
    onnx.checker.check_model(model)
    model.producer_name = "flexlive models.rgb_expert.convert"
    meta = {
        "source": f"{variant.source} (Minivision Silent-Face-Anti-Spoofing, Apache-2.0)",
        "source_sha256": source_sha256,
        "crop_scale": str(variant.scale),
        "input_side": str(INPUT_SIDE),
        "channel_order": "BGR",
        "real_class": str(REAL_CLASS),
    }
    for key, value in meta.items():
        prop = model.metadata_props.add()
        prop.key, prop.value = key, value
    onnx.save(model, str(path))
    log.info("wrote %s (%d bytes)", path, path.stat().st_size)


def convert(weights_dir: Path, out_dir: Path) -> list[Path]:
    """Write both ONNX files and ``architecture.json`` (every state-dict key and shape, so
    tests can rebuild the architecture without the ``.pth`` files)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    shapes: dict[str, dict[str, list[int]]] = {}
    for variant in VARIANTS:
        source = weights_dir / variant.source
        if not source.is_file():
            raise FileNotFoundError(f"{source} not found (see models/rgb_expert/README.md)")
        path = out_dir / variant.onnx
        net = load(weights_dir, variant)
        export(net, variant, sha256(source), path)
        shapes[variant.onnx] = {k: list(v.shape) for k, v in net.state_dict().items()}
        paths.append(path)
    arch = out_dir / ARCHITECTURE_FILE
    arch.write_text(json.dumps(shapes, separators=(",", ":")) + "\n")
    paths.append(arch)
    return paths


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--weights-dir",
        type=Path,
        required=True,
        help="folder holding the two published .pth state dicts",
    )
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    convert(args.weights_dir, args.out)


if __name__ == "__main__":
    main()
