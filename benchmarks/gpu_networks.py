"""Throughput of every registered network in torch on a GPU (or the CPU, for a smoke run).

For each network from the registry (``models.nets.list_models()``), all three modalities
present, it measures samples/s and ms per batch at batch 1/16/128/512 in fp32 and bf16
(autocast), and at batch 1 replayed as a CUDA graph (GPU only) — beside the reference
points measured on an NVIDIA H200 (``../shared/ENVIRONMENT.md``):

    python benchmarks/gpu_networks.py                      # every network, cuda if present
    python benchmarks/gpu_networks.py --networks resnet50 --batches 1 512 --json out.json
    python benchmarks/gpu_networks.py --device cpu --networks flexlive_lite --batches 1 2 \
        --iters 2                                          # smoke run (the test suite's)

ONNX Runtime on the CPU is measured by ``benchmarks/pad_latency.py``; the GPU path of the
service (onnxruntime-gpu) is the user's machine's to measure.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from models.nets import create_model, list_models  # noqa: E402

#: samples/s measured on an NVIDIA H200 with torch, bf16 (ENVIRONMENT.md), by the registry
#: name of the network family they describe.
REFERENCE_H200_BF16 = {
    "resnet50": "≈ 5,300 samples/s at batch 512 (ResNet50×3@224); 2.8 ms at batch 1, CUDA graph",
    "cdcn": "≈ 510 samples/s (CDCN×3@256)",
    "vit_b16": "≈ 2,350 samples/s (ViT-B/16×3@224)",
}


def _inputs(net: Any, batch: int, device: torch.device) -> tuple[torch.Tensor, ...]:
    s = int(net.input_size)
    g = torch.Generator().manual_seed(0)
    rgb = torch.rand(batch, 3, s, s, generator=g)
    depth = torch.rand(batch, 1, s, s, generator=g)
    ir = torch.rand(batch, 1, s, s, generator=g)
    present = torch.ones(batch, 3)
    return tuple(t.to(device) for t in (rgb, depth, ir, present))


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(
    name: str, device: torch.device, batches: list[int], dtypes: list[str], iters: int
) -> list[dict[str, Any]]:
    net = create_model(name).to(device).eval()
    rows: list[dict[str, Any]] = []
    for dtype in dtypes:
        autocast = dtype == "bf16"
        for batch in batches:
            x = _inputs(net, batch, device)
            try:
                with (
                    torch.inference_mode(),
                    torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast),
                ):
                    for _ in range(max(2, iters // 5)):
                        net(*x)
                    _sync(device)
                    t = time.perf_counter()
                    for _ in range(iters):
                        out = net(*x)
                    _sync(device)
                    elapsed = time.perf_counter() - t
            except torch.OutOfMemoryError:
                rows.append({"network": name, "dtype": dtype, "batch": batch, "error": "OOM"})
                continue
            assert torch.isfinite(out["score"].float()).all(), f"{name}: non-finite scores"
            rows.append(
                {
                    "network": name,
                    "dtype": dtype,
                    "batch": batch,
                    "ms_per_batch": round(elapsed / iters * 1e3, 3),
                    "samples_per_s": round(batch * iters / elapsed, 1),
                }
            )
    if device.type == "cuda":
        rows.append(_cuda_graph(net, name, device, iters))
    return rows


def _cuda_graph(net: Any, name: str, device: torch.device, iters: int) -> dict[str, Any]:
    """Batch 1, bf16, the forward captured once as a CUDA graph and replayed."""
    x = _inputs(net, 1, device)
    stream = torch.cuda.Stream()
    with torch.inference_mode(), torch.autocast("cuda", dtype=torch.bfloat16):
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            for _ in range(3):
                net(*x)
        torch.cuda.current_stream().wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            net(*x)
        for _ in range(3):
            graph.replay()
        _sync(device)
        t = time.perf_counter()
        for _ in range(iters):
            graph.replay()
        _sync(device)
        elapsed = time.perf_counter() - t
    return {
        "network": name,
        "dtype": "bf16+cuda_graph",
        "batch": 1,
        "ms_per_batch": round(elapsed / iters * 1e3, 3),
        "samples_per_s": round(iters / elapsed, 1),
    }


def table(rows: list[dict[str, Any]], device: str) -> str:
    lines = [
        f"device: {device}",
        "| network | dtype | batch | ms/batch | samples/s | reference (H200, bf16) |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        ref = next((v for k, v in REFERENCE_H200_BF16.items() if r["network"].startswith(k)), "")
        if "error" in r:
            lines.append(
                f"| {r['network']} | {r['dtype']} | {r['batch']} | {r['error']} | | {ref} |"
            )
            continue
        lines.append(
            f"| {r['network']} | {r['dtype']} | {r['batch']} | {r['ms_per_batch']:.3f} "
            f"| {r['samples_per_s']:.1f} | {ref} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--networks", nargs="+", default=None, help="default: every registered one")
    ap.add_argument("--batches", nargs="+", type=int, default=[1, 16, 128, 512])
    ap.add_argument("--dtypes", nargs="+", choices=["fp32", "bf16"], default=["fp32", "bf16"])
    ap.add_argument("--iters", type=int, default=50)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--json", type=Path, help="also write the rows here")
    args = ap.parse_args(argv)
    # The paper-scale networks are what a GPU is for: they are measured too.
    registered = list_models(include_large=True)
    names = args.networks or registered
    unknown = sorted(set(names) - set(registered))
    if unknown:
        ap.error(f"unknown network(s) {unknown}; registered: {registered}")
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        ap.error("--device cuda but torch sees no GPU")
    label = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    rows: list[dict[str, Any]] = []
    for name in names:
        rows += measure(name, device, args.batches, args.dtypes, args.iters)
    print(table(rows, f"{label}, torch {torch.__version__}"))
    if args.json:
        args.json.write_text(json.dumps({"device": label, "rows": rows}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
