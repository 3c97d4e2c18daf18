"""Render models/default/MODEL_CARD.md from the model's metadata and measured reports.

Inputs are the JSON files written by ``liveness eval --json``, ``pad_baselines.py --json``,
``pad_specialists.py --json`` and ``pad_latency.py`` (stdout saved to a file); every
number in the card comes from one of them.

    python benchmarks/pad_model_card.py --model models/default/flexlive-lite.onnx \
        --eval runs/card/intra.json --eval runs/card/cross_profile.json ... \
        --baseline runs/card/baseline.json --specialists runs/card/specialists.json \
        --latency runs/card/latency.json --commands runs/card/commands.sh \
        --out models/default/MODEL_CARD.md
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.evaluate import PAPER_SUBSETS, read_spec  # noqa: E402


def pct(x: float) -> str:
    return f"{100 * x:.2f} %"


def eval_table(report: dict[str, Any]) -> str:
    rows = [
        "| subset | ACER | APCER (worst species) | BPCER | EER | AUC | BPCER20 "
        "| APCER @ BPCER 1 % [95 % CI] |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, r in report["subsets"].items():
        t = r["test"]
        ab = t["apcer_at_bpcer1"]
        rows.append(
            f"| {name} | {pct(t['acer'])} | {pct(t['apcer'])} ({t['apcer_species']}) "
            f"| {pct(t['bpcer'])} | {pct(t['eer'])} | {t['auc']:.4f} | {pct(t['bpcer20'])} "
            f"| {pct(ab['value'])} [{pct(ab['ci95'][0])}, {pct(ab['ci95'][1])}] |"
        )
    return "\n".join(rows)


def species_table(report: dict[str, Any]) -> str:
    names: list[str] = sorted(
        {
            s
            for r in report["subsets"].values()
            for s in r["test"]["operating_points"]["eer"]["apcer_per_species"]
        }
    )
    rows = ["| subset | " + " | ".join(names) + " |", "| --- |" + " --- |" * len(names)]
    for name, r in report["subsets"].items():
        per = r["test"]["operating_points"]["eer"]["apcer_per_species"]
        cells = [pct(per[s]["value"]) if s in per else "–" for s in names]
        rows.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def expert_lines(spec: Any) -> list[str]:
    """The model-section bullet for the RGB-expert fusion in the metadata (if any)."""
    fusion = spec.expert_fusion()
    if fusion is None:
        return []
    parts = []
    for name, f in fusion.subsets.items():
        ops = ", ".join(f"`{k}` = {v:.4f}" for k, v in f.operating_points.items())
        parts.append(
            f"{name}: score = σ({f.w_flexmodal:.4f}·logit(flexmodal) + "
            f"{f.w_expert:.4f}·logit(rgb_expert) + {f.bias:.4f}), fused thresholds {ops}"
        )
    return [
        f"- RGB-expert fusion (`flexlive.rgb_expert`, expert {fusion.expert}): "
        + "; ".join(parts)
        + ". Other subsets report the expert's score without fusing it. Fitted with "
        "`liveness expert calibrate` on " + fusion.calibration + "."
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--eval", action="append", default=[], help="liveness eval --json output")
    ap.add_argument("--baseline", default=None)
    ap.add_argument("--specialists", action="append", default=[], help="pad_specialists.py --json")
    ap.add_argument("--latency", default=None)
    ap.add_argument("--unseen", default=None, help="pad_unseen.py --json output")
    ap.add_argument("--commands", default=None, help="Shell file with the exact commands.")
    ap.add_argument("--notes", default=None, help="Markdown file appended verbatim.")
    ap.add_argument("--summary", default=None, help="Markdown file placed after the banner.")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()

    spec = read_spec(a.model)
    ev = spec.evaluation
    cfg = ev.get("train_config", {})
    reports = [json.loads(Path(p).read_text()) for p in a.eval]
    L: list[str] = [
        f"# {spec.name} {spec.version} — model card",
        "",
        "> **Trained on synthetic data only.** This model is a *starting point*: it lets the "
        "service run out of the box and shows the tooling end to end. It has never seen a real "
        "presentation attack or a real camera. Real deployments retrain with the same tooling "
        "(`liveness train` / `export` / `eval`, see [docs/training.md](../../docs/training.md)) on "
        "real data — CASIA-SURF, CeFA, WMCA or their own captures — and calibrate thresholds on "
        "a dev split from their own cameras.",
        "",
    ]
    if a.summary:
        L += [Path(a.summary).read_text().rstrip(), ""]
    L += [
        "## Model",
        "",
        f"- File: `models/default/flexlive-lite.onnx`, created {spec.created}.",
        f"- Network: `{spec.backbone}` (registry name), fusion `{spec.fusion}`; per-modality "
        "depthwise-separable CNN branches (112→14×14), mask-aware fusion at 14×14, a two-block "
        "trunk to 7×7, a bona fide logit head and a 14×14 pixel-map head."
        + (
            f" The file holds {ev['ensemble']} such networks trained by the same recipe from "
            "different seeds; its score is the sigmoid of their mean logit (`liveness export "
            "--checkpoint A --checkpoint B`)."
            if ev.get("ensemble")
            else ""
        ),
        f"- Inputs: `rgb` [N,3,{spec.input_size},{spec.input_size}], `depth` and `ir` "
        f"[N,1,{spec.input_size},{spec.input_size}], `present` [N,3]; outputs `score` "
        "(probability of bona fide) and `pixel_map`. Any non-empty modality subset is servable "
        "(missing modality = zeros after normalisation, `present` 0).",
        "- Operating points (calibrated on the dev split, rgb+depth+ir; accept as bona fide "
        "when score ≥ threshold): "
        + ", ".join(f"`{k}` = {v:.4f}" for k, v in spec.operating_points.items())
        + f"; default `{spec.default_operating_point}`, uncertain margin "
        f"{spec.uncertain_margin}. Every modality subset also has its own dev-calibrated "
        "thresholds (`flexlive.subset_operating_points`); the service applies the threshold "
        "of the subset it actually used.",
    ]
    L += expert_lines(spec)
    if a.latency:
        lat = json.loads(Path(a.latency).read_text())
        L.append(
            f"- Latency (model only, onnxruntime CPU, batch 1, {lat['threads']} threads, this "
            f"2-core machine): median {lat['median_ms']} ms, "
            f"p90 {lat['p90_ms']} ms over {lat['runs']} runs."
        )
    L += [
        "",
        "## Training",
        "",
        f"- Data: {spec.training_data.rstrip('.')}.",
        f"- Recipe: {cfg.get('epochs')} epochs, batch {cfg.get('batch_size')}, AdamW lr "
        f"{cfg.get('lr')}, weight decay {cfg.get('weight_decay')}, cosine schedule; loss BCE + "
        f"{cfg.get('pixel_weight')} × pixel-map BCE; modality dropout P(drop) rgb "
        f"{cfg.get('p_drop_rgb')}, depth {cfg.get('p_drop_depth')}, ir {cfg.get('p_drop_ir')}; "
        "raw-crop augmentation (joint geometry + flip, per-modality brightness/gamma, depth "
        "noise, cutout).",
        (
            f"- Seeds {', '.join(str(x) for x in cfg['seed'])}; training time "
            f"{ev.get('train_seconds', 0) / 60:.1f} min in all (sum over the networks) "
            "on this machine (2 CPU cores)."
            if isinstance(cfg.get("seed"), list)
            else f"- Seed {cfg.get('seed')}; training time "
            f"{ev.get('train_seconds', 0) / 60:.1f} min on this machine (2 CPU cores)."
        ),
        "",
    ]
    for rep in reports:
        L += [
            f"## Test results — protocol `{rep['protocol']}` ({rep['split']} split)",
            "",
            f"Model: `{rep['model']}` ({rep['model_name']} {rep['model_version']}).",
            "",
            "Thresholds calibrated per subset on the dev split, applied to test. ACER, APCER "
            "(worst attack species) and BPCER at the dev-EER threshold; BPCER20 = test BPCER "
            "at the dev APCER-5 % threshold; last column: worst-species test APCER at the dev "
            "BPCER-1 % threshold, Clopper–Pearson 95 % interval.",
            "",
            eval_table(rep),
            "",
            "APCER per attack species at the dev-EER threshold:",
            "",
            species_table(rep),
            "",
        ]
    if a.baseline:
        base = json.loads(Path(a.baseline).read_text())
        net = next((r for r in reports if r["protocol"] == base["protocol"]), None)
        L += [
            f"## Is the benchmark trivial? (protocol `{base['protocol']}`)",
            "",
            "A logistic regression on global per-modality statistics of the preprocessed crops "
            "(`benchmarks/pad_baselines.py`), same protocol and thresholds:",
            "",
            "| subset | baseline ACER | baseline EER | baseline AUC | network ACER | network EER |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        for name, b in base["baseline"].items():
            n = net["subsets"][name]["test"] if net and name in net["subsets"] else None
            L.append(
                f"| {name} | {pct(b['acer'])} | {pct(b['eer'])} | {b['auc']:.4f} | "
                + (f"{pct(n['acer'])} | {pct(n['eer'])} |" if n else "– | – |")
            )
        L.append("")
    if a.specialists:
        parts = [json.loads(Path(p).read_text()) for p in a.specialists]
        sp = {"protocol": parts[0]["protocol"], "rows": {}}
        sp_net = parts[0].get("model", "flexlive_lite_small")
        sp_epochs = parts[0].get("epochs")
        for part in parts:
            sp["rows"].update(part["rows"])
        order = list(PAPER_SUBSETS)
        sp["rows"] = dict(sorted(sp["rows"].items(), key=lambda kv: order.index(kv[0])))
        L += [
            f"## One unified model vs specialists (protocol `{sp['protocol']}`)",
            "",
            f"Unified: `{sp_net}` trained once"
            + (f" ({sp_epochs} epochs)" if sp_epochs else "")
            + " on rgb+depth+ir with modality dropout "
            "(the cross-profile model above). Specialists: the same network and recipe trained "
            "on one subset only, no dropout (`benchmarks/pad_specialists.py`). Test ACER / EER at "
            "the dev-EER threshold of each subset.",
            "",
            "| sub-protocol | unified ACER | specialist ACER | unified EER | specialist EER |",
            "| --- | --- | --- | --- | --- |",
        ]
        for name, r in sp["rows"].items():
            L.append(
                f"| {name} | {pct(r['unified_acer'])} | {pct(r['specialist_acer'])} | "
                f"{pct(r['unified_eer'])} | {pct(r['specialist_eer'])} |"
            )
        L.append("")
    if a.unseen:
        un_doc = json.loads(Path(a.unseen).read_text())
        un = un_doc["rows"]
        un_net = un_doc.get("model", "flexlive_lite_small")
        un_epochs = un_doc.get("epochs", 8)
        subsets = list(next(iter(un.values()))) if un else []
        L += [
            "## Unseen attacks (one model per held-out species)",
            "",
            f"Each row: `{un_net}` trained ({un_epochs} epochs, d435 profile) without that species "
            "(`benchmarks/pad_unseen.py`), "
            "tested on bona fide + the unseen species; test ACER / EER at dev thresholds.",
            "",
            "| held-out species | " + " | ".join(f"{s} ACER / EER" for s in subsets) + " |",
            "| --- |" + " --- |" * len(subsets),
        ]
        for proto, r in un.items():
            cells = [f"{pct(r[s]['acer'])} / {pct(r[s]['eer'])}" for s in subsets]
            L.append(f"| {proto.removeprefix('unseen_')} | " + " | ".join(cells) + " |")
        L.append("")
    if a.notes:
        L += [Path(a.notes).read_text().rstrip(), ""]
    if a.commands:
        L += [
            "## Reproduce",
            "",
            "```sh",
            Path(a.commands).read_text().rstrip(),
            "```",
            "",
        ]
    Path(a.out).write_text("\n".join(L))
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
