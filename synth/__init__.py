"""Synthetic multi-sensor (RGB / depth / IR) presentation-attack benchmark generator.

Public API (others depend on these names): :data:`SPECIES`, :data:`PROFILES`,
:class:`Scene`, :func:`render_scene`, :func:`render_sequence`, :func:`generate_benchmark`.
numpy + OpenCV only (no torch).
"""

from __future__ import annotations

from synth.profiles import PROFILES
from synth.scene import Scene, render_scene, render_sequence
from synth.species import ALL_SPECIES, BONA_FIDE, SPECIES

__all__ = [
    "ALL_SPECIES",
    "BONA_FIDE",
    "PROFILES",
    "SPECIES",
    "Scene",
    "generate_benchmark",
    "render_scene",
    "render_sequence",
]


def __getattr__(name: str) -> object:
    # The benchmark writer pulls in I/O and progress bars; import it on first use.
    if name == "generate_benchmark":
        from synth.benchmark import generate_benchmark

        return generate_benchmark
    raise AttributeError(name)
