"""benchmarks/pad_unified_vs_specialists.py on a tiny generated benchmark: one unified
network scored on the paper's four sub-protocols, one specialist per asked subset trained
with only that subset present, the same steps each."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch", reason="torch (the train extra) not installed")

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from synth import generate_benchmark

    out = tmp_path_factory.mktemp("tiny_bench")
    generate_benchmark(out, scale="tiny", seed=0, progress=False, workers=1)
    return out


def test_unified_and_specialists_are_trained_alike_and_scored_on_their_subsets(
    tiny: Path, tmp_path: Path
) -> None:
    out = tmp_path / "r.json"
    proc = subprocess.run(
        [
            sys.executable, str(BENCH / "pad_unified_vs_specialists.py"), "--data", str(tiny),
            "--steps", "2", "--subsets", "rgb", "rgb+depth+ir", "--processes", "2",
            "--out", str(tmp_path / "runs"), "--json", str(out),
        ],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = {r["model"]: r for r in json.loads(out.read_text())["rows"]}
    assert set(rows) == {"unified", "specialist rgb", "specialist rgb+depth+ir"}
    assert set(rows["unified"]["subsets"]) == {"rgb", "rgb+depth", "rgb+ir", "rgb+depth+ir"}
    assert set(rows["specialist rgb"]["subsets"]) == {"rgb"}
    assert all(r["steps"] == 2 for r in rows.values())
    for r in rows.values():
        for s in r["subsets"].values():
            assert 0.0 <= s["acer"] <= 100.0 and 0.0 <= s["eer"] <= 100.0
    # each specialist was trained on its subset only (the checkpoint says so)
    import torch

    ck = torch.load(tmp_path / "runs" / "rgb" / "checkpoint.pt", weights_only=False)
    assert ck["config"]["subset"] == "rgb"
    assert "| rgb+depth | " in proc.stdout and "| rgb+depth+ir | " in proc.stdout

    bad = subprocess.run(
        [sys.executable, str(BENCH / "pad_unified_vs_specialists.py"), "--data", str(tiny),
         "--subsets", "depth"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert bad.returncode == 2 and "--subsets" in bad.stderr
