"""Uploaded bytes → registered modality arrays → :class:`~sensors.bundle.FrameBundle`.

The decoding boundary of the API: PNG/JPEG (8-bit RGB, IR), 16-bit PNG (depth, IR) or
NumPy ``.npy`` (``allow_pickle=False``). The bytes are decoded by
:func:`sensors.imagecodec.decode_image`, the decoder the daemon's folder source uses too:
the image size is read from the header and checked against the pixel limit *before*
decoding, truncated and corrupt files are refused rather than half-decoded, and the EXIF
orientation of a phone photo is applied. OpenCV gives BGR; RGB leaves here in **RGB**
order (``.npy`` RGB arrays are taken as RGB already). Nothing is resized: sizes that
disagree between modalities are refused by :meth:`FrameBundle.validate`.
"""

from __future__ import annotations

import cv2
import numpy as np

from sensors.bundle import FrameBundle
from sensors.imagecodec import ImageCodecError, decode_image, decode_images, sniff
from service.errors import ImageDecodeError, InputError, PayloadTooLargeError

MODALITY_FIELDS = ("rgb", "depth", "ir")
#: what an upload may be (the folder source reads more)
ACCEPTED_FORMATS = frozenset({"png", "jpeg", "npy"})

__all__ = ["ACCEPTED_FORMATS", "MODALITY_FIELDS", "build_bundle", "decode_array", "sniff"]


def _service_error(field: str, exc: ImageCodecError) -> InputError | PayloadTooLargeError:
    detail = f"{field}: {exc.detail}"
    if exc.kind == "image-too-large":
        return PayloadTooLargeError(detail, field=field, kind=exc.kind)
    if exc.kind in ("undecodable-image", "truncated-image"):
        return ImageDecodeError(detail, field=field, kind=exc.kind)
    return InputError(detail, field=field, kind=exc.kind)


def decode_array(field: str, data: bytes, *, max_pixels: int) -> tuple[np.ndarray, str]:
    """Decode one uploaded file; returns (array, format). OpenCV arrays are BGR, upright."""
    try:
        image = decode_image(data, max_pixels=max_pixels, accept=ACCEPTED_FORMATS)
    except ImageCodecError as exc:
        raise _service_error(field, exc) from None
    return image.array, image.format


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
    sent = {field: files[field] for field in MODALITY_FIELDS if field in files}
    decoded = decode_images(sent, max_pixels=max_pixels, accept=ACCEPTED_FORMATS)
    arrays: dict[str, np.ndarray] = {}
    for field, image in decoded.items():  # the first bad field in modality order is named
        if isinstance(image, ImageCodecError):
            raise _service_error(field, image)
        arrays[field] = to_modality(field, image.array, image.format)
    bundle = FrameBundle(
        rgb=arrays.get("rgb"),
        depth=arrays.get("depth"),
        ir=arrays.get("ir"),
        depth_scale=depth_scale,
        source=source,
    )
    return bundle.validate()
