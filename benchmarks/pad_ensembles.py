"""Do several trained models make different mistakes? Every ensemble of them, on dev.

Before a candidate joins (or replaces) the bundled model, the question that decides
whether training one more is worth it: do the models miss *different* samples? This
scores each ONNX model on a data root's **dev** split (one modality subset), then reports
every combination of them as a mean-logit ensemble (each file counts once; a file that is
itself an ensemble is one voice) at its own dev-EER threshold — EER, ACER (worst species),
the species and count behind it, bona fide rejected — and, for every pair of models, how
many of their errors at their own dev-EER thresholds they share (Jaccard overlap, 1 = the
same samples).

Only the dev split is read, by design: choosing among candidates on test would make the
test figure a choice. Measure the one chosen on test with ``liveness eval``.

    .venv/bin/python benchmarks/pad_ensembles.py --data data/synth/standard \\
        --model 2.8.0=models/default/flexlive-lite.onnx --model ft15=runs/ft15/net.onnx \\
        [--subset rgb+depth+ir] [--max-size 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.fusion import logit, sigmoid  # noqa: E402
from models.metrics import calibrate, eer, evaluate_at  # noqa: E402


def combine(scores: dict[str, np.ndarray], members: Sequence[str]) -> np.ndarray:
    """Bona fide score of the mean-logit ensemble of ``members`` (each file one voice)."""
    return np.asarray(sigmoid(np.mean([logit(scores[m]) for m in members], axis=0)))


def errors_at_eer(scores: np.ndarray, labels: np.ndarray, species: Sequence[str]) -> set[int]:
    """Indices misclassified at the scores' own dev-EER threshold (score ≥ t is live)."""
    t = calibrate(scores, labels, species)["eer"]
    live = scores >= t
    return set(np.flatnonzero(live != (np.asarray(labels) == 1)).tolist())


def jaccard(a: set[int], b: set[int]) -> float:
    """Shared share of two error sets (1.0 when both are empty: nothing to tell apart)."""
    return 1.0 if not a and not b else len(a & b) / len(a | b)


def ensemble_table(
    scores: dict[str, np.ndarray],
    labels: np.ndarray,
    species: Sequence[str],
    max_size: int | None = None,
) -> dict[str, Any]:
    """Every combination of the models (up to ``max_size``) at its dev-EER threshold, and
    the pairwise overlap of single models' errors."""
    names = list(scores)
    top = len(names) if max_size is None else min(max_size, len(names))
    rows = []
    for k in range(1, top + 1):
        for members in itertools.combinations(names, k):
            s = combine(scores, members)
            t = calibrate(s, labels, species)["eer"]
            at = evaluate_at(s, labels, species, t)
            rows.append(
                {
                    "members": list(members),
                    "threshold": float(t),
                    "eer": float(eer(s, labels)[0]),
                    "acer": float(at["acer"]),
                    "worst_species": at["apcer_worst_species"],
                    "worst_errors": int(at["apcer_worst"]["errors"]),
                    "worst_n": int(at["apcer_worst"]["total"]),
                    "bpcer_errors": int(at["bpcer"]["errors"]),
                    "bpcer_n": int(at["bpcer"]["total"]),
                }
            )
    errs = {n: errors_at_eer(scores[n], labels, species) for n in names}
    overlap = [
        {"a": a, "b": b, "errors_a": len(errs[a]), "errors_b": len(errs[b]),
         "shared": len(errs[a] & errs[b]), "jaccard": jaccard(errs[a], errs[b])}
        for a, b in itertools.combinations(names, 2)
    ]  # fmt: skip
    return {"ensembles": rows, "overlap": overlap}


def parse_model(arg: str) -> tuple[str, Path]:
    """``NAME=PATH`` or ``PATH`` (named by its file stem)."""
    name, sep, path = arg.partition("=")
    p = Path(path if sep else arg)
    return (name if sep else p.stem), p


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True, help="a synthetic or dataset root with a dev split")
    ap.add_argument("--protocol", default="combined")
    ap.add_argument(
        "--model", action="append", required=True, metavar="[NAME=]PATH",
        help="an exported ONNX model (repeat; at least one)",
    )  # fmt: skip
    ap.add_argument("--subset", default="rgb+depth+ir", help="modalities present, e.g. rgb+ir")
    ap.add_argument("--max-size", type=int, default=None, help="largest ensemble tried")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)

    from models.datasets.crops import CropCache
    from models.evaluate import read_spec, score_crops, session
    from models.spec import MODALITIES

    models = [parse_model(m) for m in args.model]
    names = [n for n, _ in models]
    if len(set(names)) != len(names):
        ap.error(f"two models share a name: {names}; name them NAME=PATH")
    missing = [str(p) for _, p in models if not p.is_file()]
    if missing:
        ap.error(f"no such model file: {', '.join(missing)}")
    subset = tuple(args.subset.split("+"))
    if not subset or any(m not in MODALITIES for m in subset):
        ap.error(f"--subset {args.subset!r}: modalities are {'+'.join(MODALITIES)}")
    try:
        dev = CropCache.from_protocol(args.data, args.protocol, "dev")
    except (FileNotFoundError, OSError, ValueError) as exc:
        ap.error(f"{args.data}: no dev split for protocol {args.protocol!r} ({exc})")
    if len(dev) == 0 or len(set(np.asarray(dev.labels).tolist())) < 2:
        ap.error(f"{args.data}: the dev split needs bona fide and attack samples")

    scores = {n: score_crops(session(p), read_spec(p), dev, subset) for n, p in models}
    res = ensemble_table(scores, np.asarray(dev.labels), dev.species, args.max_size)
    res.update(data=str(args.data), protocol=args.protocol, split="dev", subset=args.subset)
    for r in res["ensembles"]:
        print(
            f"{'+'.join(r['members']):<32} EER {100 * r['eer']:5.2f} %  "
            f"ACER {100 * r['acer']:5.2f} %  {r['worst_species']} "
            f"{r['worst_errors']}/{r['worst_n']}  bona fide {r['bpcer_errors']}/{r['bpcer_n']}"
        )
    for o in res["overlap"]:
        print(
            f"errors shared {o['a']} / {o['b']}: {o['shared']} of {o['errors_a']} and "
            f"{o['errors_b']} (Jaccard {o['jaccard']:.2f})"
        )
    if args.json:
        args.json.write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
