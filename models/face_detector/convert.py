"""Convert facenet-pytorch's MTCNN state dicts into three ONNX files (needs torch).

The networks are rebuilt here from their state-dict key names (``convN``/``preluN``/
``denseN`` in order; kernel sizes from the weight shapes; pooling as in Zhang et al. 2016)
and loaded strictly, so the wheel's Python code is never imported. Each ONNX graph takes
``image``: float32 [N, H, W, 3], **RGB**, raw 0–255 pixel values, and does MTCNN's own
normalisation ``(x - 127.5) / 128`` and the NHWC→NCHW transpose itself:

- ``pnet.onnx``: dynamic N/H/W → ``reg`` [N, 4, H', W'], ``prob`` [N, 2, H', W']
  (stride 2, 12×12 cells; channel 1 of ``prob`` is the face probability)
- ``rnet.onnx``: [N, 24, 24, 3] → ``reg`` [N, 4], ``prob`` [N, 2]
- ``onet.onnx``: [N, 48, 48, 3] → ``reg`` [N, 4], ``landmarks`` [N, 10] (5 x then 5 y,
  as fractions of the box), ``prob`` [N, 2]

Usage::

    pip download --no-deps facenet-pytorch==2.6.0 -d /tmp/fnp
    python -m models.face_detector.convert \
        --wheel /tmp/fnp/facenet_pytorch-2.6.0-py3-none-any.whl --out models/face_detector
"""

from __future__ import annotations

import argparse
import io
import logging
import re
import warnings
import zipfile
from collections import OrderedDict
from pathlib import Path

import torch
from torch import nn

log = logging.getLogger(__name__)

#: Max-pooling (kernel, stride) after the given conv layer — the only architecture facts
#: a state dict does not carry.
POOLS: dict[str, dict[str, tuple[int, int]]] = {
    "pnet": {"conv1": (2, 2)},
    "rnet": {"conv1": (3, 2), "conv2": (3, 2)},
    "onet": {"conv1": (3, 2), "conv2": (3, 2), "conv3": (2, 2)},
}
INPUT_SIDE = {"pnet": None, "rnet": 24, "onet": 48}
OUTPUTS = {"pnet": ["reg", "prob"], "rnet": ["reg", "prob"], "onet": ["reg", "landmarks", "prob"]}
#: Head name suffix → output name (the 2-way head is softmaxed: face probability).
_HEADS = {"_1": "prob", "_2": "reg", "_3": "landmarks"}


class MTCNNNet(nn.Module):
    """A P-, R- or O-Net rebuilt from its state dict."""

    def __init__(self, name: str, state: dict[str, torch.Tensor]) -> None:
        super().__init__()
        self.net_name = name
        self.body = nn.Sequential()
        self.heads = nn.ModuleDict()
        self._dense_body = False
        layers = OrderedDict.fromkeys(k.rsplit(".", 1)[0] for k in state)
        for layer in layers:
            w = state[f"{layer}.weight"]
            head = re.fullmatch(r"(conv|dense)\d+(_\d)", layer)
            if head:
                mod: nn.Module
                if w.ndim == 4:
                    mod = nn.Conv2d(w.shape[1], w.shape[0], kernel_size=w.shape[2])
                else:
                    mod = nn.Linear(w.shape[1], w.shape[0])
                self.heads[layer] = mod
            elif layer.startswith("conv"):
                self.body.add_module(layer, nn.Conv2d(w.shape[1], w.shape[0], w.shape[2]))
            elif layer.startswith("prelu"):
                self.body.add_module(layer, nn.PReLU(w.shape[0]))
                conv = "conv" + layer[len("prelu") :]
                if conv in POOLS[name]:
                    k, s = POOLS[name][conv]
                    pool = nn.MaxPool2d(k, s, ceil_mode=True)
                    self.body.add_module(f"pool{layer[len('prelu') :]}", pool)
            elif layer.startswith("dense"):
                if not self._dense_body:
                    # The converted Caffe weights expect a (W, H, C) flattening order.
                    self.body.add_module("flatten", _FlattenWHC())
                    self._dense_body = True
                self.body.add_module(layer, nn.Linear(w.shape[1], w.shape[0]))
            else:
                raise ValueError(f"{name}: unexpected layer '{layer}' in state dict")
        # Load into the (body, heads) layout strictly: every tensor must find its place.
        mapped = {}
        for k, v in state.items():
            layer = k.rsplit(".", 1)[0]
            prefix = "heads." if layer in self.heads else "body."
            mapped[prefix + k] = v
        self.load_state_dict(mapped, strict=True)
        self.eval()

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """``x``: normalised NCHW input, as facenet-pytorch feeds it."""
        feat = self.body(x)
        out: dict[str, torch.Tensor] = {}
        for layer, head in self.heads.items():
            kind = _HEADS[layer[-2:]]
            y = head(feat)
            out[kind] = torch.softmax(y, dim=1) if kind == "prob" else y
        return tuple(out[k] for k in OUTPUTS[self.net_name])


class _FlattenWHC(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.permute(0, 3, 2, 1).reshape(x.shape[0], -1)


class RawPixelWrapper(nn.Module):
    """NHWC 0–255 RGB → MTCNN normalisation → the network (what the ONNX files contain)."""

    def __init__(self, net: MTCNNNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, ...]:
        x = (image.permute(0, 3, 1, 2) - 127.5) * 0.0078125
        return self.net(x)


def load_state_dicts(wheel: Path) -> dict[str, dict[str, torch.Tensor]]:
    """The three state dicts from ``facenet_pytorch/data/*.pt`` inside the wheel."""
    out = {}
    with zipfile.ZipFile(wheel) as zf:
        for name in ("pnet", "rnet", "onet"):
            raw = zf.read(f"facenet_pytorch/data/{name}.pt")
            out[name] = torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True)
    return out


def build_nets(wheel: Path) -> dict[str, MTCNNNet]:
    return {name: MTCNNNet(name, sd) for name, sd in load_state_dicts(wheel).items()}


def export(net: MTCNNNet, path: Path) -> None:
    name = net.net_name
    side = INPUT_SIDE[name]
    dummy = torch.full((2, side or 64, side or 80, 3), 128.0)
    dynamic: dict[str, dict[int, str]] = {"image": {0: "n"}}
    if side is None:
        dynamic["image"].update({1: "h", 2: "w"})
        for o in OUTPUTS[name]:
            dynamic[o] = {0: "n", 2: "oh", 3: "ow"}
    else:
        for o in OUTPUTS[name]:
            dynamic[o] = {0: "n"}
    with warnings.catch_warnings():
        # The TorchScript exporter is deprecated but gives a plain, stable opset-17 graph
        # for these tiny CNNs without needing onnxscript.
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            RawPixelWrapper(net),
            (dummy,),
            str(path),
            input_names=["image"],
            output_names=OUTPUTS[name],
            dynamic_axes=dynamic,
            opset_version=17,
            dynamo=False,
        )
    import onnx

    model = onnx.load(str(path))
    onnx.checker.check_model(model)
    model.producer_name = "flexlive models.face_detector.convert"
    meta = model.metadata_props.add()
    meta.key = "source"
    meta.value = "facenet-pytorch 2.6.0 wheel (MIT), MTCNN (Zhang et al. 2016) weights"
    onnx.save(model, str(path))
    log.info("wrote %s (%d bytes)", path, path.stat().st_size)


def convert(wheel: Path, out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, net in build_nets(wheel).items():
        path = out_dir / f"{name}.onnx"
        export(net, path)
        paths.append(path)
    return paths


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--wheel", type=Path, required=True, help="facenet_pytorch-2.6.0 wheel")
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    convert(args.wheel, args.out)


if __name__ == "__main__":
    main()
