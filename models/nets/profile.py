"""Size and cost of the registered networks: parameters, GFLOP per face, ms per face.

    python -m models.nets.profile [--include-large] [--ort] [--threads 1] [--name NAME ...]

FLOPs are counted by ``torch.utils.flop_counter`` on one face with all three modalities
(a multiply-add is two FLOPs; convolutions, matrix products and attention only, so
normalisation and activations are left out). ``--ort`` also exports each network (the
project's exporter) and times batch-1 onnxruntime CPU inference, the serving path.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

from models.nets import create_model, is_large, list_models
from models.spec import INPUT_NAMES


def inputs(size: int, n: int = 1) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(0)
    return (
        torch.randn(n, 3, size, size, generator=g),
        torch.randn(n, 1, size, size, generator=g),
        torch.randn(n, 1, size, size, generator=g),
        torch.ones(n, 3),
    )


def gflops(net: torch.nn.Module, size: int) -> float:
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        net(*inputs(size))
    return counter.get_total_flops() / 1e9


def ort_ms(net: Any, threads: int, repeats: int = 30) -> float:

    from models.export import to_onnx_bytes
    from models.ort_session import inference_session, session_options

    sess = inference_session(to_onnx_bytes(net), session_options(threads))
    feed = {k: v.numpy() for k, v in zip(INPUT_NAMES, inputs(net.input_size), strict=True)}
    for _ in range(3):
        sess.run(None, feed)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        sess.run(None, feed)
        times.append(1000 * (time.perf_counter() - t))
    return statistics.median(times)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--include-large", action="store_true", help="paper-scale networks too")
    ap.add_argument("--ort", action="store_true", help="time batch-1 onnxruntime inference")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--name", action="append", help="only these networks")
    ap.add_argument("--fusion", default=None, help="override every network's fusion")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    names = args.name or list_models(include_large=args.include_large)
    head = f"| network | fusion | input | parameters | GFLOP/face |{' ORT ms/face |' * args.ort}"
    print(head)
    print("|" + " --- |" * (head.count("|") - 1))
    for name in names:
        kw = {"fusion": args.fusion} if args.fusion else {}
        net = create_model(name, **kw).eval()
        params = sum(p.numel() for p in net.parameters())
        cells = [
            f"`{name}`" + (" (large)" if is_large(name) else ""),
            net.fusion_name,
            str(net.input_size),
            f"{params / 1e6:.2f} M",
            f"{gflops(net, net.input_size):.2f}",
        ]
        if args.ort:
            cells.append(f"{ort_ms(net, args.threads):.1f}")
        print("| " + " | ".join(cells) + " |", flush=True)
        del net


if __name__ == "__main__":
    main()
