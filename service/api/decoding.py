"""Uploaded bytes → registered modality arrays → :class:`~sensors.bundle.FrameBundle`.

The decoding boundary of the API: PNG/JPEG (8-bit RGB, IR), 16-bit PNG (depth, IR) or
NumPy ``.npy`` (``allow_pickle=False``). OpenCV gives BGR; RGB leaves here in **RGB**
order (``.npy`` RGB arrays are taken as RGB already). The image size is read from the
header and checked against the pixel limit *before* decoding, truncated files are
refused rather than half-decoded, and nothing is resized: sizes that disagree between
modalities are refused by :meth:`FrameBundle.validate`.
"""

from __future__ import annotations

import io
import struct

import cv2
import numpy as np

from sensors.bundle import FrameBundle
from service.errors import ImageDecodeError, InputError, PayloadTooLargeError

MODALITY_FIELDS = ("rgb", "depth", "ir")

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
JPEG_MAGIC = b"\xff\xd8\xff"
NPY_MAGIC = b"\x93NUMPY"
_OTHER_FORMATS = {
    b"BM": "BMP",
    b"GIF8": "GIF",
    b"II*\x00": "TIFF",
    b"MM\x00*": "TIFF",
    b"\x00\x00\x00\x0cjP": "JPEG 2000",
}
_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def sniff(data: bytes) -> str | None:
    """'png', 'jpeg', 'npy' or None."""
    if data.startswith(PNG_MAGIC):
        return "png"
    if data.startswith(JPEG_MAGIC):
        return "jpeg"
    if data.startswith(NPY_MAGIC):
        return "npy"
    return None


def _png_size(data: bytes) -> tuple[int, int] | None:
    if len(data) < 24 or data[12:16] != b"IHDR":
        return None
    w, h = struct.unpack(">II", data[16:24])
    return int(w), int(h)


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    i, n = 2, len(data)
    while i + 4 <= n:
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0x01, *range(0xD0, 0xD9)):
            i += 2
            continue
        if marker == 0xDA:  # start of scan before any frame header
            return None
        (seg_len,) = struct.unpack(">H", data[i + 2 : i + 4])
        if marker in _JPEG_SOF and i + 9 <= n:
            h, w = struct.unpack(">HH", data[i + 5 : i + 9])
            return int(w), int(h)
        i += 2 + seg_len
    return None


def _truncated(kind: str, data: bytes) -> bool:
    if kind == "png":
        return b"IEND" not in data[-32:]
    if kind == "jpeg":
        return not data.rstrip(b"\x00\r\n\t ").endswith(b"\xff\xd9")
    return False


def _load_npy(field: str, data: bytes, max_pixels: int) -> np.ndarray:
    fh = io.BytesIO(data)
    try:
        version = np.lib.format.read_magic(fh)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(fh)
        else:
            shape, _, dtype = np.lib.format.read_array_header_2_0(fh)
    except Exception as exc:
        raise ImageDecodeError(f"{field}: malformed .npy header ({exc})", field=field) from None
    if dtype.hasobject:
        raise InputError(
            f"{field}: .npy arrays of Python objects are not accepted",
            field=field,
            kind="unsupported-dtype",
        )
    if len(shape) < 2:
        raise InputError(
            f"{field}: .npy array has shape {shape}; an image is H×W or H×W×C",
            field=field,
            kind="bad-shape",
        )
    _check_pixels(field, int(shape[1]), int(shape[0]), max_pixels)
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(data) - fh.tell() < expected:
        raise ImageDecodeError(
            f"{field}: .npy file is truncated ({len(data) - fh.tell()} of {expected} data bytes)",
            field=field,
            kind="truncated-image",
        )
    try:
        arr = np.load(io.BytesIO(data), allow_pickle=False)
    except Exception as exc:
        raise ImageDecodeError(f"{field}: could not read .npy ({exc})", field=field) from None
    return np.ascontiguousarray(arr)


def _check_pixels(field: str, w: int, h: int, max_pixels: int) -> None:
    if w <= 0 or h <= 0:
        raise ImageDecodeError(f"{field}: image header says {w}×{h}", field=field)
    if w * h > max_pixels:
        raise PayloadTooLargeError(
            f"{field}: image is {w}×{h} = {w * h} pixels; the limit is {max_pixels}",
            field=field,
            kind="image-too-large",
        )


def decode_array(field: str, data: bytes, *, max_pixels: int) -> tuple[np.ndarray, str]:
    """Decode one uploaded file; returns (array as stored, format). OpenCV arrays are BGR."""
    if not data:
        raise InputError(f"{field}: the file is empty", field=field, kind="empty-file")
    kind = sniff(data)
    if kind is None:
        for magic, name in _OTHER_FORMATS.items():
            if data.startswith(magic):
                raise InputError(
                    f"{field}: {name} is not accepted; send PNG, JPEG or .npy",
                    field=field,
                    kind="unsupported-format",
                )
        if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
            raise InputError(
                f"{field}: WebP is not accepted; send PNG, JPEG or .npy",
                field=field,
                kind="unsupported-format",
            )
        raise ImageDecodeError(
            f"{field}: not a PNG, JPEG or NumPy .npy image ({len(data)} bytes that match none "
            "of their signatures)",
            field=field,
        )
    if kind == "npy":
        return _load_npy(field, data, max_pixels), kind
    size = _png_size(data) if kind == "png" else _jpeg_size(data)
    if size is None:
        raise ImageDecodeError(f"{field}: corrupt {kind.upper()} header", field=field)
    _check_pixels(field, size[0], size[1], max_pixels)
    if _truncated(kind, data):
        raise ImageDecodeError(
            f"{field}: {kind.upper()} data is truncated (no end-of-image marker)",
            field=field,
            kind="truncated-image",
        )
    arr = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    if arr is None:
        raise ImageDecodeError(f"{field}: corrupt {kind.upper()} data", field=field)
    return arr, kind


def _dtype_error(field: str, detail: str) -> InputError:
    return InputError(f"{field}: {detail}", field=field, kind="unsupported-dtype")


def to_modality(field: str, arr: np.ndarray, kind: str) -> np.ndarray:
    """Check and convert a decoded array to the FrameBundle convention of ``field``."""
    from_cv2 = kind != "npy"
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if field == "rgb":
        if arr.ndim != 3 or arr.shape[2] not in (3, 4) or (arr.shape[2] == 4 and not from_cv2):
            got = f"{arr.shape[2]} channels" if arr.ndim == 3 else f"{arr.ndim} dimensions"
            if arr.ndim == 2:
                got = "a single-channel image"
            raise InputError(
                f"rgb: expected a colour image H×W×3, got {got} (shape {arr.shape})",
                field=field,
                kind="bad-shape",
            )
        if arr.dtype != np.uint8:
            raise _dtype_error(field, f"expected 8-bit colour (uint8), got {arr.dtype}")
        if from_cv2:
            code = cv2.COLOR_BGRA2RGB if arr.shape[2] == 4 else cv2.COLOR_BGR2RGB
            arr = cv2.cvtColor(arr, code)
        return np.ascontiguousarray(arr)
    if arr.ndim == 3 and field == "ir" and from_cv2 and arr.shape[2] in (3, 4):
        # Grey IR saved as a colour PNG/JPEG: accept it when the channels agree.
        b, g, r = arr[:, :, 0], arr[:, :, 1], arr[:, :, 2]
        if np.array_equal(b, g) and np.array_equal(g, r):
            arr = b
    if arr.ndim != 2:
        raise InputError(
            f"{field}: expected a single-channel H×W image, got shape {arr.shape}",
            field=field,
            kind="bad-shape",
        )
    if field == "depth" and arr.dtype != np.uint16:
        raise _dtype_error(
            field,
            f"expected 16-bit depth (uint16, units of depth_scale metres; 16-bit PNG or .npy), "
            f"got {arr.dtype}",
        )
    if field == "ir" and arr.dtype not in (np.uint8, np.uint16):
        raise _dtype_error(field, f"expected 8- or 16-bit IR (uint8/uint16), got {arr.dtype}")
    return np.ascontiguousarray(arr)


def build_bundle(
    files: dict[str, bytes], *, depth_scale: float, max_pixels: int, source: str = "api"
) -> FrameBundle:
    """Decode the uploaded modalities into a validated FrameBundle."""
    if not files:
        raise InputError("send at least one of rgb, depth, ir", field="body", kind="empty-request")
    arrays: dict[str, np.ndarray] = {}
    for field in MODALITY_FIELDS:
        if field in files:
            arr, kind = decode_array(field, files[field], max_pixels=max_pixels)
            arrays[field] = to_modality(field, arr, kind)
    bundle = FrameBundle(
        rgb=arrays.get("rgb"),
        depth=arrays.get("depth"),
        ir=arrays.get("ir"),
        depth_scale=depth_scale,
        source=source,
    )
    return bundle.validate()
