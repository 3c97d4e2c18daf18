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

from _training import add_training_args, train_and_export  # noqa: E402

from models.evaluate import PAPER_SUBSETS, evaluate  # noqa: E402
from models.spec import subset_name  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_training_args(ap, epochs=30, out="runs/specialists")
    ap.add_argument("--protocol", default="intra")
    ap.add_argument("--unified", required=True, help="The unified model's ONNX file.")
    ap.add_argument("--subsets", nargs="+", default=list(PAPER_SUBSETS))
    ap.add_argument(
        "--collect", action="store_true", help="Only evaluate specialists already exported."
    )
    a = ap.parse_args()

    unified = evaluate(a.unified, a.data, a.protocol, subsets=a.subsets)["subsets"]
    rows = {}
    for name in a.subsets:
        out = Path(a.out) / name.replace("+", "_")
        onnx_path = out / "model.onnx"
        if a.collect:
            if not onnx_path.is_file():
                continue
        else:
            train_and_export(a, a.protocol, out, f"specialist-{name}", subset=name)
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
