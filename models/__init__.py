"""FlexLive models: the model contract, preprocessing, networks, training, evaluation,
export, datasets and the shipped ONNX models.

Only the training/export side imports torch; ``models.spec``, ``models.preprocess``,
``models.crop`` and ``synth`` are importable without it.
"""

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
DEFAULT_MODEL_PATH = PACKAGE_DIR / "default" / "flexlive-lite.onnx"
