"""The inference engine: one ONNX model behind a load → warm → run → close lifecycle.

:meth:`InferenceEngine.load` opens the file with ONNX Runtime, reads the FlexLive
metadata (:class:`models.spec.ModelSpec`) and checks the graph's inputs and outputs
against it, so a model that does not honour the contract is refused at start-up with a
message that says what is wrong. :meth:`InferenceEngine.predict` scores aligned face
crops with the shared preprocessing (:mod:`models.preprocess`); a face that cannot be
preprocessed fails alone and the rest of the batch is answered. The engine is
thread-safe: ONNX Runtime sessions may be run concurrently and the engine holds no
per-call state.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from models.preprocess import FaceCrops, preprocess
from models.spec import (
    CHANNELS,
    INPUT_NAMES,
    INPUT_PRESENT,
    MODALITIES,
    OUTPUT_OOD,
    OUTPUT_PIXEL_MAP,
    OUTPUT_SCORE,
    ModelSpec,
    ModelSpecError,
    parse_subset,
)
from service.onnx_runtime import inference_session, session_options

logger = logging.getLogger(__name__)

_FLOAT = "tensor(float)"


class ModelLoadError(RuntimeError):
    """The model file is missing, unreadable or does not honour the model contract."""


class EngineClosedError(RuntimeError):
    """The engine was closed; no more predictions."""


class FaceInferenceError(ValueError):
    """One face could not be scored (bad crop, non-finite score); the others are."""


@dataclass(frozen=True)
class ModelInfo:
    """Identity of the loaded model, as reported by the API and metrics."""

    name: str
    version: str
    sha256: str
    path: str
    providers: tuple[str, ...]


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def choose_providers(requested: str = "auto") -> list[str]:
    """ONNX Runtime providers for ``auto`` / ``cpu`` / ``cuda``."""
    available = ort.get_available_providers()
    if requested == "cpu":
        return ["CPUExecutionProvider"]
    if requested == "cuda":
        if "CUDAExecutionProvider" not in available:
            raise ModelLoadError(
                "providers='cuda' but onnxruntime has no CUDAExecutionProvider "
                f"(available: {', '.join(available)}); install onnxruntime-gpu or use 'auto'"
            )
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    if requested != "auto":
        raise ModelLoadError(f"unknown providers setting {requested!r}; use auto, cpu or cuda")
    if "CUDAExecutionProvider" in available:
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


def _dim_ok(actual: Any, expected: int) -> bool:
    # Symbolic (str) or unknown (None) dimensions accept any size.
    return not isinstance(actual, int) or actual in (expected, -1)


def check_graph(session: ort.InferenceSession, spec: ModelSpec) -> None:
    """Raise :class:`ModelLoadError` if the graph's I/O does not match the contract."""
    S = spec.input_size
    inputs = {i.name: i for i in session.get_inputs()}
    problems: list[str] = []
    missing = [n for n in INPUT_NAMES if n not in inputs]
    extra = [n for n in inputs if n not in INPUT_NAMES]
    if missing:
        problems.append(f"missing input(s) {missing}")
    if extra:
        problems.append(f"unexpected input(s) {extra}")
    expected_shapes: dict[str, list[int]] = {m: [CHANNELS[m], S, S] for m in MODALITIES}
    expected_shapes[INPUT_PRESENT] = [len(MODALITIES)]
    for name, rest in expected_shapes.items():
        arg = inputs.get(name)
        if arg is None:
            continue
        if arg.type != _FLOAT:
            problems.append(f"input '{name}' is {arg.type}, expected {_FLOAT}")
        shape = list(arg.shape)
        want = ["N", *rest]
        if len(shape) != len(want):
            problems.append(f"input '{name}' has shape {shape}, expected {want}")
            continue
        if isinstance(shape[0], int) and shape[0] > 0:
            problems.append(f"input '{name}' has a fixed batch {shape[0]}; it must be dynamic")
        if not all(_dim_ok(a, e) for a, e in zip(shape[1:], rest, strict=True)):
            problems.append(f"input '{name}' has shape {shape}, expected {want} (input_size {S})")
    outputs = {o.name: o for o in session.get_outputs()}
    score = outputs.get(OUTPUT_SCORE)
    if score is None:
        problems.append(f"missing output '{OUTPUT_SCORE}' (outputs: {sorted(outputs)})")
    else:
        if score.type != _FLOAT:
            problems.append(f"output '{OUTPUT_SCORE}' is {score.type}, expected {_FLOAT}")
        if len(score.shape) != 1:
            problems.append(f"output '{OUTPUT_SCORE}' has shape {score.shape}, expected [N]")
    if spec.has_pixel_map and OUTPUT_PIXEL_MAP not in outputs:
        problems.append(f"metadata says has_pixel_map but output '{OUTPUT_PIXEL_MAP}' is missing")
    if spec.ood_thresholds and OUTPUT_OOD not in outputs:
        problems.append(f"metadata has ood_thresholds but output '{OUTPUT_OOD}' is missing")
    if problems:
        raise ModelLoadError(
            "model graph does not match the model contract: " + "; ".join(problems)
        )


@dataclass(frozen=True)
class Scored:
    """One face's model outputs: bona fide probability, and the out-of-distribution
    distance (None when the model has no OOD output)."""

    score: float
    ood_distance: float | None = None


class InferenceEngine:
    """A loaded, validated FlexLive ONNX model (create with :meth:`load`)."""

    def __init__(
        self,
        session: ort.InferenceSession,
        spec: ModelSpec,
        info: ModelInfo,
        *,
        max_batch: int = 16,
    ) -> None:
        self._session: ort.InferenceSession | None = session
        self.spec = spec
        self.info = info
        self.max_batch = max_batch
        self.warmed = False
        self._lock = threading.Lock()
        # The OOD distance is read only when the model calibrated thresholds for it.
        self._outputs = [OUTPUT_SCORE] + ([OUTPUT_OOD] if spec.ood_thresholds else [])

    # -- lifecycle --------------------------------------------------------------------
    @classmethod
    def load(
        cls,
        path: str | Path,
        settings: Any = None,
        *,
        providers: str | None = None,
        intra_op_threads: int | None = None,
        max_batch: int | None = None,
        name: str | None = None,
    ) -> InferenceEngine:
        """Open and validate a model; settings (a :class:`service.settings.Settings`)
        provide defaults for the keyword options. ``name``: the name the model is served
        under (``LIVENESS_MODELS``), reported as ``info.name``; default: its metadata name."""
        path = Path(path)
        providers = str(providers or getattr(settings, "providers", "auto"))
        if intra_op_threads is None:
            intra_op_threads = int(getattr(settings, "intra_op_threads", 2))
        if max_batch is None:
            max_batch = int(getattr(settings, "max_batch", 16))
        if not path.is_file():
            raise ModelLoadError(
                f"model file {path} does not exist; set "
                + (f"'{name}=' in LIVENESS_MODELS" if name else "LIVENESS_MODEL_PATH or --model")
                + " to a FlexLive ONNX model (`liveness export` writes one)"
            )
        options = session_options(
            intra_op_threads, spinning=bool(getattr(settings, "intra_op_spinning", False))
        )
        chosen = choose_providers(providers)
        try:
            session = inference_session(path, options, chosen)
        except Exception as exc:  # onnxruntime raises its own exception types
            raise ModelLoadError(f"{path} is not a loadable ONNX model: {exc}") from None
        meta = session.get_modelmeta().custom_metadata_map
        try:
            spec = ModelSpec.from_metadata(meta)
        except ModelSpecError as exc:
            raise ModelLoadError(f"{path}: {exc}") from None
        try:
            check_graph(session, spec)
        except ModelLoadError as exc:
            raise ModelLoadError(f"{path}: {exc}") from None
        info = ModelInfo(
            name=name or spec.name,
            version=spec.version,
            sha256=file_sha256(path),
            path=str(path),
            providers=tuple(session.get_providers()),
        )
        logger.info(
            "model loaded",
            extra={
                "model": info.name,
                "version": spec.version,
                "sha256": info.sha256,
                "providers": list(info.providers),
                "input_size": spec.input_size,
            },
        )
        return cls(session, spec, info, max_batch=max_batch)

    def warmup(self, runs: int = 2) -> float:
        """Run every supported modality subset ``runs`` times; returns elapsed ms."""
        start = time.perf_counter()
        rng = np.random.default_rng(0)
        S = self.spec.input_size
        crops = []
        for name in self.spec.supported_subsets:
            subset = parse_subset(name)
            crops.append(
                FaceCrops(
                    rgb=rng.integers(0, 255, (S, S, 3), dtype=np.uint8)
                    if "rgb" in subset
                    else None,
                    depth=rng.integers(400, 600, (S, S), dtype=np.uint16)
                    if "depth" in subset
                    else None,
                    ir=rng.integers(0, 255, (S, S), dtype=np.uint8) if "ir" in subset else None,
                )
            )
        for _ in range(runs):
            for c in crops:  # batch 1, the latency-critical shape
                out = self.predict([c])
                if isinstance(out[0], Exception):
                    raise ModelLoadError(f"warm-up inference failed: {out[0]}")
            self.predict(crops)
        self.warmed = True
        elapsed = (time.perf_counter() - start) * 1000
        logger.info("model warmed", extra={"warmup_ms": round(elapsed, 1)})
        return elapsed

    def close(self) -> None:
        with self._lock:
            self._session = None
            self.warmed = False

    @property
    def ready(self) -> bool:
        return self._session is not None and self.warmed

    # -- run ----------------------------------------------------------------------------
    def predict(self, crops: Sequence[FaceCrops]) -> list[float | Exception]:
        """Bona fide probability per face, or the exception that face failed with."""
        return [r if isinstance(r, Exception) else r.score for r in self.score(crops)]

    def score(self, crops: Sequence[FaceCrops]) -> list[Scored | Exception]:
        """Per face: its score and out-of-distribution distance, or the exception that face
        failed with (one bad face fails alone)."""
        session = self._session
        if session is None:
            raise EngineClosedError("the inference engine is closed")
        results: list[Scored | Exception] = [FaceInferenceError("not scored")] * len(crops)
        feeds: list[tuple[int, dict[str, np.ndarray]]] = []
        for i, c in enumerate(crops):
            try:
                feeds.append((i, preprocess(c, self.spec)))
            except Exception as exc:  # one bad face fails alone
                results[i] = FaceInferenceError(f"face {i}: {exc}")
        for start in range(0, len(feeds), self.max_batch):
            chunk = feeds[start : start + self.max_batch]
            batch = {k: np.stack([f[k] for _, f in chunk]) for k in INPUT_NAMES}
            try:
                out = session.run(self._outputs, batch)
            except Exception as exc:
                logger.exception("inference failed for a batch of %d", len(chunk))
                for i, _ in chunk:
                    results[i] = FaceInferenceError(f"face {i}: inference failed: {exc}")
                continue
            scores = np.asarray(out[0], dtype=np.float64).reshape(-1)
            oods = (
                np.asarray(out[1], dtype=np.float64).reshape(-1)
                if len(out) > 1
                else np.full(len(chunk), np.nan)
            )
            for (i, _), s, d in zip(chunk, scores, oods, strict=True):
                if not np.isfinite(s):
                    results[i] = FaceInferenceError(f"face {i}: model returned a non-finite score")
                else:
                    dist = float(d) if np.isfinite(d) else None
                    results[i] = Scored(float(min(1.0, max(0.0, s))), dist)
        return results
