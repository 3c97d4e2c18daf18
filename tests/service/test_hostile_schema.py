"""Schemathesis against the live OpenAPI schema of a real server (bounded, deterministic).

Every operation is called with requests generated from the schema the server publishes,
valid ones and (for ``POST /liveness``) invalid ones, and each answer is checked against
that schema: no 5xx, a documented status, the documented content type and body shape,
invalid requests refused. Issue 10 found ``/metrics`` documented as JSON while serving
text, and a schema that accepted a body without any image; both are checked here.

Not checked: that every schema-valid ``POST /liveness`` is accepted. A schema cannot say
"the bytes of a 16-bit PNG of the same size as the RGB image", so a valid-looking upload
may still be a 422 — but never an ``empty-request`` one, since the schema requires an image.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis  # the dev extra
from hypothesis import HealthCheck, Phase, given, settings
from prometheus_client.parser import text_string_to_metric_families
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance

from service.api import create_app
from service.settings import Settings

#: Examples per operation and mode: enough to cover every field and its negations, small
#: enough that the whole module runs in well under a minute on two busy cores.
EXAMPLES = {"POST /liveness": 80}
OTHER_EXAMPLES = 3


@pytest.fixture(scope="module")
def server(test_model_path: Path, live_server: Any) -> Iterator[str]:
    settings = Settings(model_path=test_model_path, rgb_expert=False, max_upload_bytes=1 << 20)
    with live_server(create_app(settings)) as url, httpx.Client(base_url=url) as c:
        deadline = time.monotonic() + 30
        while c.get("/readyz").status_code != 200:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        yield url


@schemathesis.check
def image_sent_is_never_an_empty_request(ctx: Any, response: Any, case: Any) -> bool | None:
    """The schema requires an image: a schema-valid request is never 'empty-request'."""
    if case.meta is None or case.meta.generation.mode != GenerationMode.POSITIVE:
        return None
    if response.status_code == 422 and "empty-request" in response.text:
        raise AssertionError(f"schema-valid request refused as empty: {response.text}")
    return True


def _run(operation: Any, url: str, mode: GenerationMode, examples: int) -> int:
    calls = 0

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def check(case: Any) -> None:
        nonlocal calls
        calls += 1
        case.call_and_validate(
            base_url=url,
            excluded_checks=[positive_data_acceptance],
            additional_checks=[image_sent_is_never_an_empty_request],
        )

    check()
    return calls


def test_live_schema_holds_for_generated_requests(server: str) -> None:
    schema = schemathesis.openapi.from_url(server + "/openapi.json")
    operations = {op.ok().label: op.ok() for op in schema.get_all_operations()}
    assert {"POST /liveness", "GET /metrics", "GET /v1/models", "GET /readyz"} <= set(operations)
    started = time.monotonic()
    for label, operation in operations.items():
        examples = EXAMPLES.get(label, OTHER_EXAMPLES)
        assert _run(operation, server, GenerationMode.POSITIVE, examples) >= 1, label
        if label in EXAMPLES:  # the only operation with a body or parameters to negate
            assert _run(operation, server, GenerationMode.NEGATIVE, examples) >= 1, label
    assert time.monotonic() - started < 60
    with httpx.Client(base_url=server) as c:
        assert c.get("/healthz").status_code == 200
        text = c.get("/metrics").text
    served = {
        s.labels["status"]
        for f in text_string_to_metric_families(text)
        for s in f.samples
        if s.name == "liveness_requests_total" and s.labels.get("endpoint") == "/liveness"
    }
    assert served and not any(code.startswith("5") for code in served), served


def test_documented_schema_matches_what_the_routes_do(server: str) -> None:
    with httpx.Client(base_url=server) as c:
        spec = c.get("/openapi.json").json()
    metrics = spec["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
    assert list(metrics) == ["text/plain"]
    body = spec["paths"]["/liveness"]["post"]["requestBody"]["content"]
    for media in ("multipart/form-data", "application/json"):
        schema = body[media]["schema"]
        required_sets = sorted(tuple(alt["required"]) for alt in schema["anyOf"])
        assert required_sets == [("depth",), ("ir",), ("rgb",)], media
    assert "408" in spec["paths"]["/liveness"]["post"]["responses"]
