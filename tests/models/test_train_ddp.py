"""Multi-process training (DistributedDataParallel over gloo on the CPU): two ranks started
by torchrun train one model and end with identical weights, which rank 0 saves."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from models.train import load_checkpoint, weights_digest  # noqa: E402
from tests.ports import free_port  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def test_two_ranks_end_with_identical_weights(tmp_path: Path) -> None:
    from synth import generate_benchmark

    data = tmp_path / "tiny"
    generate_benchmark(data, scale="tiny", progress=False, workers=1)
    out = tmp_path / "run"
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
        "--master_addr", "127.0.0.1", "--master_port", str(free_port()),
        "-m", "service.cli", "train", "--data", str(data), "--protocol", "intra",
        "--epochs", "2", "--batch-size", "4", "--threads", "1", "--out", str(out),
        "--device", "cpu",  # gloo; on a GPU machine NCCL would need a GPU per process
    ]  # fmt: skip
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert res.returncode == 0, res.stderr[-3000:]
    ranks = [json.loads((out / "ddp" / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["rank"] for r in ranks] == [0, 1] and {r["world"] for r in ranks} == {2}
    # each rank saw its own half of every epoch; averaged gradients keep them equal
    assert ranks[0]["weights_sha256"] == ranks[1]["weights_sha256"]
    net, ckpt = load_checkpoint(out / "checkpoint.pt")
    assert weights_digest(net) == ranks[0]["weights_sha256"]
    assert [h["epoch"] for h in ckpt["history"]] == [1, 2]
    assert res.stdout.count("checkpoint:") == 1  # rank 0 reports, once
