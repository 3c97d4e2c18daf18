"""The RGB expert at serving time: MiniFASNet V2 + V1SE on ONNX Runtime.

Networks trained by their publisher on real live and attack captures, run on the
publisher's crops (:mod:`models.rgb_expert.crop`) of the colour frame around each face
that FlexLive's face stage found. The expert's score is the mean of the chosen networks'
bona fide (class 1) probabilities. By default FlexLive runs **V2 alone**: on the held-out
real people and prints/replays of their photographs it separates as well as the
publisher's mean of V2 and V1SE (AUC 0.950 vs 0.945, 26 people, 94 attacks) at half the
time per face; ``LIVENESS_RGB_EXPERT_NETWORKS=v2+v1se`` runs both.

Like the main engine: load → warm → run → close; thread-safe (no per-call state); one
face that cannot be cropped fails alone.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

from models.rgb_expert import EXPERT_DIR, VARIANTS
from models.rgb_expert.crop import SIDE, expert_crop, publisher_box
from service.engine import ModelLoadError, file_sha256
from service.onnx_runtime import inference_session, session_options

logger = logging.getLogger(__name__)

#: Scores are clipped to [EPS, 1 − EPS] before taking logits.
EPS = 1e-4
#: Networks run by default (``LIVENESS_RGB_EXPERT_NETWORKS``).
DEFAULT_NETWORKS = ("v2",)
NETWORK_NAMES = tuple(v.name for v in VARIANTS)


def parse_networks(text: str) -> tuple[str, ...]:
    """``"v2+v1se"`` → ("v2", "v1se") in the publisher's order; ValueError names the bad part."""
    names = [n.strip().lower() for n in str(text).split("+") if n.strip()]
    bad = [n for n in names if n not in NETWORK_NAMES]
    if bad or not names:
        raise ValueError(
            f"RGB expert networks must be '+'-joined names from {NETWORK_NAMES}, got {text!r}"
        )
    return tuple(n for n in NETWORK_NAMES if n in names)


@dataclass(frozen=True)
class ExpertFile:
    """One ONNX file of the expert: its path, sha256 and crop scale."""

    name: str
    path: str
    sha256: str
    crop_scale: float


def logit(p: float) -> float:
    p = min(1.0 - EPS, max(EPS, float(p)))
    return math.log(p / (1.0 - p))


class RgbExpert:
    """MiniFASNet V2 (crop ×2.7) and/or V1SE (crop ×4.0); create with :meth:`load`."""

    name = "minifasnet"
    licence = "Apache-2.0 (Minivision); see models/rgb_expert/README.md and LICENSE"

    def __init__(self, sessions: list[tuple[ort.InferenceSession, ExpertFile]]) -> None:
        self._sessions: list[tuple[ort.InferenceSession, ExpertFile]] | None = sessions
        self.files = tuple(f for _, f in sessions)
        self.warmed = False
        #: The networks run, e.g. "v2" or "v2+v1se" (what a fusion was calibrated with).
        self.version = "+".join(
            v.name for v in VARIANTS if any(f.name == v.onnx for f in self.files)
        )

    @classmethod
    def load(
        cls,
        directory: str | Path | None = None,
        *,
        intra_op_threads: int = 1,
        providers: Sequence[str] = ("CPUExecutionProvider",),
        networks: Sequence[str] = DEFAULT_NETWORKS,
    ) -> RgbExpert:
        chosen = parse_networks("+".join(networks))
        directory = Path(directory) if directory is not None else EXPERT_DIR
        opts = session_options(intra_op_threads)
        sessions = []
        for variant in (v for v in VARIANTS if v.name in chosen):
            path = directory / variant.onnx
            if not path.is_file():
                raise ModelLoadError(f"RGB expert file {path} is missing")
            try:
                sess = inference_session(path, opts, providers)
            except Exception as exc:  # onnxruntime raises its own exception types
                raise ModelLoadError(f"{path} is not a loadable ONNX model: {exc}") from None
            meta = sess.get_modelmeta().custom_metadata_map
            try:
                scale = float(meta["crop_scale"])
            except (KeyError, ValueError):
                raise ModelLoadError(f"{path}: metadata has no valid 'crop_scale'") from None
            outputs = [o.name for o in sess.get_outputs()]
            if "probs" not in outputs:
                raise ModelLoadError(f"{path}: output 'probs' missing (outputs: {outputs})")
            info = ExpertFile(variant.onnx, str(path), file_sha256(path), scale)
            sessions.append((sess, info))
        loaded = [f"{f.name}:{f.sha256[:12]}" for _, f in sessions]
        logger.info("RGB expert loaded", extra={"expert": loaded})
        return cls(sessions)

    def warmup(self) -> None:
        rng = np.random.default_rng(0)
        frame = rng.integers(0, 255, (240, 320, 3), dtype=np.uint8)
        self.score(frame, [np.array([120.0, 80.0, 200.0, 180.0])])
        self.warmed = True

    def close(self) -> None:
        self._sessions = None
        self.warmed = False

    @property
    def ready(self) -> bool:
        return self._sessions is not None and self.warmed

    def crops(self, rgb: np.ndarray, box: Sequence[float] | np.ndarray) -> list[np.ndarray]:
        """The expert's input crops (BGR, SIDE×SIDE×3 uint8) for one face box
        ``[x1, y1, x2, y2]`` of the RGB frame ``rgb`` (RGB order)."""
        pbox = publisher_box(box)
        # Crop and resize first, then swap channels: the networks take BGR.
        return [expert_crop(rgb, pbox, f.crop_scale)[..., ::-1] for f in self.files]

    def score(
        self, rgb: np.ndarray, boxes: Sequence[Sequence[float] | np.ndarray]
    ) -> list[float | Exception]:
        """Bona fide probability per face box (or the exception that face failed with)."""
        sessions = self._sessions
        if sessions is None:
            raise RuntimeError("the RGB expert is closed")
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError(f"RGB expert needs an H×W×3 uint8 frame, got {rgb.shape} {rgb.dtype}")
        results: list[float | Exception] = [0.0] * len(boxes)
        per_face: list[tuple[int, list[np.ndarray]]] = []
        for i, box in enumerate(boxes):
            try:
                per_face.append((i, self.crops(rgb, box)))
            except Exception as exc:  # one bad face fails alone
                results[i] = ValueError(f"face {i}: no RGB expert crop: {exc}")
        if not per_face:
            return results
        total = np.zeros(len(per_face))
        for k, (sess, _) in enumerate(sessions):
            batch = np.stack([c[k] for _, c in per_face]).astype(np.float32)
            probs = sess.run(["probs"], {"image": batch})[0]
            total += np.asarray(probs, np.float64)[:, 1]
        for (i, _), s in zip(per_face, total / len(sessions), strict=True):
            results[i] = float(s) if np.isfinite(s) else ValueError(f"face {i}: non-finite")
        return results


__all__ = ["DEFAULT_NETWORKS", "SIDE", "ExpertFile", "RgbExpert", "logit", "parse_networks"]
