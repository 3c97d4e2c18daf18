"""What the training benchmarks share: their common options and "train, then export"."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_training_args(ap: argparse.ArgumentParser, epochs: int, out: str) -> None:
    """--data, --model, --epochs, --seed, --threads, --out, --json."""
    ap.add_argument("--data", required=True)
    ap.add_argument("--model", default="flexlive_lite", help="Registered network name.")
    ap.add_argument("--epochs", type=int, default=epochs)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=out)
    ap.add_argument("--json", default=None)


def train_and_export(
    a: argparse.Namespace, protocol: str, out: Path, name: str, subset: str | None = None
) -> Path:
    """Train ``a.model`` on ``protocol`` (one modality ``subset`` when given) into ``out``
    and export it to ``out/model.onnx`` calibrated on dev; returns the ONNX path."""
    from models.export import export
    from models.train import TrainConfig, train

    ckpt = train(
        TrainConfig(
            model=a.model,
            data=a.data,
            protocol=protocol,
            out=str(out),
            epochs=a.epochs,
            seed=a.seed,
            subset=subset,
            threads=a.threads,
            progress=False,
        )
    )
    onnx_path = out / "model.onnx"
    export(ckpt, onnx_path, a.data, protocol, name=name, evaluate_test=False)
    return onnx_path
