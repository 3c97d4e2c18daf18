"""An image folder: files grouped into bundles by name, ``<key>_<modality>.<ext>``.

``0001_rgb.png``, ``0001_depth.png`` (16-bit PNG) and ``0001_ir.png`` make one bundle;
keys are sorted. ``rgb``/``color`` name colour images (decoded BGR, converted to RGB),
``depth`` 16-bit depth, ``ir``/``infrared`` IR; ``.npy`` files are loaded as arrays.
Files are decoded by :func:`sensors.imagecodec.decode_image`, the REST API's decoder:
the same pixel limit, the same refusal of truncated or corrupt data, and the same EXIF
orientation (a phone photo is turned upright). A key whose images cannot be decoded or
do not match in size is skipped with a warning.
"""

from __future__ import annotations

import logging
import re
import time
from pathlib import Path

import cv2
import numpy as np

from sensors.base import FrameSource, SourceEnded, SourceError
from sensors.bundle import BundleError, FrameBundle
from sensors.config import FolderConfig
from sensors.imagecodec import DEFAULT_MAX_PIXELS, ImageCodecError, decode_image

log = logging.getLogger(__name__)

_NAME = re.compile(r"^(?P<key>.+)[_-](?P<mod>rgb|color|colour|depth|ir|infrared)$", re.IGNORECASE)
_MODALITY = {"rgb": "rgb", "color": "rgb", "colour": "rgb", "depth": "depth", "ir": "ir"}
_MODALITY["infrared"] = "ir"
_EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".npy"}


def scan_folder(path: Path) -> list[tuple[str, dict[str, Path]]]:
    """(key, {modality: file}) for every bundle in ``path``, sorted by key."""
    groups: dict[str, dict[str, Path]] = {}
    for file in sorted(path.iterdir()):
        if file.suffix.lower() not in _EXTENSIONS:
            continue
        match = _NAME.match(file.stem)
        if match is None:
            continue
        groups.setdefault(match["key"], {})[_MODALITY[match["mod"].lower()]] = file
    return sorted(groups.items())


def load_image(file: Path, modality: str, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """One file → the FrameBundle array of ``modality`` (RGB order for colour), upright."""
    try:
        data = file.read_bytes()
        image = decode_image(data, max_pixels=max_pixels)
    except (OSError, ImageCodecError) as exc:
        raise SourceError(f"{file}: {exc}") from None
    array = image.array
    if image.format == "npy":
        return np.ascontiguousarray(array)
    if modality == "rgb":
        if array.dtype == np.uint16:  # as OpenCV's IMREAD_COLOR would: keep the top 8 bits
            array = (array >> 8).astype(np.uint8)
        if array.ndim == 2:
            array = cv2.cvtColor(array, cv2.COLOR_GRAY2RGB)
        elif array.shape[2] == 4:
            array = cv2.cvtColor(array, cv2.COLOR_BGRA2RGB)
        elif array.shape[2] == 3:
            array = cv2.cvtColor(array, cv2.COLOR_BGR2RGB)
        else:
            raise SourceError(f"{file}: a {array.shape[2]}-channel image is not a colour image")
    elif array.ndim == 3:  # an 8-bit IR/depth saved as a 3-channel image
        array = array[:, :, 0]
    return np.ascontiguousarray(array)


class ImageFolderSource(FrameSource):
    kind = "folder"
    live = False

    def __init__(self, config: FolderConfig) -> None:
        super().__init__(config)
        self.config: FolderConfig = config
        self._items: list[tuple[str, dict[str, Path]]] = []
        self._position = 0
        self._next_t = 0.0

    @property
    def description(self) -> str:
        return f"folder:{self.config.path}"

    def _open(self) -> None:
        if not self.config.path.is_dir():
            raise SourceError(f"{self.description}: no such folder")
        self._items = [
            (key, {m: f for m, f in files.items() if m in self.config.modalities})
            for key, files in scan_folder(self.config.path)
        ]
        self._items = [(key, files) for key, files in self._items if files]
        if not self._items:
            raise SourceError(
                f"{self.description}: no images named <key>_<rgb|depth|ir>.<png|jpg|npy>"
            )
        self._position = 0
        self._next_t = time.monotonic()
        log.info("%s: %d bundles", self.description, len(self._items))

    def _read(self, timeout: float | None) -> FrameBundle | None:
        if self._position >= len(self._items):
            raise SourceEnded(f"{self.description}: no more images")
        if self.config.fps:
            delay = self._next_t - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            self._next_t += 1.0 / self.config.fps
        while self._position < len(self._items):
            key, files = self._items[self._position]
            self._position += 1
            try:
                arrays = {m: load_image(f, m) for m, f in files.items()}
                return FrameBundle(
                    rgb=arrays.get("rgb"),
                    depth=arrays.get("depth"),
                    ir=arrays.get("ir"),
                    depth_scale=self.config.depth_scale,
                    source=f"{self.description}/{key}",
                ).validate()
            except (SourceError, BundleError, ValueError) as exc:
                # one bad bundle is skipped, not fatal: the rest of the folder is still good
                log.warning("%s: skipping bundle %r: %s", self.description, key, exc)
        raise SourceEnded(f"{self.description}: no more images")

    def _close(self) -> None:
        self._items = []
