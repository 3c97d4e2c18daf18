"""Prometheus config and alert rules (promtool) and the Grafana dashboard: every query
names a metric the service or the daemon really exports."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from _deploy_metrics import SCRAPE_SERIES, exported_names, referenced_names

ROOT = Path(__file__).resolve().parents[2]
PROM = ROOT / "deploy/prometheus"
DASHBOARD = ROOT / "deploy/grafana/dashboards/flexlive.json"

needs_promtool = pytest.mark.skipif(
    shutil.which("promtool") is None,
    reason="promtool missing: Debian package 'prometheus' (`make system-deps` as root)",
)


def unknown_names(expr: str, exported: set[str]) -> set[str]:
    return referenced_names(expr) - exported - SCRAPE_SERIES


def test_name_check_catches_a_metric_the_service_does_not_export() -> None:
    exported = exported_names()
    assert "liveness_requests_total" in exported
    assert "liveness_daemon_frames_dropped_total" in exported
    assert "liveness_stage_duration_seconds_bucket" in exported
    # The family name without its sample suffix is not a series Prometheus stores.
    assert unknown_names("rate(liveness_requests[5m])", exported) == {"liveness_requests"}
    bad = 'sum by (stage) (rate(liveness_stage_seconds_bucket{stage="total"}[$__rate_interval]))'
    assert unknown_names(bad, exported) == {"liveness_stage_seconds_bucket"}


@needs_promtool
def test_promtool_accepts_config_and_rules() -> None:
    for args in (
        ["check", "config", str(PROM / "prometheus.yml")],
        ["check", "rules", str(PROM / "alerts.yml")],
    ):
        proc = subprocess.run(["promtool", *args], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stdout + proc.stderr


def test_prometheus_scrapes_service_and_daemon_and_loads_the_rules() -> None:
    prom = yaml.safe_load((PROM / "prometheus.yml").read_text())
    targets = {
        t for job in prom["scrape_configs"] for c in job["static_configs"] for t in c["targets"]
    }
    assert targets == {"liveness:8000", "daemon:8081"}
    for rule_file in prom["rule_files"]:
        assert (PROM / rule_file).is_file()
    # The compose service names and ports are the ones scraped.
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    assert any("8000" in str(p) for p in compose["liveness"]["ports"])
    assert "8081" in compose["daemon"]["command"]


def _rules() -> dict[str, dict[str, Any]]:
    doc = yaml.safe_load((PROM / "alerts.yml").read_text())
    return {r["alert"]: r for g in doc["groups"] for r in g["rules"]}


def test_alert_rules_cover_the_failure_modes_with_exported_metrics() -> None:
    rules = _rules()
    exported = exported_names()
    for rule in rules.values():
        assert not unknown_names(rule["expr"], exported), rule["alert"]
    by_metric = {
        "down": "up",
        "error ratio": "liveness_requests_total",
        "p99 latency": "liveness_stage_duration_seconds_bucket",
        "overload": "liveness_shed_requests_total",
        "camera lost": "liveness_daemon_ready",
    }
    used = [referenced_names(r["expr"]) for r in rules.values()]
    for failure, metric in by_metric.items():
        assert any(metric in names for names in used), failure
    assert any("0.99" in r["expr"] for r in rules.values())


def _panels() -> list[dict[str, Any]]:
    dashboard = json.loads(DASHBOARD.read_text())
    panels = []
    for panel in dashboard["panels"]:
        panels += [panel, *panel.get("panels", [])]  # rows nest their panels
    return [p for p in panels if p.get("type") != "row"]


def test_dashboard_panels_query_exported_metrics_only() -> None:
    exported = exported_names()
    panels = _panels()
    assert panels
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in panels:
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            names = referenced_names(target["expr"])
            assert names, f"{panel['title']}: no metric in {target['expr']!r}"
            assert not names - exported, f"{panel['title']}: {names - exported}"
            assert target["datasource"]["uid"] == _provisioned_datasource_uid()


def _provisioned_datasource_uid() -> str:
    path = ROOT / "deploy/grafana/provisioning/datasources/prometheus.yml"
    (source,) = yaml.safe_load(path.read_text())["datasources"]
    assert source["url"] == "http://prometheus:9090"
    return str(source["uid"])


def test_dashboard_shows_what_operators_watch() -> None:
    used = set().union(*(referenced_names(t["expr"]) for p in _panels() for t in p["targets"]))
    for metric in (
        "liveness_requests_total",  # request rate
        "liveness_stage_duration_seconds_bucket",  # latency percentiles per stage
        "liveness_decisions_total",
        "liveness_modality_subsets_total",
        "liveness_queued_requests",  # queue depth
        "liveness_daemon_fps",
        "liveness_daemon_frames_dropped_total",
        "liveness_daemon_reconnects_total",
    ):
        assert metric in used, metric


def test_grafana_provisioning_loads_the_dashboard_directory() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["grafana"]
    mounts = dict(v.rsplit(":", 1)[0].split(":", 1) for v in compose["volumes"])
    provider_file = ROOT / "deploy/grafana/provisioning/dashboards/flexlive.yml"
    (provider,) = yaml.safe_load(provider_file.read_text())["providers"]
    in_container = provider["options"]["path"]
    host = next(h for h, c in mounts.items() if c == in_container)
    assert (ROOT / host / DASHBOARD.name).resolve() == DASHBOARD.resolve()
    assert mounts["./deploy/grafana/provisioning"] == "/etc/grafana/provisioning"
