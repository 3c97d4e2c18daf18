"""MTCNN face detector weights as ONNX files (see README.md for provenance and licence).

Only :mod:`models.face_detector.convert` imports torch; the runtime loads the ``*.onnx``
files found next to this module with ONNX Runtime.
"""

from __future__ import annotations

from pathlib import Path

#: Folder holding pnet.onnx, rnet.onnx and onet.onnx.
WEIGHTS_DIR = Path(__file__).resolve().parent
NETS = ("pnet", "rnet", "onet")


def onnx_path(net: str) -> Path:
    """Path of the shipped ONNX file of ``net`` (one of :data:`NETS`)."""
    if net not in NETS:
        raise KeyError(f"unknown MTCNN network '{net}'; expected one of {NETS}")
    return WEIGHTS_DIR / f"{net}.onnx"
