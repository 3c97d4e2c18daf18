"""Evaluating an exported ONNX model on a protocol (``liveness eval``), the serving way.

Crops go through :func:`models.preprocess.preprocess_batch` and onnxruntime, exactly as
the service feeds the model, on every non-empty modality subset (the paper's four first:
rgb, rgb+depth, rgb+ir, rgb+depth+ir, then depth, ir, depth+ir). For each subset the
operating points are calibrated on the dev split and applied to the test split
(:mod:`models.metrics`). No torch here.

On request the test scores are also drawn (matplotlib's Agg canvas, headless): per
subset a DET and a ROC curve (pooled attacks and each attack species) and a score
histogram (bona fide and each species, with the dev-EER threshold), plus one DET and one
ROC with every subset (:func:`write_plots`). Several models evaluate side by side
(:func:`format_comparison`, the paper's table layout).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort

from models.datasets.crops import CropCache, restrict
from models.metrics import calibrate, pad_report
from models.ort_session import inference_session, session_options
from models.preprocess import preprocess_batch
from models.spec import (
    INPUT_NAMES,
    OUTPUT_SCORE,
    SUBSET_ORDER,
    ModelSpec,
    parse_subset,
    subset_name,
)

log = logging.getLogger(__name__)

#: The paper's four sub-protocols: RGB alone and with each extra modality.
PAPER_SUBSETS: tuple[str, ...] = ("rgb", "rgb+depth", "rgb+ir", "rgb+depth+ir")


def session(model: str | Path | bytes, threads: int = 2) -> ort.InferenceSession:
    return inference_session(model, session_options(threads))


def read_spec(model: str | Path | bytes) -> ModelSpec:
    m = onnx.load_from_string(model) if isinstance(model, bytes) else onnx.load(str(model))
    return ModelSpec.from_metadata({p.key: p.value for p in m.metadata_props})


def score_crops(
    sess: ort.InferenceSession,
    spec: ModelSpec,
    crops: CropCache,
    subset: Iterable[str],
    batch_size: int = 64,
) -> np.ndarray:
    """Bona fide scores of every sample with only ``subset`` present."""
    keep = tuple(subset)
    out = []
    for i in range(0, len(crops), batch_size):
        batch = [restrict(crops[j], keep) for j in range(i, min(i + batch_size, len(crops)))]
        feed = preprocess_batch(batch, spec)
        out.append(sess.run([OUTPUT_SCORE], {k: feed[k] for k in INPUT_NAMES})[0])
    return np.concatenate(out).astype(np.float64)


def evaluate_subsets(
    sess: ort.InferenceSession,
    spec: ModelSpec,
    dev: CropCache,
    test: CropCache | None,
    subsets: Iterable[tuple[str, ...]] = SUBSET_ORDER,
    fixed_thresholds: dict[str, float] | None = None,
    test_scores_out: dict[str, np.ndarray] | None = None,
) -> dict[str, dict[str, Any]]:
    """Per subset: dev-calibrated operating points and, when ``test`` is given, the test
    report (:func:`models.metrics.pad_report`). ``fixed_thresholds`` skips calibration;
    ``test_scores_out``, when given, receives each subset's test scores (for plots)."""
    results: dict[str, dict[str, Any]] = {}
    for subset in subsets:
        name = subset_name(subset)
        if fixed_thresholds is None:
            dev_scores = score_crops(sess, spec, dev, subset)
            ops = calibrate(dev_scores, dev.labels, dev.species)
        else:
            ops = dict(fixed_thresholds)
        entry: dict[str, Any] = {"operating_points": ops}
        if test is not None:
            test_scores = score_crops(sess, spec, test, subset)
            entry["test"] = pad_report(test_scores, test.labels, test.species, ops)
            if test_scores_out is not None:
                test_scores_out[name] = test_scores
        results[name] = entry
        if test is not None:
            log.info("%-14s ACER %.4f  EER %.4f", name, entry["test"]["acer"], entry["test"]["eer"])
    return results


def summarise(results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Compact per-subset summary for the model metadata and the model card."""
    out: dict[str, Any] = {}
    for name, r in results.items():
        s: dict[str, Any] = {
            "thresholds": {k: round(v, 6) for k, v in r["operating_points"].items()}
        }
        t = r.get("test")
        if t:
            ab = t.get("apcer_at_bpcer1", {})
            s.update(
                {
                    k: round(float(t[k]), 5)
                    for k in ("acer", "apcer", "bpcer", "eer", "auc", "bpcer20", "bpcer100")
                    if k in t
                }
            )
            s["apcer_species"] = t["apcer_species"]
            s["apcer_per_species"] = {
                sp: round(v["value"], 5)
                for sp, v in t["operating_points"]["eer"]["apcer_per_species"].items()
            }
            if ab:
                s["apcer_at_bpcer1"] = round(ab["value"], 5)
                s["apcer_at_bpcer1_ci95"] = [round(x, 5) for x in ab["ci95"]]
            s["n_bona_fide"], s["n_attack"] = t["n_bona_fide"], t["n_attack"]
        out[name] = s
    return out


def format_table(results: dict[str, dict[str, Any]]) -> str:
    """Plain-text tables: one row per subset, then APCER per species per subset."""
    head = (
        f"{'subset':<14} {'ACER':>7} {'APCER':>7} {'(worst)':<16} {'BPCER':>7} {'EER':>7} "
        f"{'AUC':>7} {'BPCER20':>8} {'APCER@BPCER1 [95% CI]':>28}"
    )
    lines = [head, "-" * len(head)]
    species: set[str] = set()
    for name, r in results.items():
        t = r.get("test")
        if not t:
            continue
        ab = t["apcer_at_bpcer1"]
        lines.append(
            f"{name:<14} {t['acer']:7.2%} {t['apcer']:7.2%} {t['apcer_species']:<16} "
            f"{t['bpcer']:7.2%} {t['eer']:7.2%} {t['auc']:7.4f} {t['bpcer20']:8.2%} "
            f"{ab['value']:9.2%} [{ab['ci95'][0]:6.2%}, {ab['ci95'][1]:6.2%}]"
        )
        species |= set(t["operating_points"]["eer"]["apcer_per_species"])
    if species:
        names = sorted(species)
        lines += ["", "APCER per attack species at the dev-EER threshold:"]
        lines.append(f"{'subset':<14} " + " ".join(f"{s[:14]:>14}" for s in names))
        for name, r in results.items():
            t = r.get("test")
            if not t:
                continue
            per = t["operating_points"]["eer"]["apcer_per_species"]
            cells = [f"{per[s]['value']:14.2%}" if s in per else f"{'-':>14}" for s in names]
            lines.append(f"{name:<14} " + " ".join(cells))
    return "\n".join(lines)


def evaluate(
    model: str | Path,
    data: str | Path,
    protocol: str = "intra",
    split: str = "test",
    subsets: Iterable[str] | None = None,
    thresholds: str = "dev",
    depth_encoding: str = "mm16",
    threads: int = 2,
    plots: str | Path | None = None,
) -> dict[str, Any]:
    """Evaluate ``model`` on ``split`` of ``protocol``; thresholds from dev (or the model).

    With ``plots`` (a folder), also write the DET/ROC curves and score histograms there
    (:func:`write_plots`); the report's ``plots`` lists the files."""
    spec = read_spec(model)
    sess = session(model, threads)
    kw = {"depth_encoding": depth_encoding, "depth_range_mm": spec.depth_range_mm}
    test = CropCache.from_protocol(data, protocol, split, **kw)
    chosen = [parse_subset(s) for s in subsets] if subsets else list(SUBSET_ORDER)
    scores: dict[str, np.ndarray] = {}
    if thresholds == "dev":
        dev = CropCache.from_protocol(data, protocol, "dev", **kw)
        results = evaluate_subsets(sess, spec, dev, test, chosen, test_scores_out=scores)
    elif thresholds == "model":
        results = evaluate_subsets(
            sess, spec, test, test, chosen, spec.operating_points, test_scores_out=scores
        )
    else:
        raise ValueError(f"thresholds must be 'dev' or 'model', got {thresholds!r}")
    written: list[str] = []
    if plots is not None:
        eer_thresholds = {k: float(r["operating_points"]["eer"]) for k, r in results.items()}
        title = f"{spec.name} {spec.version}, {protocol}/{split}"
        paths = write_plots(scores, test.labels, test.species, plots, eer_thresholds, title)
        written = [str(p) for p in paths]
    return {
        "model": str(model),
        "model_name": spec.name,
        "model_version": spec.version,
        "data": str(data),
        "protocol": protocol,
        "split": split,
        "thresholds": thresholds,
        "subsets": results,
        "plots": written,
    }


# -- several models side by side ----------------------------------------------------------
def format_comparison(reports: list[dict[str, Any]]) -> str:
    """The paper's table for several models: one row per modality subset (RGB, RGB+D,
    RGB+IR, RGB+D+IR first), ACER / EER / AUC of each model side by side."""
    labels: list[str] = []
    for r in reports:
        label = f"{r['model_name']} {r['model_version']}"
        labels.append(label if labels.count(label) == 0 else f"{label} ({Path(r['model']).name})")
    width = max(22, *(len(x) for x in labels))
    top = f"{'':<14} " + " ".join(f"{x:^{width}}" for x in labels)
    sub = f"{'subset':<14} " + " ".join(
        f"{'ACER':>7} {'EER':>7} {'AUC':>6}".center(width) for _ in labels
    )
    lines = [top, sub, "-" * len(sub)]
    names: list[str] = []
    for r in reports:
        names += [n for n in r["subsets"] if n not in names]
    for name in names:
        cells = []
        for r in reports:
            t = r["subsets"].get(name, {}).get("test")
            cell = f"{t['acer']:7.2%} {t['eer']:7.2%} {t['auc']:6.4f}" if t else "-"
            cells.append(cell.center(width))
        lines.append(f"{name:<14} " + " ".join(cells))
    return "\n".join(lines)


# -- plots ----------------------------------------------------------------------------------
def error_rates(
    scores: np.ndarray, labels: np.ndarray, mask: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """APCER and BPCER at every distinct score used as threshold (accept if score ≥ t),
    with ``mask`` selecting which attacks count (all of them by default)."""
    s, y = np.asarray(scores, dtype=np.float64), np.asarray(labels)
    atk = np.sort(s[(y == 0) if mask is None else ((y == 0) & mask)])
    bona = np.sort(s[y == 1])
    t = np.concatenate([[-np.inf], np.unique(s), [np.inf]])
    apcer = 1.0 - np.searchsorted(atk, t, side="left") / max(atk.size, 1)
    bpcer = np.searchsorted(bona, t, side="left") / max(bona.size, 1)
    return apcer, bpcer


def _probit(p: np.ndarray, floor: float) -> np.ndarray:
    from statistics import NormalDist

    inv = NormalDist().inv_cdf
    return np.array([inv(float(x)) for x in np.clip(p, floor, 1.0 - floor)])


_DET_TICKS = (0.001, 0.01, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 0.95)


def _det_axes(ax: Any, floor: float) -> None:
    # no tick right at the clipped ends, where the labels would collide
    ticks = [t for t in _DET_TICKS if 1.5 * floor <= t <= 1.0 - 1.5 * floor]
    pos = _probit(np.array(ticks), floor)
    names = [f"{t:.1%}".replace(".0%", "%") for t in ticks]
    ax.set_xticks(pos, names)
    ax.set_yticks(pos, names)
    lim = _probit(np.array([floor, 1.0 - floor]), floor)
    ax.set_xlim(*lim)
    ax.set_ylim(*lim)
    ax.set_xlabel("APCER (attacks accepted)")
    ax.set_ylabel("BPCER (bona fide rejected)")
    ax.grid(True, alpha=0.3)


def _figure() -> tuple[Any, Any]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 5), dpi=100)
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot(1, 1, 1)


def _save(fig: Any, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, format="png")
    return path


def write_plots(
    scores: dict[str, np.ndarray],
    labels: np.ndarray,
    species: list[str],
    out_dir: str | Path,
    thresholds: dict[str, float] | None = None,
    title: str = "",
) -> list[Path]:
    """PNG files in ``out_dir`` for the test scores of each modality subset:

    - ``det_<subset>.png`` / ``roc_<subset>.png``: pooled attacks and each attack species;
    - ``hist_<subset>.png``: bona fide and each species' score histogram, and the dev-EER
      threshold (``thresholds``) as a vertical line;
    - ``det.png`` / ``roc.png``: pooled attacks, every subset on one chart.
    """
    from models.metrics import BONA_FIDE, auc

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    y = np.asarray(labels)
    sp = np.asarray(species, dtype=object)
    attack_species = sorted({str(x) for x in sp[y == 0]} - {BONA_FIDE})
    n_min = max(1, min(int((y == 1).sum()), int((y == 0).sum())))
    floor = max(1e-3, 0.5 / n_min)  # DET axes end where the smaller class has no resolution
    written: list[Path] = []
    det_all, ax_det = _figure()
    roc_all, ax_roc = _figure()
    for name, s in scores.items():
        det, ax = _figure()
        roc, ax2 = _figure()
        groups: list[tuple[str, np.ndarray | None]] = [("all attacks", None)]
        groups += [(a, sp == a) for a in attack_species]
        for label, mask in groups:
            apcer, bpcer = error_rates(s, y, mask)
            style = {"lw": 2.0} if mask is None else {"lw": 1.0, "ls": "--"}
            ax.plot(_probit(apcer, floor), _probit(bpcer, floor), label=label, **style)
            keep = y == 1 if mask is None else (y == 1) | mask
            area = auc(s[keep], y[keep]) if len(set(y[keep])) == 2 else float("nan")
            ax2.plot(apcer, 1.0 - bpcer, label=f"{label} (AUC {area:.3f})", **style)
        _det_axes(ax, floor)
        ax.set_title(f"DET, {name}\n{title}", fontsize=9)
        ax.legend(fontsize=8)
        ax2.set_xlabel("APCER (attacks accepted)")
        ax2.set_ylabel("1 - BPCER (bona fide accepted)")
        ax2.set_title(f"ROC, {name}\n{title}", fontsize=9)
        ax2.grid(True, alpha=0.3)
        ax2.legend(fontsize=8, loc="lower right")
        written += [_save(det, out / f"det_{name}.png"), _save(roc, out / f"roc_{name}.png")]

        hist, ax3 = _figure()
        bins = np.linspace(0.0, 1.0, 41)
        ax3.hist(s[y == 1], bins=bins, histtype="stepfilled", alpha=0.35, label="bona fide")
        for a in attack_species:
            ax3.hist(s[(y == 0) & (sp == a)], bins=bins, histtype="step", lw=1.5, label=a)
        if thresholds and name in thresholds:
            ax3.axvline(thresholds[name], color="k", ls=":", label="dev EER threshold")
        ax3.set_xlabel("bona fide score")
        ax3.set_ylabel("samples")
        ax3.set_title(f"scores, {name}\n{title}", fontsize=9)
        ax3.legend(fontsize=8)
        written.append(_save(hist, out / f"hist_{name}.png"))

        apcer, bpcer = error_rates(s, y)
        ax_det.plot(_probit(apcer, floor), _probit(bpcer, floor), label=name)
        ax_roc.plot(apcer, 1.0 - bpcer, label=f"{name} (AUC {auc(s, y):.3f})")
    _det_axes(ax_det, floor)
    ax_det.set_title(f"DET per modality subset\n{title}", fontsize=9)
    ax_det.legend(fontsize=8)
    ax_roc.set_xlabel("APCER (attacks accepted)")
    ax_roc.set_ylabel("1 - BPCER (bona fide accepted)")
    ax_roc.set_title(f"ROC per modality subset\n{title}", fontsize=9)
    ax_roc.grid(True, alpha=0.3)
    ax_roc.legend(fontsize=8, loc="lower right")
    written += [_save(det_all, out / "det.png"), _save(roc_all, out / "roc.png")]
    log.info("wrote %d plots to %s", len(written), out)
    return written
