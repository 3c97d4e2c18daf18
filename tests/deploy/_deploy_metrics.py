"""The metric names FlexLive exports, read from its prometheus_client registries, and the
metric names a PromQL expression refers to."""

from __future__ import annotations

import re

from prometheus_client import CollectorRegistry

#: Sample suffixes prometheus_client exposes per family type.
SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("", "_sum", "_count", "_created"),
    "info": ("_info",),
    "stateset": ("",),
    "enum": ("",),
    "unknown": ("",),
}

#: Series Prometheus itself adds to every scrape target.
SCRAPE_SERIES = {"up", "scrape_duration_seconds", "scrape_samples_scraped"}

_IDENT = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_LABELS = re.compile(r"\{[^}]*\}")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_RANGE = re.compile(r"\[[^\]]*\]")


def exported_names() -> set[str]:
    """Every sample name the service and the daemon expose on /metrics."""
    from service.daemon.metrics import DaemonMetrics
    from service.metrics import Metrics

    registries = [Metrics().registry, DaemonMetrics(registry=CollectorRegistry()).registry]
    names: set[str] = set()
    for registry in registries:
        for family in registry.collect():
            names |= {family.name + s for s in SUFFIXES[family.type]}
    return names


def referenced_names(expr: str) -> set[str]:
    """Metric names in a PromQL expression (label matchers, grouping, ranges and strings
    removed; what is left that is not a function, keyword or Grafana variable)."""
    text = _STRING.sub(" ", expr)
    text = _LABELS.sub(" ", text)
    text = _GROUPING.sub(" ", text)
    text = _RANGE.sub(" ", text)
    text = re.sub(r"\$\w+", " ", text)
    names = set()
    for match in _IDENT.finditer(text):
        word = match.group()
        following = text[match.end() :].lstrip()
        if following.startswith("("):
            continue  # a function or aggregation
        if word in {"by", "without", "on", "ignoring", "and", "or", "unless", "bool", "offset"}:
            continue
        if re.fullmatch(r"\d.*|[eE]\d+|Inf|NaN", word):
            continue
        names.add(word)
    return names
