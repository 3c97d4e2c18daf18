"""``liveness expert``: component rows from real frames, the fusion fit and its guard, and
writing the fusion into a model's metadata."""

from __future__ import annotations

import json
from pathlib import Path

import click
import numpy as np
import pytest
from click.testing import CliRunner

from models import DEFAULT_MODEL_PATH
from service.engine import InferenceEngine
from service.expert_eval import (
    Row,
    Scorer,
    _restricter,
    evaluate,
    expert,
    fit,
    load_rows,
    save_rows,
    write_fusion,
)
from synth import render_scene
from synth.bundle import scene_to_bundle


@pytest.fixture(scope="module")
def scorer() -> Scorer:
    return Scorer.load(DEFAULT_MODEL_PATH)


def test_rows_carry_both_components_only_when_colour_is_used(scorer: Scorer) -> None:
    scene = render_scene("bona_fide", "d435", 3_100_000_003, split="test")
    rows = list(
        scorer.rows(
            _restricter(scene_to_bundle(scene)),
            {"source": "synth", "species": "bona_fide", "label": 1, "item": "x"},
        )
    )
    assert {r.subset for r in rows} == {
        "rgb",
        "rgb+depth",
        "rgb+ir",
        "rgb+depth+ir",
        "depth",
        "ir",
        "depth+ir",
    }
    for r in rows:
        if r.flexmodal is None:
            continue
        assert 0.0 <= r.flexmodal <= 1.0
        assert (r.rgb_expert is not None) == ("rgb" in r.used), r
        # the colour-free score of the same crops, as the service re-scores a colour spoof
        assert (r.without_colour is not None) == ("rgb" in r.used and r.used != "rgb"), r
    by_used = {r.used: r for r in rows if r.flexmodal is not None}
    full = by_used["rgb+depth+ir"]
    assert full.without_colour is not None and full.without_colour != full.flexmodal


def _rows(rng: np.random.Generator, n: int, flex_sep: float, expert_sep: float) -> list[Row]:
    """Rows where each component separates the classes by the given logit distance."""
    out = []
    for label in (0, 1):
        for source in ("synth", "real"):
            for _ in range(n):
                sign = 1 if label else -1
                f = 1 / (1 + np.exp(-(sign * flex_sep / 2 + rng.normal())))
                e = 1 / (1 + np.exp(-(sign * expert_sep / 2 + rng.normal())))
                species = "bona_fide" if label else "print_flat"
                src = source if label else ("real_attack" if source == "real" else "synth")
                for subset in ("rgb", "rgb+depth+ir"):
                    out.append(Row(src, species, label, subset, subset, float(f), float(e)))
    return out


def test_fit_weights_follow_the_evidence_and_respect_the_subset_list() -> None:
    rows = _rows(np.random.default_rng(0), 300, flex_sep=1.0, expert_sep=4.0)
    fusion = fit(rows, ["eer"], {"a.onnx": "0" * 64}, fuse=("rgb",))
    assert set(fusion.subsets) == {"rgb"}  # rgb+depth+ir not asked for
    rgb = fusion.subsets["rgb"]
    assert rgb.w_expert > rgb.w_flexmodal > 0  # the better component weighs more
    assert set(rgb.operating_points) == {"eer"}


def test_a_component_without_evidence_gets_no_weight() -> None:
    # The expert is pure noise here: the fit must not lean on it in any subset.
    rows = _rows(np.random.default_rng(1), 60, flex_sep=3.0, expert_sep=0.0)
    fusion = fit(rows, ["eer"], {}, fuse=("rgb", "rgb+depth+ir"))
    for subset, f in fusion.subsets.items():
        assert abs(f.w_expert) < 0.5 * f.w_flexmodal, (subset, f)


def test_write_fusion_round_trips_through_the_engine(tmp_path: Path) -> None:
    rows = _rows(np.random.default_rng(2), 100, flex_sep=2.0, expert_sep=2.0)
    fusion = fit(rows, ["eer", "apcer1"], {"a.onnx": "1" * 64}, fuse=("rgb",))
    out = tmp_path / "fused.onnx"
    write_fusion(DEFAULT_MODEL_PATH, fusion, out, "9.9.9")
    engine = InferenceEngine.load(out)
    assert engine.spec.version == "9.9.9"
    assert engine.spec.expert_fusion() == fusion
    # The graph is untouched: same scores as the bundled model.
    base = InferenceEngine.load(DEFAULT_MODEL_PATH)
    rng = np.random.default_rng(0)
    from models.preprocess import FaceCrops

    crops = [FaceCrops(rgb=rng.integers(0, 255, (112, 112, 3), dtype=np.uint8))]
    assert engine.predict(crops) == base.predict(crops)


def test_calibrate_refuses_an_unknown_subset(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        expert, ["calibrate", "--out", str(tmp_path / "x.onnx"), "--fuse", "rgb+sonar"]
    )
    assert result.exit_code == 2
    assert "sonar" in result.output


def test_eval_vetoes_only_spoofs_that_rest_on_colour(scorer: Scorer) -> None:
    """The 'vetoed' rows decide as the service does: a real person the network calls
    spoof with rgb+depth+ir, whom depth+IR alone do not accuse and the expert calls live,
    is uncertain; an attack that depth+IR alone call spoof stays spoof whatever the
    expert says; the flexmodal rows are unchanged. "Alone" is the same face's crops
    re-scored without colour (the row's ``without_colour``), not another detection: a
    depth+IR row of the same item that found no face must not change the answer."""
    spec = scorer.engine.spec
    full = "rgb+depth+ir"
    rows = [
        Row("real", "bona_fide", 1, full, full, 0.01, 0.9, item="a", without_colour=0.95),
        Row("real", "bona_fide", 1, "depth+ir", "", None, None, ["no_face"], item="a"),
        Row("real_attack", "print_flat", 0, full, full, 0.01, 0.9, item="a", without_colour=0.001),
        Row("real_attack", "print_flat", 0, "depth+ir", "depth+ir", 0.95, None, item="a"),
    ]
    report = evaluate(rows, spec, None)["rgb+depth+ir"]
    assert report["flexmodal"]["real"] == {"spoof": 1}
    assert report["vetoed"]["real"] == {"uncertain": 1}
    assert report["flexmodal"]["real_attack"] == report["vetoed"]["real_attack"] == {"spoof": 1}
    # the veto is a setting: 1 turns it off
    assert evaluate(rows, spec, None, veto=1.0)["rgb+depth+ir"]["vetoed"]["real"] == {"spoof": 1}


def test_eval_vetoes_a_colour_only_spoof_the_expert_contradicts(scorer: Scorer) -> None:
    """RGB alone: every accusation rests on colour, so the 'vetoed' rows (the fused score,
    as served) turn a fused spoof the expert calls live into uncertain, and keep one the
    expert agrees with; the 'fused' rows are the score's decision alone."""
    spec = scorer.engine.spec
    fusion = spec.expert_fusion()
    assert fusion is not None and fusion.for_subset(["rgb"]) is not None
    rows = [
        Row("real", "bona_fide", 1, "rgb", "rgb", 0.0005, 0.9, item="a"),
        Row("real_attack", "print_flat", 0, "rgb", "rgb", 0.0005, 0.05, item="a"),
    ]
    report = evaluate(rows, spec, fusion)["rgb"]
    assert report["fused"]["real"] == {"spoof": 1}
    assert report["vetoed"]["real"] == {"uncertain": 1}
    assert report["fused"]["real_attack"] == report["vetoed"]["real_attack"] == {"spoof": 1}
    assert evaluate(rows, spec, fusion, veto=1.0)["rgb"]["vetoed"]["real"] == {"spoof": 1}


def test_an_old_rows_cache_is_refused_not_silently_unvetoed(tmp_path: Path) -> None:
    """Rows cached before the colour-free re-score would skip every depth/IR veto."""
    row = Row("real", "bona_fide", 1, "rgb+depth", "rgb+depth", 0.2, 0.9, without_colour=0.8)
    fresh = tmp_path / "fresh.json"
    save_rows([row], fresh)
    assert load_rows(fresh) == [row]
    old = tmp_path / "old.json"
    record = json.loads(fresh.read_text())[0]
    del record["without_colour"]
    old.write_text(json.dumps([record]))
    with pytest.raises(click.ClickException, match="older FlexLive"):
        load_rows(old)


def test_eval_decides_an_out_of_distribution_face_when_every_key_says_live(
    scorer: Scorer,
) -> None:
    """As served (LIVENESS_RGB_EXPERT_OOD_AGREEMENT): an out-of-distribution face, RGB
    alone and fused, is live in the 'vetoed' rows when the fused score, the network alone
    and the expert alone all say live; uncertain when the expert's key is closed, in the
    'fused' rows (the score alone) and with the setting off; a second reason keeps it
    uncertain."""
    spec = scorer.engine.spec
    fusion = spec.expert_fusion()
    assert fusion is not None
    ood = ["out_of_distribution"]
    rows = [
        Row("real", "bona_fide", 1, "rgb", "rgb", 0.95, 0.95, ood, item="a"),
        Row("real_attack", "replay_phone", 0, "rgb", "rgb", 0.95, 0.45, ood, item="a"),
        Row("real_attack", "print_flat", 0, "rgb", "rgb", 0.95, 0.95, [*ood, "too_bright"]),
    ]
    report = evaluate(rows, spec, fusion)["rgb"]
    assert report["vetoed"]["real"] == {"live": 1}
    assert report["vetoed"]["real_attack"] == {"uncertain": 2}
    assert report["fused"]["real"] == {"uncertain": 1}
    off = evaluate(rows, spec, fusion, ood_agreement=False)["rgb"]["vetoed"]
    assert off["real"] == {"uncertain": 1}
