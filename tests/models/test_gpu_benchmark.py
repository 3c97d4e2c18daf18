"""The GPU throughput script runs on the CPU at a tiny size and reports every row it
promises (on a GPU it is the same code with CUDA graphs added)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")

ROOT = Path(__file__).resolve().parents[2]


def test_gpu_benchmark_smoke_run_on_cpu(tmp_path: Path) -> None:
    out = tmp_path / "g.json"
    cmd = [sys.executable, str(ROOT / "benchmarks" / "gpu_networks.py"), "--device", "cpu",
           "--networks", "flexlive_lite", "--batches", "1", "2", "--dtypes", "fp32",
           "--iters", "2", "--json", str(out)]  # fmt: skip
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert res.returncode == 0, res.stderr[-2000:]
    rows = json.loads(out.read_text())["rows"]
    assert [(r["network"], r["dtype"], r["batch"]) for r in rows] == [
        ("flexlive_lite", "fp32", 1),
        ("flexlive_lite", "fp32", 2),
    ]
    for r in rows:
        assert r["samples_per_s"] == pytest.approx(r["batch"] * 1000 / r["ms_per_batch"], rel=0.01)
    assert "| flexlive_lite | fp32 | 2 |" in res.stdout
    bad = subprocess.run(cmd[:2] + ["--networks", "nope"], capture_output=True, text=True,
                         timeout=120, cwd=ROOT)  # fmt: skip
    assert bad.returncode == 2 and "unknown network" in bad.stderr
    # the paper-scale networks (what a GPU is for) are registered names it measures
    assert all(n in bad.stderr for n in ("'resnet50'", "'cdcn'", "'vit_b16'"))
