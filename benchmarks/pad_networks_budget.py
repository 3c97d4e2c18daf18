"""The registered networks compared at an equal CPU budget on the synthetic benchmark.

Each network trains on the ``combined`` protocol with the bundled model's recipe (same
augmentation, modality dropout, optimiser and schedule) for as many optimiser steps as
``--budget-s`` seconds of one CPU thread buy it — its step time is measured first on a
few real batches — and is then scored in torch on the dev and test splits with the
paper's four sub-protocols (RGB, RGB+D, RGB+IR, RGB+D+IR): test ACER (worst species) and
EER at the dev-EER threshold. The small per-epoch dev passes of training are not counted
in the budget.

    python benchmarks/pad_networks_budget.py --data data/synth/standard --budget-s 180 \
        --networks flexlive_lite vit_tiny resnet18 cdcn_small --json runs/budget.json

It answers "what does each architecture reach for the same CPU time", not "which is best
when trained to convergence" — the paper-scale networks are GPU models.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from models.datasets.crops import Augment, CropCache, ModalityDropout  # noqa: E402
from models.datasets.torch_dataset import PadDataset  # noqa: E402
from models.evaluate import PAPER_SUBSETS  # noqa: E402
from models.metrics import calibrate, pad_report  # noqa: E402
from models.nets import create_model  # noqa: E402
from models.spec import parse_subset  # noqa: E402
from models.train import (  # noqa: E402
    TrainConfig,
    base_spec,
    load_checkpoint,
    loss_fn,
    make_loader,
    predict,
    train,
)


def step_seconds(cfg: TrainConfig, steps: int = 4) -> float:
    """Median seconds of one optimiser step (forward, backward, update) on real batches."""
    torch.set_num_threads(cfg.threads)
    net = create_model(cfg.model, **cfg.model_overrides)
    crops = CropCache.from_protocol(cfg.data, cfg.protocol, "train")
    ds = PadDataset(crops, base_spec(net), Augment(), ModalityDropout(), None, cfg.seed)
    loader = make_loader(ds, cfg, shuffle=True)
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr)
    net.train()
    times: list[float] = []
    while len(times) < steps + 1:  # the first step warms up
        for b in loader:
            t = time.perf_counter()
            out = net(b["rgb"], b["depth"], b["ir"], b["present"])
            loss, _ = loss_fn(out, b["label"], cfg.pixel_weight)
            opt.zero_grad()
            loss.backward()
            opt.step()
            times.append(time.perf_counter() - t)
            if len(times) >= steps + 1:
                break
    return float(np.median(times[1:]))


def score(checkpoint: Path, data: str, protocol: str, subsets: tuple[str, ...]) -> dict[str, Any]:
    net, ckpt = load_checkpoint(checkpoint)
    cfg = TrainConfig(**{**ckpt["config"], "progress": False})
    spec = base_spec(net, cfg.depth_range_mm)
    dev = CropCache.from_protocol(data, protocol, "dev")
    test = CropCache.from_protocol(data, protocol, "test")
    out: dict[str, Any] = {}
    for name in subsets:
        keep = parse_subset(name)
        ds_dev = PadDataset(dev, spec, subset=keep)
        ds_test = PadDataset(test, spec, subset=keep)
        s_dev = predict(net, make_loader(ds_dev, cfg, shuffle=False)).astype(np.float64)
        s_test = predict(net, make_loader(ds_test, cfg, shuffle=False)).astype(np.float64)
        ops = calibrate(s_dev, dev.labels, dev.species)
        rep = pad_report(s_test, test.labels, test.species, ops)
        out[name] = {
            "acer": round(float(rep["acer"]) * 100, 2),
            "eer": round(float(rep["eer"]) * 100, 2),
        }
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--protocol", default="combined")
    ap.add_argument(
        "--networks", nargs="+", default=["flexlive_lite", "vit_tiny", "resnet18", "cdcn_small"]
    )
    ap.add_argument("--budget-s", type=float, default=180.0, help="training CPU seconds each")
    ap.add_argument("--out", type=Path, default=Path("runs/budget"))
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    rows = []
    for name in args.networks:
        cfg = TrainConfig(
            data=args.data, protocol=args.protocol, model=name, epochs=1000, threads=1,
            progress=False, out=str(args.out / name),
        )  # fmt: skip
        per_step = step_seconds(cfg)
        steps = max(1, int(args.budget_s / per_step))
        cfg.max_steps = steps
        t = time.process_time()
        checkpoint = train(cfg)
        cpu = time.process_time() - t
        result = score(checkpoint, args.data, args.protocol, PAPER_SUBSETS)
        row = {
            "network": name,
            "params_m": round(sum(p.numel() for p in create_model(name).parameters()) / 1e6, 2),
            "s_per_step": round(per_step, 3),
            "steps": steps,
            "samples_seen": steps * cfg.batch_size,
            "train_cpu_s": round(cpu, 1),
            "subsets": result,
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
    lines = [
        f"budget: {args.budget_s:.0f} s of one CPU thread per network (step time measured "
        f"first), protocol {args.protocol}, test ACER % (worst species) / EER % at the dev-EER "
        "threshold",
        "",
        "| network | params (M) | s/step | steps | samples seen | "
        + " | ".join(PAPER_SUBSETS)
        + " |",
        "| --- | --- | --- | --- | --- | " + " | ".join("---" for _ in PAPER_SUBSETS) + " |",
    ]
    for r in rows:
        cells = " | ".join(
            f"{r['subsets'][s]['acer']:.1f} / {r['subsets'][s]['eer']:.1f}" for s in PAPER_SUBSETS
        )
        lines.append(
            f"| {r['network']} | {r['params_m']} | {r['s_per_step']} | {r['steps']} | "
            f"{r['samples_seen']} | {cells} |"
        )
    print("\n".join(lines))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"budget_s": args.budget_s, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
