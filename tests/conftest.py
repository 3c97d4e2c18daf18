"""Shared fixtures: a small but real FlexLive ONNX model built with ``onnx.helper``.

The test model honours the full model contract (inputs rgb/depth/ir/present with a
dynamic batch, output ``score`` in [0, 1], complete metadata from ``ModelSpec``). Its
score is a fixed function of the normalised inputs, so tests can steer it:
``sigmoid(2·mean(rgb) + mean(depth) + mean(ir) + 0.1·(Σpresent − 2))`` — a bright RGB
crop scores high (bona fide), a dark one low. ``build_test_model`` also writes broken
variants for refusal tests.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

TEST_INPUT_SIZE = 64


def make_test_spec(**overrides: Any) -> Any:
    from models.spec import ModelSpec, default_normalisation

    fields: dict[str, Any] = dict(
        name="flexlive-test",
        version="0.0.1",
        input_size=TEST_INPUT_SIZE,
        normalisation=default_normalisation(),
        operating_points={"eer": 0.5, "apcer1": 0.8},
        default_operating_point="eer",
        uncertain_margin=0.05,
        backbone="mean-pool",
        fusion="linear",
        training_data="none: a hand-written test graph",
        evaluation={"note": "not evaluated"},
        created="2026-11-28T00:00:00Z",
    )
    fields.update(overrides)
    return ModelSpec.model_validate(fields)


def build_test_model(
    path: Path,
    *,
    spec: Any = None,
    metadata: Mapping[str, str] | None = None,
    input_names: Sequence[str] = ("rgb", "depth", "ir", "present"),
    batch: int | str = "N",
    graph_input_size: int | None = None,
) -> Path:
    """Write a contract-honouring ONNX model (or a deliberately broken variant)."""
    import onnx
    from onnx import TensorProto, helper

    spec = spec if spec is not None else make_test_spec()
    S = graph_input_size or spec.input_size
    shapes = {"rgb": [batch, 3, S, S], "depth": [batch, 1, S, S], "ir": [batch, 1, S, S]}
    shapes["present"] = [batch, 3]
    canonical = ("rgb", "depth", "ir", "present")
    names = dict(zip(canonical, input_names, strict=True))
    inputs = [
        helper.make_tensor_value_info(names[k], TensorProto.FLOAT, shapes[k]) for k in canonical
    ]
    output = helper.make_tensor_value_info("score", TensorProto.FLOAT, [batch])

    def const(name: str, value: float) -> Any:
        return helper.make_node(
            "Constant", [], [name], value=helper.make_tensor(name, TensorProto.FLOAT, [], [value])
        )

    nodes = [
        helper.make_node("ReduceMean", [names["rgb"]], ["m_rgb"], axes=[1, 2, 3], keepdims=0),
        helper.make_node("ReduceMean", [names["depth"]], ["m_depth"], axes=[1, 2, 3], keepdims=0),
        helper.make_node("ReduceMean", [names["ir"]], ["m_ir"], axes=[1, 2, 3], keepdims=0),
        helper.make_node(
            "Constant",
            [],
            ["one_axis"],
            value=helper.make_tensor("ax", TensorProto.INT64, [1], [1]),
        ),
        helper.make_node("ReduceSum", [names["present"], "one_axis"], ["n_present"], keepdims=0),
        const("two", 2.0),
        const("tenth", 0.1),
        helper.make_node("Mul", ["m_rgb", "two"], ["w_rgb"]),
        helper.make_node("Sub", ["n_present", "two"], ["p_off"]),
        helper.make_node("Mul", ["p_off", "tenth"], ["w_p"]),
        helper.make_node("Add", ["w_rgb", "m_depth"], ["s1"]),
        helper.make_node("Add", ["s1", "m_ir"], ["s2"]),
        helper.make_node("Add", ["s2", "w_p"], ["logit"]),
        helper.make_node("Sigmoid", ["logit"], ["score"]),
    ]
    graph = helper.make_graph(nodes, "flexlive_test", inputs, [output])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    meta = dict(spec.to_metadata()) if metadata is None else dict(metadata)
    for key, value in meta.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


@pytest.fixture(scope="session")
def test_model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A valid FlexLive test model (input size 64, operating points eer=0.5, apcer1=0.8)."""
    return build_test_model(tmp_path_factory.mktemp("model") / "flexlive-test.onnx")


@pytest.fixture(scope="session")
def build_model() -> Any:
    """The :func:`build_test_model` function, for tests that need broken variants."""
    return build_test_model


@contextmanager
def serve_in_thread(app: Any) -> Iterator[str]:
    """Run ``app`` on a real uvicorn server on a free port; yields its base URL."""
    import uvicorn

    from tests.ports import free_port

    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="session")
def live_server() -> Any:
    """The :func:`serve_in_thread` context manager."""
    return serve_in_thread


@pytest.fixture(scope="module")
def bundled_client() -> Iterator[Any]:
    """An ``httpx.Client`` on the real service with the bundled model (one face per
    frame), served by uvicorn and ready."""
    import httpx

    from models import DEFAULT_MODEL_PATH
    from service.api import create_app
    from service.settings import Settings

    app = create_app(Settings(model_path=DEFAULT_MODEL_PATH, max_faces=1))
    with serve_in_thread(app) as url, httpx.Client(base_url=url, timeout=60) as c:
        for _ in range(600):
            if c.get("/readyz").status_code == 200:
                break
            time.sleep(0.05)
        yield c


@pytest.fixture(scope="session")
def make_spec() -> Any:
    """The :func:`make_test_spec` function (the test model's ModelSpec, with overrides)."""
    return make_test_spec
