"""One unified flexible-modal network against one specialist per modality subset.

The paper's question: does one network trained on every modality subset (modality dropout)
serve each subset as well as a network trained for that subset alone? Here, at the bundled
width (``flexlive_lite`` with its default widths and fusion) and on the synthetic
benchmark's ``combined`` protocol:

- **unified**: trained once with the bundled model's recipe (modality dropout), scored on
  each of the paper's four sub-protocols (RGB, RGB+D, RGB+IR, RGB+D+IR);
- **specialist**: one network per sub-protocol, trained with only that subset present
  (``liveness train --subset``, no dropout), scored on its own subset.

Every network gets the same number of optimiser steps at the same batch size (the same
samples seen), so the four specialists together cost four times the unified network.
Networks train in ``--processes`` worker processes of one thread each. Scores: test ACER
(worst attack species) and EER at the dev-EER threshold, as ``liveness eval`` computes them.

    python benchmarks/pad_unified_vs_specialists.py --data data/synth/standard --steps 600 \
        --json runs/unified_vs_specialists.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from models.evaluate import PAPER_SUBSETS  # noqa: E402


def _train_and_score(job: dict[str, Any]) -> dict[str, Any]:
    """Train one network (a worker process, one thread) and score it."""
    import torch
    from pad_networks_budget import score

    from models.train import TrainConfig, train

    torch.set_num_threads(1)
    cfg = TrainConfig(
        data=job["data"], protocol=job["protocol"], model=job["network"], epochs=1000,
        max_steps=job["steps"], threads=1, progress=False, seed=job["seed"],
        subset=job["subset"], out=job["out"],
    )  # fmt: skip
    t = time.process_time()
    checkpoint = train(cfg)
    cpu = time.process_time() - t
    subsets = PAPER_SUBSETS if job["subset"] is None else (job["subset"],)
    return {
        "model": job["name"],
        "subset_trained": job["subset"] or "all (modality dropout)",
        "steps": job["steps"],
        "train_cpu_s": round(cpu, 1),
        "subsets": score(checkpoint, job["data"], job["protocol"], subsets),
    }


def table(rows: list[dict[str, Any]]) -> str:
    unified = next(r for r in rows if r["model"] == "unified")
    special = {r["subset_trained"]: r for r in rows if r["model"] != "unified"}
    lines = [
        "| subset | unified ACER / EER % | specialist ACER / EER % |",
        "| --- | --- | --- |",
    ]
    for s in PAPER_SUBSETS:
        u = unified["subsets"][s]
        cell = "–"
        if s in special:
            p = special[s]["subsets"][s]
            cell = f"{p['acer']:.1f} / {p['eer']:.1f}"
        lines.append(f"| {s} | {u['acer']:.1f} / {u['eer']:.1f} | {cell} |")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True, help="a benchmark from liveness synth benchmark")
    ap.add_argument("--protocol", default="combined")
    ap.add_argument("--network", default="flexlive_lite", help="registered network name")
    ap.add_argument("--steps", type=int, default=600, help="optimiser steps per network")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--subsets", nargs="+", default=list(PAPER_SUBSETS))
    ap.add_argument("--processes", type=int, default=2, help="networks trained at once")
    ap.add_argument("--out", type=Path, default=Path("runs/unified_vs_specialists"))
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    unknown = [s for s in args.subsets if s not in PAPER_SUBSETS]
    if unknown:
        ap.error(f"--subsets: {unknown} not among {list(PAPER_SUBSETS)}")
    base = {
        "data": args.data, "protocol": args.protocol, "network": args.network,
        "steps": args.steps, "seed": args.seed,
    }  # fmt: skip
    jobs = [{**base, "name": "unified", "subset": None, "out": str(args.out / "unified")}]
    jobs += [
        {**base, "name": f"specialist {s}", "subset": s, "out": str(args.out / s)}
        for s in args.subsets
    ]
    t0 = time.perf_counter()
    with ProcessPoolExecutor(max_workers=max(1, args.processes)) as pool:
        rows = list(pool.map(_train_and_score, jobs))
    for r in rows:
        print(json.dumps(r), flush=True)
    print(
        f"\n{args.network}, {args.steps} steps each (seed {args.seed}), protocol "
        f"{args.protocol}; test ACER (worst species) / EER at the dev-EER threshold; "
        f"{time.perf_counter() - t0:.0f} s wall\n"
    )
    print(table(rows))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps({"network": args.network, "steps": args.steps, "rows": rows}, indent=1)
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
