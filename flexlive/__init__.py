"""FlexLive's Python API: face liveness (presentation attack detection) in-process.

>>> from flexlive import analyze
>>> result = analyze(rgb="photo.jpg")                    # doctest: +SKIP
>>> [face["decision"] for face in result["faces"]]       # doctest: +SKIP
['live']

:class:`Analyzer` loads the model, the face detector and the RGB expert once and scores
captures with the same pipeline, decoder, deployment policy and response schema as
``POST /liveness``: :meth:`Analyzer.analyze` returns a plain ``dict`` equal in shape to the
API's JSON body. :func:`analyze` does the same with a default :class:`Analyzer` built on
first use and kept. See docs/python-api.md.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from types import TracebackType
from typing import Any

from service.engine import ModelLoadError
from service.oneshot import ImageInput, InvalidInputError, LocalScorer
from service.settings import SettingsError

__all__ = [
    "Analyzer",
    "ImageInput",
    "InvalidInputError",
    "ModelLoadError",
    "SettingsError",
    "analyze",
    "default_analyzer",
]


class Analyzer:
    """A loaded model, face stage and RGB expert, ready to score captures.

    Args:
        model_path: a FlexLive ONNX model; None = ``LIVENESS_MODEL_PATH`` or the bundled
            model ``models/default/flexlive-lite.onnx``.
        **settings: any setting of ``liveness serve`` by its name without the prefix, in
            lower case (``operating_point="apcer1"``, ``accepted_modalities="rgb+depth+ir"``,
            ``rgb_expert=False``, ``intra_op_threads=4``, ``max_faces=1`` ...; see
            docs/configuration.md). ``LIVENESS_*`` environment variables apply as they do
            for the server; keyword arguments win over them.

    Raises:
        SettingsError: an unknown setting or a bad value (a ``ValueError``; the message
            names each one).
        ModelLoadError: the model file is missing or does not honour the model contract.
        InvalidInputError: the settings name an operating point the model does not have.

    An analyzer may be used from several threads at once. Close it (or use it as a context
    manager) to release the ONNX Runtime sessions early.
    """

    def __init__(self, model_path: str | os.PathLike[str] | None = None, **settings: Any):
        from service.settings import load_settings

        if model_path is not None:
            settings["model_path"] = Path(model_path)
        self.settings = load_settings(**settings)
        self._scorer = LocalScorer(self.settings)

    @property
    def model(self) -> dict[str, str]:
        """Identity of the loaded model: ``name``, ``version``, ``sha256``."""
        info = self._scorer.engine.info
        return {"name": info.name, "version": info.version, "sha256": info.sha256}

    def warmup(self) -> None:
        """Run every part once so that the first :meth:`analyze` is as fast as the rest."""
        self._scorer.warmup()

    def analyze(
        self,
        rgb: ImageInput | None = None,
        depth: ImageInput | None = None,
        ir: ImageInput | None = None,
        *,
        depth_scale: float = 0.001,
        cropped: bool = False,
        max_faces: int | None = None,
        operating_point: str | None = None,
    ) -> dict[str, Any]:
        """Score the faces of one capture (any non-empty subset of rgb, depth, ir).

        Each modality is a file path, the file's bytes (PNG, JPEG or ``.npy``) or a numpy
        array: colour as ``uint8`` H×W×3 in **RGB** order (convert OpenCV's BGR first),
        depth as ``uint16`` H×W in units of ``depth_scale`` metres (0 = no depth), IR as
        ``uint8``/``uint16`` H×W. Depth and IR are registered to the colour image: all the
        same size.

        Args:
            depth_scale: metres per depth unit (RealSense z16: 0.001).
            cropped: the images are one aligned face crop (no detection).
            max_faces: faces analysed at most (never more than the ``max_faces`` setting).
            operating_point: an operating point of the model (default: the deployment's).

        Returns:
            The body ``POST /liveness`` answers for the same files and options: ``model``,
            ``operating_point``, ``modalities_received``, ``modalities_used``, ``faces``
            (per face ``box``, ``landmarks``, ``score`` = probability of bona fide,
            ``decision`` live/spoof/uncertain, ``quality``, ``reasons``, ``scores``),
            frame ``reasons``, ``timings_ms``, ``detector``, ``scoring`` and a fresh
            ``request_id``. No face is an empty ``faces`` list with reason ``no_face``.

        Raises:
            InvalidInputError: what the API refuses with a 4xx problem (a missing or
                undecodable file, a wrong dtype, sizes that disagree, an unknown operating
                point, a modality set the deployment does not accept); ``field`` and
                ``kind`` say which and why.
        """
        response = self._scorer.score_inputs(
            rgb,
            depth,
            ir,
            depth_scale=depth_scale,
            cropped=cropped,
            max_faces=max_faces,
            operating_point=operating_point,
        )
        body: dict[str, Any] = response.model_dump(mode="json")
        return body

    def close(self) -> None:
        """Release the model's sessions; the analyzer cannot score afterwards."""
        self._scorer.close()

    def __enter__(self) -> Analyzer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


_default: Analyzer | None = None
_default_lock = threading.Lock()


def default_analyzer() -> Analyzer:
    """The :class:`Analyzer` :func:`analyze` uses: built with the default settings (and the
    ``LIVENESS_*`` environment) on first use, then kept for the process."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Analyzer()
        return _default


def analyze(
    rgb: ImageInput | None = None,
    depth: ImageInput | None = None,
    ir: ImageInput | None = None,
    **options: Any,
) -> dict[str, Any]:
    """:meth:`Analyzer.analyze` on :func:`default_analyzer` (the first call loads the
    models, a few seconds; later calls reuse them)."""
    return default_analyzer().analyze(rgb, depth, ir, **options)
