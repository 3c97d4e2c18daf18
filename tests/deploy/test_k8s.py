"""Kubernetes manifests: schema-valid (kubernetes-validate) as written and as rendered by
each kustomize overlay, and saying what the service needs (probes, non-root, settings)."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy/k8s"
OVERLAYS = sorted(p.parent.name for p in (K8S / "overlays").glob("*/kustomization.yaml"))


def _render_module() -> Any:
    spec = importlib.util.spec_from_file_location("k8s_render", K8S / "render.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


render = _render_module()


def _validate(doc: dict[str, Any]) -> None:
    kv = pytest.importorskip(
        "kubernetes_validate", reason="kubernetes-validate (PyPI, the dev extra) not installed"
    )
    kv.validate(doc, kv.latest_version(), strict=True)


def _by_kind(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    kinds = {d["kind"]: d for d in docs}
    assert len(kinds) == len(docs), "one resource per kind expected"
    return kinds


def test_overlays_are_cpu_and_gpu() -> None:
    assert OVERLAYS == ["cpu", "gpu"]


@pytest.mark.parametrize(
    "path",
    sorted((K8S / "base").glob("*.yaml")),
    ids=lambda p: p.name,
)
def test_base_manifests_are_schema_valid(path: Path) -> None:
    for doc in yaml.safe_load_all(path.read_text()):
        if doc["kind"] != "Kustomization":
            _validate(doc)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_rendered_overlay_is_schema_valid_and_complete(overlay: str) -> None:
    docs = render.render(K8S / "overlays" / overlay)
    for doc in docs:
        _validate(doc)
    kinds = _by_kind(docs)
    assert set(kinds) == {
        "ConfigMap",
        "Deployment",
        "Service",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
    }
    deployment = kinds["Deployment"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    for selector in (
        deployment["spec"]["selector"]["matchLabels"],
        kinds["Service"]["spec"]["selector"],
        kinds["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"],
    ):
        assert selector.items() <= labels.items()
    target = kinds["HorizontalPodAutoscaler"]["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", deployment["metadata"]["name"])
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    (ref,) = container["envFrom"]
    assert ref["configMapRef"]["name"] == kinds["ConfigMap"]["metadata"]["name"]


def _dockerfile_uid() -> int:
    users = re.findall(r"^USER (\d+)", (ROOT / "Dockerfile").read_text(), re.M)
    assert users, "the Dockerfile's USER must be numeric for runAsNonRoot"
    return int(users[-1])


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_pod_is_probed_non_root_and_read_only(overlay: str) -> None:
    deployment = _by_kind(render.render(K8S / "overlays" / overlay))["Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert container["readinessProbe"]["httpGet"]["port"] in ports
    assert "--port" in container["args"]
    assert ports["http"] == int(container["args"][container["args"].index("--port") + 1])
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == _dockerfile_uid()
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "emptyDir" in volumes[mounts["/tmp"]]
    for kind in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(container["resources"][kind])


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_configmap_holds_settings_the_service_accepts(
    overlay: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from service.settings import Settings

    config = _by_kind(render.render(K8S / "overlays" / overlay))["ConfigMap"]["data"]
    assert config and all(k.startswith("LIVENESS_") for k in config)
    for key, value in config.items():
        monkeypatch.setenv(key, value)
    settings = Settings()  # unknown LIVENESS_* keys and bad values are rejected
    assert settings.providers == {"cpu": "cpu", "gpu": "cuda"}[overlay]


def test_gpu_overlay_asks_for_a_gpu_and_the_gpu_image() -> None:
    gpu = _by_kind(render.render(K8S / "overlays/gpu"))["Deployment"]
    cpu = _by_kind(render.render(K8S / "overlays/cpu"))["Deployment"]
    (gpu_c,) = gpu["spec"]["template"]["spec"]["containers"]
    (cpu_c,) = cpu["spec"]["template"]["spec"]["containers"]
    assert gpu_c["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert "nvidia.com/gpu" not in cpu_c["resources"]["limits"]
    assert gpu_c["image"].endswith("-gpu") and not cpu_c["image"].endswith("-gpu")
    # The patch merged into the base container instead of replacing it.
    assert gpu_c["readinessProbe"] == cpu_c["readinessProbe"]
    assert gpu_c["volumeMounts"] == cpu_c["volumeMounts"]


def test_strategic_merge_merges_named_lists_and_replaces_others() -> None:
    base = {
        "containers": [{"name": "a", "image": "x", "args": ["1", "2"]}, {"name": "b"}],
        "tolerations": [{"key": "k"}],
    }
    patch = {
        "containers": [{"name": "a", "args": ["3"]}, {"name": "c", "image": "z"}],
        "tolerations": [{"key": "m"}],
    }
    merged = render.merge(base, patch)
    assert merged["containers"] == [
        {"name": "a", "image": "x", "args": ["3"]},
        {"name": "b"},
        {"name": "c", "image": "z"},
    ]
    assert merged["tolerations"] == [{"key": "m"}]
    assert base["containers"][0]["args"] == ["1", "2"]  # inputs untouched


def test_renderer_refuses_what_it_does_not_implement(tmp_path: Path) -> None:
    (tmp_path / "kustomization.yaml").write_text("resources: []\nnamePrefix: x-\n")
    with pytest.raises(ValueError, match="namePrefix"):
        render.render(tmp_path)
    (tmp_path / "kustomization.yaml").write_text("resources: []\npatches:\n  - path: p.yaml\n")
    (tmp_path / "p.yaml").write_text("kind: Deployment\nmetadata:\n  name: nope\n")
    with pytest.raises(ValueError, match="matches 0"):
        render.render(tmp_path)
