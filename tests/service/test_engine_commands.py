"""``liveness bench`` and ``liveness serve`` start-up errors, through the real CLI."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from service.cli import main


@pytest.fixture(autouse=True)
def _clean_env_and_logging(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    import logging
    import os

    for key in list(os.environ):
        if key.upper().startswith("LIVENESS_"):
            monkeypatch.delenv(key)
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers  # `serve` configures process-wide logging
    root.setLevel(level)


def test_bench_reports_every_subset(test_model_path: Path) -> None:
    r = CliRunner().invoke(
        main, ["bench", "--model", str(test_model_path), "--runs", "5", "--json"]
    )
    assert r.exit_code == 0, r.output
    result = json.loads(r.output[r.output.index("{") :])
    assert result["threads"] == 2 and result["model"]["name"] == "flexlive-test"
    assert len(result["engine_batch1"]) == 7
    for stats in result["engine_batch1"].values():
        assert 0 < stats["median_ms"] <= stats["p95_ms"] and stats["n"] == 5


def test_serve_refuses_a_missing_or_malformed_model_readably(
    tmp_path: Path, build_model: object
) -> None:
    runner = CliRunner()
    r = runner.invoke(main, ["serve", "--model", str(tmp_path / "missing.onnx")])
    assert r.exit_code == 1 and "does not exist" in r.output and "Traceback" not in r.output
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"nope")
    r = runner.invoke(main, ["serve", "--model", str(junk)])
    assert r.exit_code == 1 and "not a loadable ONNX model" in r.output


def test_serve_refuses_bad_settings(test_model_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIVENESS_OPERATING_POINT", "apcer5")
    r = CliRunner().invoke(main, ["serve", "--model", str(test_model_path)])
    assert r.exit_code == 1 and "apcer5" in r.output and "['apcer1', 'eer']" in r.output
    monkeypatch.setenv("LIVENESS_PORTT", "1")
    r = CliRunner().invoke(main, ["serve", "--model", str(test_model_path)])
    assert r.exit_code == 1 and "LIVENESS_PORTT" in r.output
