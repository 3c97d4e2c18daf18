"""How many RGB-only attacks can ANY fusion of the two components decide ``spoof``?

An upper bound, with hindsight, behind docs/rgb-expert.md: on the test rows of
``liveness expert eval`` (real people and prints/replays of their photographs, one
modality subset), for each weighting of the two components' logits
(``(1 − a) · logit(flexmodal) + a · logit(rgb_expert)``), the thresholds are chosen **on
the test rows themselves** so as to be as kind to the target as possible:

- the spoof bound just below the lowest-scoring real person (no person decided spoof);
- the live threshold at the score that keeps the required share of real people live.

The attacks decided spoof below that bound, out of **all** attacks (an attack the service
answers with a capture reason — face too small, no face, pose, light — never reaches a
score and cannot be spoof), is a ceiling no calibration, weighting or rule on these two
scores can pass; the attacks at or above the live threshold are those such a policy
would let in. No veto, margin or out-of-distribution rule is applied: each of those can
only lower the count of spoof decisions.

    .venv/bin/liveness expert eval --synth-per-cell 60 --networks v2 --rows rows.json
    .venv/bin/python benchmarks/rgb_fusion_ceiling.py --rows rows.json \\
        [--subset rgb] [--min-live 0.95] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.fusion import logit  # noqa: E402
from service.expert_eval import Row, load_rows  # noqa: E402

#: Expert weights tried (the flexible-modal model gets 1 − a).
WEIGHTS = tuple(round(a, 2) for a in np.linspace(0.0, 1.0, 21))


#: Reasons that come from the scores, not from the capture: not a limit on any policy.
SCORE_REASONS = frozenset({"out_of_distribution"})


def scored(r: Row) -> bool:
    """Whether the service reaches a score for this face: both components present and no
    capture or quality reason (``out_of_distribution`` is a rule on the scores, so a face
    with only that reason counts as scored)."""
    return r.flexmodal is not None and r.rgb_expert is not None and set(r.reasons) <= SCORE_REASONS


def ceiling(
    people: np.ndarray, attacks: np.ndarray, n_attacks: int, n_people: int, min_live: float
) -> dict[str, Any]:
    """Spoof decisions and live attacks at hindsight thresholds.

    ``people`` and ``attacks`` are the fused scores of the faces that reached a score;
    ``n_people`` and ``n_attacks`` count every presentation (scored or not)."""
    need_live = math.ceil(min_live * n_people)
    spoof_bound = float(people.min()) if people.size else math.inf
    spoof = int((attacks < spoof_bound).sum())
    if people.size >= need_live and need_live > 0:
        live_threshold: float | None = float(np.sort(people)[::-1][need_live - 1])
        live = int((attacks >= live_threshold).sum())
    else:
        live_threshold, live = None, None  # the share of live people is out of reach
    return {
        "spoof": spoof,
        "spoof_share": spoof / n_attacks if n_attacks else 0.0,
        "live_attacks": live,
        "people_live_needed": need_live,
        "spoof_bound": spoof_bound,
        "live_threshold": live_threshold,
    }


def analyse(rows: list[Row], subset: str, min_live: float) -> dict[str, Any]:
    people = [r for r in rows if r.source == "real" and r.subset == subset]
    attacks = [r for r in rows if r.source == "real_attack" and r.subset == subset]
    if not people or not attacks:
        raise SystemExit(f"no real people or no attacks for subset {subset!r} in these rows")
    sp = [r for r in people if scored(r)]
    sa = [r for r in attacks if scored(r)]
    out: dict[str, Any] = {
        "subset": subset,
        "people": len(people),
        "attacks": len(attacks),
        "attacks_scored": len(sa),
        "min_live": min_live,
        "weights": [],
    }
    # the components' logits as the fusion takes them (models.fusion: same clipping)
    people_f, people_e = (logit([getattr(r, c) for r in sp]) for c in ("flexmodal", "rgb_expert"))
    attack_f, attack_e = (logit([getattr(r, c) for r in sa]) for c in ("flexmodal", "rgb_expert"))
    for a in WEIGHTS:
        res = ceiling(
            (1.0 - a) * people_f + a * people_e,
            (1.0 - a) * attack_f + a * attack_e,
            len(attacks),
            len(people),
            min_live,
        )
        out["weights"].append({"expert_weight": a, **res})
    best = max(out["weights"], key=lambda w: (w["spoof"], -(w["live_attacks"] or 0)))
    out["best"] = best
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=Path, required=True, help="liveness expert eval --rows cache")
    ap.add_argument("--subset", default="rgb")
    ap.add_argument("--min-live", type=float, default=0.95, help="share of real people live")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    if not args.rows.is_file():
        ap.error(f"--rows {args.rows}: no such file (write it with liveness expert eval --rows)")
    report = analyse(load_rows(args.rows), args.subset, args.min_live)
    print(
        f"subset {report['subset']}: {report['people']} real people, {report['attacks']} "
        f"attacks, {report['attacks_scored']} of them reach a score "
        f"(at most {report['attacks_scored'] / report['attacks']:.0%} can be spoof)\n"
    )
    print(
        "| expert weight | attacks spoof, no person spoof | attacks live, "
        f"{report['min_live']:.0%} of people live |"
    )
    print("| --- | --- | --- |")
    for w in report["weights"]:
        live = "out of reach" if w["live_attacks"] is None else str(w["live_attacks"])
        print(f"| {w['expert_weight']:.2f} | {w['spoof']} ({w['spoof_share']:.0%}) | {live} |")
    b = report["best"]
    print(
        f"\nbest: expert weight {b['expert_weight']:.2f}, {b['spoof']} of "
        f"{report['attacks']} attacks spoof ({b['spoof_share']:.1%}) with thresholds chosen "
        "on these rows"
    )
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
