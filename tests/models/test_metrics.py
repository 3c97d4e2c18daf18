"""PAD metrics on constructed score sets with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from models import metrics as M


def _set(bona: list[float], attacks: list[float]) -> tuple[np.ndarray, np.ndarray]:
    s = np.array(bona + attacks)
    y = np.array([1] * len(bona) + [0] * len(attacks))
    return s, y


def test_apcer_per_species_worst_bpcer_acer() -> None:
    s, y = _set([0.9, 0.8, 0.7, 0.4], [0.1, 0.2, 0.3, 0.65])
    species = ["bona_fide"] * 4 + ["print", "print", "replay", "replay"]
    r = M.evaluate_at(s, y, species, 0.5)
    assert r["apcer_per_species"]["print"]["value"] == 0.0
    assert r["apcer_per_species"]["replay"]["value"] == 0.5
    assert r["apcer_worst_species"] == "replay"
    assert r["bpcer"]["value"] == 0.25
    assert r["acer"] == pytest.approx((0.5 + 0.25) / 2)


def test_eer_and_threshold() -> None:
    s, y = _set([0.1, 0.6, 0.7, 0.8], [0.2, 0.3, 0.4, 0.9])
    e, t = M.eer(s, y)
    assert e == pytest.approx(0.25)
    assert 0.4 < t <= 0.6
    assert M.eer(*_set([0.8, 0.9], [0.1, 0.2]))[0] == 0.0


def test_auc_counts_pairs_and_ties() -> None:
    assert M.auc(*_set([0.1, 0.6, 0.7, 0.8], [0.2, 0.3, 0.4, 0.9])) == pytest.approx(9 / 16)
    assert M.auc(*_set([0.5], [0.5])) == pytest.approx(0.5)
    assert M.auc(*_set([1.0, 0.9], [0.0, 0.1])) == 1.0


@pytest.mark.parametrize(
    ("k", "n", "lo", "hi"),
    [
        (0, 20, 0.0, 0.16843),
        (20, 20, 0.83157, 1.0),
        (5, 10, 0.18709, 0.81291),
        (1, 100, 0.00025, 0.05446),
    ],
)
def test_clopper_pearson(k: int, n: int, lo: float, hi: float) -> None:
    a, b = M.clopper_pearson(k, n)
    assert a == pytest.approx(lo, abs=1e-4)
    assert b == pytest.approx(hi, abs=1e-4)


def test_threshold_at_apcer_and_bpcer() -> None:
    rng = np.random.default_rng(0)
    atk = rng.permutation(np.arange(100) / 100.0)
    bona = 0.5 + rng.permutation(np.arange(100) / 200.0)
    s, y = _set(list(bona), list(atk))
    t5 = M.threshold_at_apcer(s, y, 0.05)
    assert (atk >= t5).mean() == pytest.approx(0.05)
    assert (atk >= np.nextafter(0.94, 0)).mean() > 0.05
    t1 = M.threshold_at_bpcer(s, y, 0.01)
    assert (bona < t1).mean() == pytest.approx(0.01)


def test_threshold_at_apcer_is_per_species_worst_case() -> None:
    s, y = _set([0.99] * 10, [0.1] * 10 + [0.5 + i / 100 for i in range(10)])
    species = ["bona_fide"] * 10 + ["print"] * 10 + ["mask"] * 10
    t = M.threshold_at_apcer(s, y, 0.0, species)
    assert t > 0.59
    per = M.apcer_per_species(s, y, species, t)
    assert all(r.value == 0.0 for r in per.values())


def test_calibrate_on_dev_apply_to_test() -> None:
    dev_s, dev_y = _set([0.6, 0.7, 0.8, 0.9], [0.1, 0.2, 0.3, 0.4])
    ops = M.calibrate(dev_s, dev_y, ["bona_fide"] * 4 + ["print"] * 4)
    assert set(ops) == {"eer", "apcer5", "apcer1", "bpcer1"}
    assert 0.4 < ops["eer"] <= 0.6
    test_s, test_y = _set([0.35, 0.7, 0.8, 0.9], [0.1, 0.2, 0.3, 0.65])
    r = M.pad_report(test_s, test_y, ["bona_fide"] * 4 + ["print"] * 4, ops)
    # the dev threshold is applied as is, not re-tuned on test
    assert r["operating_points"]["eer"]["threshold"] == ops["eer"]
    assert r["bpcer"] == 0.25 and r["apcer"] == 0.25
    assert r["acer"] == pytest.approx(0.25)
    assert 0.0 <= r["auc"] <= 1.0
    lo, hi = r["apcer_at_bpcer1"]["ci95"]
    assert lo <= r["apcer_at_bpcer1"]["value"] <= hi


def test_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        M.eer(np.array([0.5, np.nan]), np.array([1, 0]))
    with pytest.raises(ValueError):
        M.auc(np.array([0.5]), np.array([1]))
