"""benchmarks/rgb_fusion_ceiling.py: the most spoof decisions any fusion of the two RGB
components could reach, with thresholds chosen in hindsight."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCH))

import rgb_fusion_ceiling as rfc  # noqa: E402

from service.expert_eval import Row, save_rows  # noqa: E402


def test_ceiling_counts_every_presentation_and_spares_every_person() -> None:
    people = np.array([0.2, 0.9, 0.95, 0.99])
    attacks = np.array([0.1, 0.19, 0.2, 0.5, 0.96])
    # 10 attacks presented, 5 scored: spoof only strictly below the lowest person
    res = rfc.ceiling(people, attacks, n_attacks=10, n_people=4, min_live=0.75)
    assert res["spoof"] == 2 and res["spoof_share"] == pytest.approx(0.2)
    # 3 of 4 people live: the live threshold is the third-highest person (0.9)
    assert res["live_threshold"] == pytest.approx(0.9) and res["live_attacks"] == 1
    # a share of people live that the scored people cannot give
    res = rfc.ceiling(people[:2], attacks, n_attacks=10, n_people=4, min_live=0.75)
    assert res["live_attacks"] is None


def _rows() -> list[Row]:
    rows = [
        Row("real", "bona_fide", 1, "rgb", "rgb", 0.9, 0.9, item="p1"),
        Row("real", "bona_fide", 1, "rgb", "rgb", 0.6, 0.3, ["out_of_distribution"], item="p2"),
        # the network alone is fooled, the expert is not: only a weighted fusion separates
        Row("real_attack", "print_flat", 0, "rgb", "rgb", 0.95, 0.01, item="p1"),
        Row("real_attack", "replay_phone", 0, "rgb", "rgb", 0.05, 0.05, item="p2"),
        # never reaches a score: counts in the denominator only
        Row("real_attack", "print_curved", 0, "rgb", "", None, None, ["no_face"], item="p1"),
        Row("real_attack", "print_cutout", 0, "rgb", "rgb", 0.01, 0.01, ["face_too_small"]),
        # another subset is ignored
        Row("real_attack", "print_flat", 0, "rgb+ir", "rgb+ir", 0.99, 0.99, item="p1"),
    ]
    return rows


def test_analyse_finds_the_weighting_that_decides_most_attacks(tmp_path: Path) -> None:
    report = rfc.analyse(_rows(), "rgb", min_live=1.0)
    assert (report["people"], report["attacks"], report["attacks_scored"]) == (2, 4, 2)
    by_weight = {w["expert_weight"]: w for w in report["weights"]}
    assert by_weight[0.0]["spoof"] == 1  # network alone: the print outranks a person
    assert report["best"]["spoof"] == 2 and report["best"]["expert_weight"] > 0.0
    assert report["best"]["spoof_share"] == pytest.approx(0.5)


def test_cli_writes_the_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = tmp_path / "rows.json"
    save_rows(_rows(), rows)
    out = tmp_path / "ceiling.json"
    assert rfc.main(["--rows", str(rows), "--min-live", "1", "--json", str(out)]) == 0
    assert json.loads(out.read_text())["best"]["spoof"] == 2
    assert "2 of them reach a score" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        rfc.main(["--rows", str(tmp_path / "missing.json")])
