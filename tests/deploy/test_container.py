"""Static validation of the container path (there is no Docker engine here)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


def _hadolint() -> str:
    exe = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    if not Path(exe).exists():
        pytest.fail("hadolint not installed: it is a dev dependency (pip install '.[dev]')")
    return exe


def test_dockerfile_passes_hadolint() -> None:
    proc = subprocess.run(
        [_hadolint(), "--failure-threshold", "warning", str(ROOT / "Dockerfile")],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _stages() -> dict[str, tuple[str, str]]:
    """Dockerfile stages: name → (base image, the stage's text)."""
    text = (ROOT / "Dockerfile").read_text()
    parts = re.split(r"^FROM ", text, flags=re.M)[1:]
    stages = {}
    for part in parts:
        first, _, body = part.partition("\n")
        image, _, name = first.partition(" AS ")
        stages[name.strip()] = (image.strip(), body)
    return stages


def test_dockerfile_runs_as_non_root_with_healthcheck_and_pip_install() -> None:
    text = (ROOT / "Dockerfile").read_text()
    users = [ln.split()[1] for ln in text.splitlines() if ln.startswith("USER ")]
    assert users and users[-1] not in {"root", "0"}
    assert "HEALTHCHECK" in text and "/readyz" in text
    assert "pip install --no-cache-dir ." in text  # the install path CI exercises


def test_dockerfile_targets_cpu_by_default_and_gpu_on_cuda() -> None:
    stages = _stages()
    assert list(stages)[-1] == "cpu"  # `docker build .` without --target
    for name in ("cpu", "gpu", "daemon"):
        _, body = stages[name]
        user = re.findall(r"^USER (\S+)", body, re.M)
        assert user and user[-1] not in {"root", "0"}, name
        assert "HEALTHCHECK" in body, name
        assert "COPY --from=source" in body, name
    assert stages["cpu"][0].startswith("python:") and "slim" in stages["cpu"][0]
    assert "pip install --no-cache-dir . " in stages["cpu"][1]
    image, body = stages["gpu"]
    assert image.startswith("nvidia/cuda:") and "runtime" in image
    assert 'pip install --no-cache-dir ".[gpu]"' in body
    # The CPU wheel goes before the GPU one goes in: both install the same module.
    assert body.index("uninstall -y onnxruntime") < body.rindex("onnxruntime-gpu")
    assert "LIVENESS_PROVIDERS=cuda" in body
    gpu_extra = re.search(r"^gpu = \[(.*)\]", (ROOT / "pyproject.toml").read_text(), re.M)
    assert gpu_extra and '"onnxruntime-gpu' in gpu_extra.group(1)
    assert '".[realsense]"' in stages["daemon"][1]


@pytest.mark.skipif(
    shutil.which("docker-compose") is None,
    reason="docker-compose (Debian package) not installed; `make test` installs it as root",
)
def test_compose_file_is_valid() -> None:
    proc = subprocess.run(
        ["docker-compose", "-f", str(ROOT / "docker-compose.yml"), "config"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr
    config = yaml.safe_load(proc.stdout)
    svc = config["services"]["liveness"]
    assert any("8000" in str(p) for p in svc["ports"])
    assert svc["build"]["target"] == "cpu"
    assert {"prometheus", "grafana"} <= set(config["services"])


def test_compose_daemon_is_a_profile_with_usb_access() -> None:
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    daemon = services["daemon"]
    assert daemon["profiles"] == ["camera"]
    assert daemon["build"]["target"] in _stages()
    assert any(d.startswith("/dev/bus/usb") for d in daemon["devices"])
    # Everything else starts with a plain `docker compose up`.
    assert [n for n, s in services.items() if "profiles" in s] == ["daemon"]


def test_compose_mounts_existing_deploy_files() -> None:
    config = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    for service in config["services"].values():
        for volume in service.get("volumes", []):
            host = volume.split(":")[0]
            assert (ROOT / host).exists(), f"compose mounts missing file {host}"
    prom = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    targets = prom["scrape_configs"][0]["static_configs"][0]["targets"]
    assert targets == ["liveness:8000"]


def test_wheel_ships_bundled_model_and_detector(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    wheel = next(tmp_path.glob("flexlive-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "models/default/flexlive-lite.onnx" in names
    assert any(n.startswith("models/face_detector/") and n.endswith(".onnx") for n in names)
    # The RGB expert travels with its licence notice and provenance (Apache-2.0).
    for name in ("minifasnet_v2.onnx", "minifasnet_v1se.onnx", "LICENSE", "README.md"):
        assert f"models/rgb_expert/{name}" in names, name
    assert not any(n.startswith("tests/") for n in names)
