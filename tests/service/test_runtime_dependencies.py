"""Serving needs no torch: the runtime dependencies (``pip install .``, the Docker image's
``cpu`` target) do not include it — only the ``train`` extra does (nor onnx, matplotlib,
the RealSense SDK or paho-mqtt: other extras). In a fresh interpreter where importing any
of them fails, the service answers a real frame and the daemon's analyser
builds; an import of the training stack anywhere on those paths would fail here."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent(
    """
    import importlib.abc, sys

    # the optional extras: train (torch, onnx, onnxscript, matplotlib), realsense, mqtt
    EXTRAS = {"torch", "onnx", "onnxscript", "matplotlib", "pyrealsense2", "paho"}

    class NoExtras(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in EXTRAS:
                raise ImportError(f"{name}: not installed (runtime dependencies only)")
            return None

    sys.meta_path.insert(0, NoExtras())

    from fastapi.testclient import TestClient

    import service.cli  # the `liveness` entry point and its commands
    from models import DEFAULT_MODEL_PATH
    from service.api import create_app
    from service.daemon.analysis import build_pipeline_analyzer
    from service.settings import Settings

    frame = open(sys.argv[1], "rb").read()
    app = create_app(Settings(model_path=DEFAULT_MODEL_PATH, max_faces=1))
    with TestClient(app) as client:
        for _ in range(600):
            if client.get("/readyz").status_code == 200:
                break
            import time; time.sleep(0.05)
        r = client.post("/liveness", files={"rgb": ("f.jpg", frame)})
        assert r.status_code == 200, r.text
        face = r.json()["faces"][0]
        assert face["scores"]["rgb_expert"] is not None, face
    analyzer = build_pipeline_analyzer(DEFAULT_MODEL_PATH)
    analyzer.close()
    assert not EXTRAS & {m.split(".")[0] for m in sys.modules}
    print("served", face["decision"])
    """
)


def test_the_service_and_daemon_run_on_the_runtime_dependencies_alone() -> None:
    frame = ROOT / "tests" / "fixtures" / "minifasnet_samples" / "live_T1.jpg"
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(frame)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().startswith("served "), proc.stdout
