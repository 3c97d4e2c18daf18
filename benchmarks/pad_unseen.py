"""Unseen-attack protocols: one model per held-out species, tested on that species.

For every ``DIR/protocols/unseen_<species>/`` the network is trained without the species
(train/dev lists exclude it) and evaluated on the test list (bona fide + the unseen
species) on the paper's four sub-protocols; thresholds from the dev split.

    python benchmarks/pad_unseen.py --data data/bench --epochs 10 --out runs/unseen \
        --json runs/unseen/table.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _training import add_training_args, train_and_export  # noqa: E402

from models.evaluate import PAPER_SUBSETS, evaluate  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_training_args(ap, epochs=10, out="runs/unseen")
    a = ap.parse_args()

    rows: dict[str, dict[str, dict[str, float]]] = {}
    for proto in sorted(p.name for p in (Path(a.data) / "protocols").glob("unseen_*")):
        model = train_and_export(a, proto, Path(a.out) / proto, f"unseen-{proto}")
        res = evaluate(model, a.data, proto, subsets=PAPER_SUBSETS)["subsets"]
        rows[proto] = {
            s: {k: r["test"][k] for k in ("acer", "apcer", "bpcer", "eer", "auc")}
            for s, r in res.items()
        }
        print(proto, {s: f"{v['acer']:.2%}" for s, v in rows[proto].items()}, flush=True)
    if a.json:
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        Path(a.json).write_text(
            json.dumps({"model": a.model, "epochs": a.epochs, "rows": rows}, indent=2)
        )


if __name__ == "__main__":
    main()
