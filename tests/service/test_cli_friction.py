"""The first hour with the ``liveness`` command: a missing optional package names its extra
before any work; a port in use names the port and how to choose another; ``--log-level``
is checked and reaches ``serve``."""

from __future__ import annotations

import logging
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import service.extras
from service.cli import main
from tests.ports import free_port


def _one_line_error(res: Any, *needles: str) -> str:
    assert res.exit_code != 0, res.output
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert "Traceback" not in res.output
    for needle in needles:
        assert needle in lines[0], lines[0]
    return str(lines[0])


@pytest.fixture
def without(monkeypatch: pytest.MonkeyPatch) -> Any:
    """``without("torch")``: the extras check sees that module as not installed."""

    def hide(*modules: str) -> None:
        real = service.extras.is_installed
        monkeypatch.setattr(service.extras, "is_installed", lambda m: m not in modules and real(m))

    return hide


# -- missing optional packages -------------------------------------------------------------
def test_train_without_torch_names_the_extra_before_any_work(
    without: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import models.commands

    without("torch")
    # Importing the trainer would be work (and would import torch): it must not happen.
    monkeypatch.setitem(sys.modules, "models.train", None)
    out = tmp_path / "run"
    res = CliRunner().invoke(main, ["train", "--data", str(tmp_path), "--out", str(out)])
    line = _one_line_error(res, "'liveness train'", "'torch'", "pip install 'flexlive[train]'")
    assert ".venv/bin/pip install -e '.[train]'" in line
    assert not out.exists()
    assert models.commands.train.callback is not None  # the module's command is untouched


def test_eval_and_export_without_onnx_name_the_extra(
    without: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    without("onnx")
    monkeypatch.setitem(sys.modules, "models.evaluate", None)
    monkeypatch.setitem(sys.modules, "models.export", None)
    model = tmp_path / "m.onnx"
    model.write_bytes(b"x")
    res = CliRunner().invoke(main, ["eval", "--model", str(model), "--data", str(tmp_path)])
    _one_line_error(res, "'liveness eval'", "'onnx'", "flexlive[train]")
    res = CliRunner().invoke(
        main,
        ["export", "--checkpoint", str(model), "--data", str(tmp_path), "--out", "x.onnx"],
    )
    _one_line_error(res, "'liveness export'", "'onnx'", "flexlive[train]")


def test_help_of_a_command_still_works_without_its_extra(without: Any) -> None:
    without("torch")
    res = CliRunner().invoke(main, ["train", "--help"])
    assert res.exit_code == 0 and "--data" in res.output


def test_bench_url_without_httpx_fails_before_loading_the_model(
    without: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from service.engine import InferenceEngine

    def no_load(*a: Any, **k: Any) -> Any:
        raise AssertionError("the model was loaded before the check")

    without("httpx")
    monkeypatch.setattr(InferenceEngine, "load", no_load)
    res = CliRunner().invoke(main, ["bench", "--url", "http://127.0.0.1:1"])
    _one_line_error(res, "'liveness bench --url'", "'httpx'", "pip install 'flexlive[bench]'")


def test_synth_recordings_without_pyrealsense2_fails_before_rendering(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import importlib.util

    import synth.recordings

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "pyrealsense2" else real(name, *a),
    )

    def no_render(*a: Any, **k: Any) -> Any:
        raise AssertionError("rendered before the check")

    monkeypatch.setattr(synth.recordings, "write_recordings", no_render)
    res = CliRunner().invoke(main, ["synth", "recordings", "--out", str(tmp_path / "rec")])
    _one_line_error(res, "'pyrealsense2'", "pip install 'flexlive[realsense]'")
    assert not (tmp_path / "rec").exists()


def test_a_command_module_that_fails_to_import_names_its_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import service.cli

    real = service.cli.importlib.import_module

    def fake(name: str, *a: Any) -> Any:
        if name == "service.expert_eval":
            raise ModuleNotFoundError("No module named 'pyrealsense2'", name="pyrealsense2")
        return real(name, *a)

    monkeypatch.setattr(service.cli.importlib, "import_module", fake)
    res = CliRunner().invoke(main, ["expert"])
    _one_line_error(res, "'liveness expert' is unavailable", "flexlive[realsense]")


# -- --log-level -----------------------------------------------------------------------------
def test_unknown_log_level_is_refused() -> None:
    res = CliRunner().invoke(main, ["--log-level", "verbose", "predict", "x.jpg"])
    assert res.exit_code == 2
    assert "'verbose' is not one of" in res.output and "debug" in res.output.lower()


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def _serve_capturing(
    monkeypatch: pytest.MonkeyPatch, args: list[str], model: Path
) -> dict[str, Any]:
    """Run ``liveness ... serve`` up to uvicorn.run; returns what serve handed to it."""
    import uvicorn

    seen: dict[str, Any] = {}

    def fake_run(app: Any, **kwargs: Any) -> None:
        seen["level"] = logging.getLogger().level
        seen["settings"] = app.state.settings

    monkeypatch.setattr(uvicorn, "run", fake_run)
    port = str(free_port())
    res = CliRunner().invoke(main, [*args, "serve", "--port", port, "--model", str(model)])
    assert res.exit_code == 0, res.output
    return seen


@pytest.mark.usefixtures("restore_logging")
@pytest.mark.parametrize(
    ("flag", "env", "expected"),
    [("debug", None, "DEBUG"), ("Warning", "ERROR", "WARNING"), (None, "ERROR", "ERROR")],
)
def test_serve_honours_the_top_level_log_level(
    monkeypatch: pytest.MonkeyPatch,
    test_model_path: Path,
    flag: str | None,
    env: str | None,
    expected: str,
) -> None:
    """The flag wins over LIVENESS_LOG_LEVEL; without it the environment applies."""
    if env:
        monkeypatch.setenv("LIVENESS_LOG_LEVEL", env)
    else:
        monkeypatch.delenv("LIVENESS_LOG_LEVEL", raising=False)
    seen = _serve_capturing(monkeypatch, ["--log-level", flag] if flag else [], test_model_path)
    assert seen["settings"].log_level == expected
    assert seen["level"] == getattr(logging, expected)


# -- port in use -------------------------------------------------------------------------------
def test_serve_on_a_port_in_use_exits_at_once_naming_the_port() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        exe = Path(sys.executable).with_name("liveness")
        t0 = time.monotonic()
        r = subprocess.run(
            [str(exe), "serve", "--port", str(port)], capture_output=True, text=True, timeout=60
        )
        elapsed = time.monotonic() - t0
    assert r.returncode == 1, r
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert f"port {port} on 127.0.0.1 is already in use" in lines[0]
    assert "--port" in lines[0] and "PORT=" in lines[0] and "LIVENESS_PORT=" in lines[0]
    assert "model loaded" not in r.stderr  # refused before the model loads
    assert elapsed < 30


def test_train_names_the_network_with_network_not_model(tmp_path: Path) -> None:
    """--model names an ONNX file in every other command; train's network option is
    --network, and the old spelling says so instead of guessing."""
    from service.cli import main

    res = CliRunner().invoke(main, ["train", "--list-networks"])
    assert res.exit_code == 0 and "flexlive_lite" in res.output.split()
    # the paper-scale networks are listed too, marked
    assert any(line.startswith("resnet50 ") and "GPU" in line for line in res.output.splitlines())
    res = CliRunner().invoke(
        main,
        [
            "train",
            "--data",
            str(tmp_path),
            "--model",
            "flexlive_lite",
            "--out",
            str(tmp_path / "r"),
        ],
    )
    assert res.exit_code == 2 and "--model is now --network (flexlive_lite)" in res.output
    res = CliRunner().invoke(main, ["train", "--data", str(tmp_path), "--workers", "2"])
    assert res.exit_code == 2 and "--loader-workers" in res.output
    res = CliRunner().invoke(main, ["synth", "preview", "--out", "x.png", "--seeds", "2"])
    assert res.exit_code == 2 and "--per-species" in res.output
    assert not (tmp_path / "r").exists()


def test_train_progress_reaches_the_end_and_export_is_quiet(tmp_path: Path) -> None:
    """The last epoch's bar ends at 100 % even when --max-steps stops it early, and an
    export prints its result, not the ONNX optimiser's rewrite log."""
    from synth import generate_benchmark

    data = tmp_path / "tiny"
    generate_benchmark(data, scale="tiny", progress=False, workers=1)
    run = tmp_path / "run"
    args = ["--data", str(data), "--protocol", "intra"]
    train = subprocess.run(
        [sys.executable, "-m", "service.cli", "train", *args, "--epochs", "2",
         "--max-steps", "2", "--threads", "1", "--out", str(run)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert train.returncode == 0, train.stderr
    bars = [seg for seg in train.stderr.replace("\r", "\n").splitlines() if "epoch 2/2" in seg]
    assert bars and "100%" in bars[-1], bars[-3:]
    export = subprocess.run(
        [sys.executable, "-m", "service.cli", "export", "--checkpoint",
         str(run / "checkpoint.pt"), *args, "--out", str(tmp_path / "m.onnx")],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert export.returncode == 0, export.stderr
    assert "onnxscript" not in export.stderr and "wrote" in export.stdout


def test_serve_checks_the_extra_models_before_binding(tmp_path: Path) -> None:
    """A LIVENESS_MODELS entry naming a missing file stops `liveness serve` with one line
    naming the setting and the file, not an application start-up failure in uvicorn."""
    import os

    env = {**os.environ, "LIVENESS_MODELS": f"other={tmp_path / 'missing.onnx'}"}
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    res = subprocess.run(
        [str(Path(sys.executable).with_name("liveness")), "serve", "--port", str(port)],
        capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip
    assert res.returncode == 1, res.stderr[-1500:]
    err = [line for line in res.stderr.splitlines() if line.startswith("Error:")]
    assert len(err) == 1 and "LIVENESS_MODELS" in err[0] and "missing.onnx" in err[0]
    assert "Traceback" not in res.stderr and "startup failed" not in res.stderr
