"""Trivial baselines vs the network: could global statistics (or the border alone) tell
bona fide from attack?

For every modality subset, two trivial classifiers on global per-modality statistics of the
preprocessed crops (mean, std, 5/25/50/75/95th percentiles, mean |horizontal and vertical
gradient| per channel; the same ``models.preprocess`` the network sees) are trained on the
train split, their threshold set at the dev EER, and ACER/EER/AUC measured on test — the
same protocol ``liveness eval`` applies to the network. numpy only.

- ``logreg``: L2 logistic regression (the model card's "trivial baseline").
- ``mlp``: one hidden layer of 64 ReLUs, class-balanced, step count chosen on dev loss.

``--region border`` is the background / frame-edge audit: the face region of the crop
convention is blanked before preprocessing and the statistics come from the outer ring only
(``--ring`` px at 112 px, default 16), so only background, shoulders and the edges of a
print, screen or mask can inform the classifiers.

    python benchmarks/pad_baselines.py --data data/synth/standard --protocol combined \
        [--region full|border] [--ring 16] [--json out.json]

Prints a Markdown table (EER / ACER / AUC per subset and baseline, then EER per attack
species); ``--json`` keeps ``baseline`` (the logistic regression, read by
``pad_model_card.py``) and adds every baseline under ``models``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _audit import (  # noqa: E402
    BASELINES,
    REGIONS,
    RING_PX,
    data_info,
    dev_eer_report,
    feature_blocks,
    md_table,
    pct,
    species_order,
    subset_features,
    train_and_score,
    write_json,
)

from models.datasets.crops import CropCache  # noqa: E402
from models.spec import all_subsets, subset_name  # noqa: E402

#: Subsets in table order: single modalities, pairs, all three.
AUDIT_SUBSETS = tuple(all_subsets())


def run(
    data: str | Path,
    protocol: str = "combined",
    region: str = "full",
    ring: int = RING_PX,
    baselines: tuple[str, ...] = BASELINES,
    subsets: tuple[tuple[str, ...], ...] = AUDIT_SUBSETS,
    seed: int = 0,
) -> dict[str, Any]:
    """Every baseline on every subset: ``{"models": {baseline: {subset: report}}, ...}``."""
    splits = {s: CropCache.from_protocol(data, protocol, s) for s in ("train", "dev", "test")}
    blocks = {s: feature_blocks(c, region, ring) for s, c in splits.items()}
    y = {s: c.labels.astype(np.float64) for s, c in splits.items()}
    models: dict[str, dict[str, Any]] = {b: {} for b in baselines}
    for subset in subsets:
        X = {s: subset_features(b, subset) for s, b in blocks.items()}
        for b in baselines:
            scores = train_and_score(b, X, y, seed=seed)
            models[b][subset_name(subset)] = dev_eer_report(
                scores["dev"], splits["dev"], scores["test"], splits["test"]
            )
    return {
        "data": str(data),
        **data_info(data),
        "protocol": protocol,
        "region": region,
        "ring": ring if region == "border" else None,
        "n": {s: len(c) for s, c in splits.items()},
        "models": models,
    }


def markdown(res: dict[str, Any]) -> str:
    """The summary table, then test EER per attack species for each baseline."""
    models = res["models"]
    names = list(models)
    subsets = list(next(iter(models.values())))
    head = ["subset"] + [f"{b} {k}" for b in names for k in ("EER", "ACER", "AUC")]
    rows = [
        [s]
        + [
            c
            for b in names
            for c in (
                pct(models[b][s]["eer"]),
                pct(models[b][s]["acer"]),
                f"{models[b][s]['auc']:.3f}",
            )
        ]
        for s in subsets
    ]
    where = "whole crop" if res["region"] == "full" else f"outer {res['ring']}-px ring only"
    out = [
        f"Trivial baselines, {where}, protocol `{res['protocol']}` "
        f"(train/dev/test {res['n']['train']}/{res['n']['dev']}/{res['n']['test']}); "
        "threshold at dev EER, test EER/ACER/AUC:",
        "",
        md_table(head, rows),
    ]
    for b in names:
        species = species_order(list(next(iter(models[b].values()))["eer_per_species"]))
        rows = [[s] + [pct(models[b][s]["eer_per_species"][sp]) for sp in species] for s in subsets]
        out += ["", f"`{b}`: test EER of bona fide vs each attack species:", ""]
        out.append(md_table(["subset", *species], rows))
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--protocol", default="intra")
    ap.add_argument("--region", choices=REGIONS, default="full")
    ap.add_argument(
        "--ring", type=int, default=RING_PX, help="border ring width, px of a 112-px crop"
    )
    ap.add_argument("--baseline", action="append", choices=BASELINES, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    t0 = time.perf_counter()
    res = run(a.data, a.protocol, a.region, a.ring, tuple(a.baseline or BASELINES), seed=a.seed)
    res["seconds"] = round(time.perf_counter() - t0, 1)
    if "logreg" in res["models"]:
        res["baseline"] = res["models"]["logreg"]  # the key pad_model_card.py reads
    print(markdown(res))
    write_json(a.json, res)


if __name__ == "__main__":
    main()
