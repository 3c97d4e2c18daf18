"""The latency harness runs end to end (tiny run, no HTTP) and reports what it promises."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_harness_reports_stages_side_by_side_and_model_only(tmp_path: Path) -> None:
    out = tmp_path / "h"
    res = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "harness.py"), "--runs", "3", "--no-http",
         "--out", str(out)],
        capture_output=True, text=True, timeout=600, cwd=ROOT,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-2000:]
    report = json.loads(out.with_suffix(".json").read_text())
    stages = report["stages"]
    for name in (
        "decode_rgb",
        "decode_depth",
        "decode_ir",
        "face_detect",
        "face_align",
        "preprocess",
        "flexmodal_with_preprocess",
        "rgb_expert",
        "request_in_process",
    ):
        assert stages[name]["n"] == 3 and stages[name]["p50_ms"] > 0, name  # fmt: skip
    # the parts of a request are each smaller than the request
    assert stages["face_detect"]["p50_ms"] < stages["request_in_process"]["p50_ms"]
    side = report["side_by_side"]
    assert side["ratio_p50"] == round(
        side["flexlive"]["p50_ms"] / side["reference_rgb"]["p50_ms"], 3
    )
    assert set(report["model_only"]) == {"batch1", "batch8", "batch32"}
    assert report["machine"]["cores"] >= 1 and report["model"].startswith("flexlive-lite")
    md = out.with_suffix(".md").read_text()
    assert "Side by side" in md and "harness.py --runs 3 --no-http" in md


def test_harness_over_http_alternates_rounds_and_names_the_server_settings(
    tmp_path: Path,
) -> None:
    out = tmp_path / "h"
    env = {
        **os.environ,
        "LIVENESS_MAX_CONCURRENT_REQUESTS": "3",
        "LIVENESS_QUEUE_WAIT_RATIO": "0",
        "LIVENESS_MAX_QUEUE": "64",
    }
    res = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "harness.py"), "--runs", "2",
         "--http-runs", "8", "--rounds", "2", "--out", str(out)],
        capture_output=True, text=True, timeout=600, cwd=ROOT, env=env,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-2000:]
    report = json.loads(out.with_suffix(".json").read_text())
    # every request of the wrk-like client was answered 200 (a refusal is counted, not hidden)
    for c in ("c1", "c4", "c8"):
        assert report["http"][c]["refused"] == {} and report["http"][c]["n"] == 8, c
    rounds = report["throughput_rounds"]
    assert len(rounds) == 2
    for r in rounds:
        assert r["ratio"] == round(r["http_c8"] / r["in_process_2_threads"], 3)
    ip = sorted(r["in_process_2_threads"] for r in rounds)
    assert report["in_process_2_threads"]["requests_per_s"] == round(sum(ip) / 2, 2)
    assert report["server_settings"]["LIVENESS_MAX_CONCURRENT_REQUESTS"] == "3"
    md = out.with_suffix(".md").read_text()
    assert "`LIVENESS_MAX_CONCURRENT_REQUESTS=3`" in md and "| 2 |" in md
