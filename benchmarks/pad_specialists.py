"""The paper's question: one unified model vs specialists trained per modality subset.

Trains one specialist per sub-protocol (rgb, rgb+depth, rgb+ir, rgb+depth+ir: that subset
only, no modality dropout) with the same recipe as the unified model, exports each, and
evaluates it on its own subset; the unified model is evaluated on every subset. ACER at the
dev-EER threshold, side by side.

    python benchmarks/pad_specialists.py --data data/bench \
        --unified models/default/flexlive-lite.onnx --epochs 30 --out runs/specialists \
        --json runs/specialists/table.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.evaluate import evaluate  # noqa: E402
from models.spec import subset_name  # noqa: E402

PAPER_SUBSETS = ("rgb", "rgb+depth", "rgb+ir", "rgb+depth+ir")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--protocol", default="intra")
    ap.add_argument("--unified", required=True, help="The unified model's ONNX file.")
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--model", default="flexlive_lite", help="Registered network name.")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default="runs/specialists")
    ap.add_argument("--subsets", nargs="+", default=list(PAPER_SUBSETS))
    ap.add_argument(
        "--collect", action="store_true", help="Only evaluate specialists already exported."
    )
    ap.add_argument("--json", default=None)
    a = ap.parse_args()

    from models.export import export
    from models.train import TrainConfig, train

    unified = evaluate(a.unified, a.data, a.protocol, subsets=a.subsets)["subsets"]
    rows = {}
    for name in a.subsets:
        out = Path(a.out) / name.replace("+", "_")
        onnx_path = out / "model.onnx"
        if a.collect and not onnx_path.is_file():
            continue
        ckpt = (
            None
            if a.collect
            else train(
                TrainConfig(
                    model=a.model,
                    data=a.data,
                    protocol=a.protocol,
                    out=str(out),
                    epochs=a.epochs,
                    seed=a.seed,
                    subset=name,
                    threads=a.threads,
                    progress=False,
                )
            )
        )
        if ckpt is not None:
            export(
                ckpt, onnx_path, a.data, a.protocol, name=f"specialist-{name}", evaluate_test=False
            )
        spec_res = evaluate(onnx_path, a.data, a.protocol, subsets=[name])["subsets"]
        key = subset_name(name.split("+"))
        rows[key] = {
            "unified_acer": unified[key]["test"]["acer"],
            "unified_eer": unified[key]["test"]["eer"],
            "specialist_acer": spec_res[key]["test"]["acer"],
            "specialist_eer": spec_res[key]["test"]["eer"],
        }
        r = rows[key]
        print(
            f"{key:<14} unified ACER {r['unified_acer']:7.2%}  specialist ACER "
            f"{r['specialist_acer']:7.2%}",
            flush=True,
        )
    if a.json:
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        Path(a.json).write_text(
            json.dumps(
                {"protocol": a.protocol, "model": a.model, "epochs": a.epochs, "rows": rows},
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
