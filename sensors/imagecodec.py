"""Image file bytes → pixel arrays, the one decoder of the API uploads and the folder source.

What it owns, for every caller alike:

- **Format sniffing** from the signature (never the file name): PNG, JPEG, NumPy ``.npy``,
  WebP, TIFF, BMP, with GIF and JPEG 2000 recognised to be refused by name. A caller
  passes the formats it accepts (the REST API: PNG, JPEG, ``.npy``).
- **The pixel limit before decoding**: the width and height are read from the header and
  checked, so a small file cannot expand into a huge image; ``.npy`` is read with
  ``allow_pickle=False`` and its declared size is checked against the bytes present.
- **Refusing broken data** instead of analysing it: truncated PNG/JPEG (no end marker),
  data the codec cannot decode, and JPEGs whose decoder reports corrupt entropy-coded
  data ("Corrupt JPEG data: premature end of data segment", "... extraneous bytes before
  marker", "bad Huffman code", "Premature end of JPEG file"). libjpeg *decodes* such a
  file — grey blocks where the data was bad — and only says so on stderr, so the decoder
  captures what native code writes to stderr during the decode (:func:`_decode_capturing`)
  and reads the verdict from it. Those codec lines never reach stderr as plain text:
  they are logged as warnings through :mod:`logging` (one JSON line in the service).
- **EXIF orientation**: a phone writes the sensor's pixels and an orientation tag (1–8)
  saying how to turn them upright. OpenCV's ``IMREAD_UNCHANGED`` — needed for 16-bit and
  alpha — ignores it, so the tag is read here (JPEG APP1 ``Exif``, PNG ``eXIf``, WebP
  ``EXIF``) and applied to the array; TIFF files are turned upright by OpenCV itself.
  Every modality is oriented the same way, so registered images stay registered.

Colour images come back as OpenCV gives them (BGR/BGRA); converting to the FrameBundle's
RGB is the caller's (one boundary per caller: :mod:`service.api.decoding`,
:mod:`sensors.folder`). ``.npy`` arrays come back as stored.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import re
import struct
import sys
import tempfile
import threading
from collections.abc import Callable, Collection, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import IO

import cv2
import numpy as np

log = logging.getLogger(__name__)

#: The service's default pixel limit; callers without settings (the folder source) use it.
DEFAULT_MAX_PIXELS = 4096 * 4096

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
JPEG_MAGIC = b"\xff\xd8\xff"
NPY_MAGIC = b"\x93NUMPY"

#: format → the name used in messages
FORMAT_NAMES = {
    "png": "PNG",
    "jpeg": "JPEG",
    "npy": "NumPy .npy",
    "webp": "WebP",
    "tiff": "TIFF",
    "bmp": "BMP",
    "gif": "GIF",
    "jp2": "JPEG 2000",
}
#: formats this module can decode (GIF and JPEG 2000 are only recognised, to be refused)
DECODABLE = frozenset({"png", "jpeg", "npy", "webp", "tiff", "bmp"})

_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
_EXIF_ORIENTATION = 0x0112
_TIFF_WIDTH, _TIFF_LENGTH = 0x0100, 0x0101

#: libjpeg(-turbo) warnings that mean the pixels are not what was encoded. Other warnings
#: (an unknown JFIF revision, a bad ICC marker) leave the pixels intact and are only logged.
_CORRUPT_JPEG = re.compile(
    r"^(Corrupt JPEG data: (?!bad ICC marker)|Premature end of JPEG file"
    r"|Invalid SOS parameters|Inconsistent progression sequence)"
)


class ImageCodecError(ValueError):
    """Bytes that cannot be turned into an image; ``kind`` is the stable problem kind.

    Kinds: ``empty-file``, ``unsupported-format``, ``undecodable-image``,
    ``truncated-image``, ``image-too-large``, ``unsupported-dtype``, ``bad-shape``.
    The message does not name the field or file: the caller prefixes it.
    """

    def __init__(self, detail: str, kind: str = "undecodable-image") -> None:
        super().__init__(detail)
        self.detail = detail
        self.kind = kind


@dataclass(frozen=True)
class DecodedImage:
    array: np.ndarray  # codec images BGR/BGRA (or grey), upright; .npy as stored
    format: str  # a key of FORMAT_NAMES
    orientation: int = 1  # the EXIF orientation that was applied (1 = none)


# -- sniffing and headers ----------------------------------------------------------------
def sniff(data: bytes) -> str | None:
    """The format of ``data`` from its signature (a key of FORMAT_NAMES), or None."""
    if data.startswith(PNG_MAGIC):
        return "png"
    if data.startswith(JPEG_MAGIC):
        return "jpeg"
    if data.startswith(NPY_MAGIC):
        return "npy"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        return "tiff"
    if data.startswith(b"BM"):
        return "bmp"
    if data.startswith(b"GIF8"):
        return "gif"
    if data.startswith(b"\x00\x00\x00\x0cjP"):
        return "jp2"
    return None


def _u16(data: bytes, at: int, big: bool) -> int:
    return int(struct.unpack_from(">H" if big else "<H", data, at)[0])


def _u32(data: bytes, at: int, big: bool) -> int:
    return int(struct.unpack_from(">I" if big else "<I", data, at)[0])


def _tiff_tags(tiff: bytes, wanted: Collection[int]) -> dict[int, int]:
    """The first value of each wanted SHORT/LONG tag of IFD 0 of a TIFF structure.

    Used for a TIFF file's size and for the EXIF block (a TIFF structure) of JPEG, PNG
    and WebP. Malformed structures give what could be read, never an exception.
    """
    out: dict[int, int] = {}
    if len(tiff) < 8 or tiff[:2] not in (b"II", b"MM"):
        return out
    big = tiff[:2] == b"MM"
    try:
        if _u16(tiff, 2, big) != 42:
            return out
        ifd = _u32(tiff, 4, big)
        count = _u16(tiff, ifd, big)
        for k in range(min(count, 1024)):
            entry = ifd + 2 + 12 * k
            tag, kind = _u16(tiff, entry, big), _u16(tiff, entry + 2, big)
            if tag in wanted and tag not in out:
                if kind == 3:  # SHORT, stored left-justified in the 4-byte value field
                    out[tag] = _u16(tiff, entry + 8, big)
                elif kind == 4:  # LONG
                    out[tag] = _u32(tiff, entry + 8, big)
    except struct.error:  # ran off the end: keep what was read
        pass
    return out


def _strip_exif_prefix(block: bytes) -> bytes:
    return block[6:] if block.startswith(b"Exif\x00\x00") else block


def _jpeg_segments(data: bytes) -> list[tuple[int, int, int]]:
    """(marker, payload start, payload end) of the JPEG header segments, up to SOS."""
    out: list[tuple[int, int, int]] = []
    i, n = 2, len(data)
    while i + 4 <= n:
        if data[i] != 0xFF:
            break
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0x01, *range(0xD0, 0xD9)):  # standalone markers
            i += 2
            continue
        (seg_len,) = struct.unpack_from(">H", data, i + 2)
        out.append((marker, i + 4, min(i + 2 + seg_len, n)))
        if marker == 0xDA or seg_len < 2:  # start of scan (or a broken length): stop
            break
        i += 2 + seg_len
    return out


def _png_chunks(data: bytes) -> list[tuple[bytes, int, int]]:
    """(type, data start, data end) of each PNG chunk (without reading the data)."""
    out: list[tuple[bytes, int, int]] = []
    i, n = 8, len(data)
    while i + 8 <= n:
        (length,) = struct.unpack_from(">I", data, i)
        kind = data[i + 4 : i + 8]
        out.append((kind, i + 8, min(i + 8 + length, n)))
        if kind == b"IEND":
            break
        i += 12 + length
    return out


def _webp_chunks(data: bytes) -> list[tuple[bytes, int, int]]:
    out: list[tuple[bytes, int, int]] = []
    i, n = 12, len(data)
    while i + 8 <= n:
        kind = data[i : i + 4]
        (length,) = struct.unpack_from("<I", data, i + 4)
        out.append((kind, i + 8, min(i + 8 + length, n)))
        i += 8 + length + (length & 1)  # chunks are padded to an even size
    return out


def image_size(kind: str, data: bytes) -> tuple[int, int] | None:
    """(width, height) from the header of a PNG/JPEG/WebP/TIFF/BMP file, None if unreadable."""
    try:
        if kind == "png":
            if len(data) < 24 or data[12:16] != b"IHDR":
                return None
            w, h = struct.unpack_from(">II", data, 16)
            return int(w), int(h)
        if kind == "jpeg":
            for marker, start, end in _jpeg_segments(data):
                if marker in _JPEG_SOF and end - start >= 5:
                    h, w = struct.unpack_from(">HH", data, start + 1)
                    return int(w), int(h)
            return None
        if kind == "webp":
            for chunk, start, end in _webp_chunks(data)[:1]:
                body = data[start:end]
                if chunk == b"VP8X" and len(body) >= 10:
                    w = int.from_bytes(body[4:7], "little") + 1
                    h = int.from_bytes(body[7:10], "little") + 1
                    return w, h
                if chunk == b"VP8L" and len(body) >= 5 and body[0] == 0x2F:
                    bits = int.from_bytes(body[1:5], "little")
                    return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
                if chunk == b"VP8 " and len(body) >= 10 and body[3:6] == b"\x9d\x01\x2a":
                    w, h = struct.unpack_from("<HH", body, 6)
                    return int(w) & 0x3FFF, int(h) & 0x3FFF
            return None
        if kind == "tiff":
            tags = _tiff_tags(data, (_TIFF_WIDTH, _TIFF_LENGTH))
            if _TIFF_WIDTH in tags and _TIFF_LENGTH in tags:
                return tags[_TIFF_WIDTH], tags[_TIFF_LENGTH]
            return None
        if kind == "bmp":
            (dib,) = struct.unpack_from("<I", data, 14)
            if dib == 12:
                w, h = struct.unpack_from("<HH", data, 18)
                return int(w), int(h)
            w, h = struct.unpack_from("<ii", data, 18)
            return int(w), abs(int(h))
    except struct.error:
        return None
    return None


def exif_orientation(kind: str, data: bytes) -> int:
    """The EXIF orientation tag (1–8) of a JPEG/PNG/WebP file; 1 when absent or invalid."""
    block = b""
    if kind == "jpeg":
        for marker, start, end in _jpeg_segments(data):
            if marker == 0xE1 and data[start : start + 6] == b"Exif\x00\x00":
                block = data[start + 6 : end]
                break
    elif kind == "png":
        for chunk, start, end in _png_chunks(data):
            if chunk == b"eXIf":
                block = _strip_exif_prefix(data[start:end])
                break
            if chunk == b"IDAT":  # eXIf must come before the image data
                break
    elif kind == "webp":
        for chunk, start, end in _webp_chunks(data):
            if chunk == b"EXIF":
                block = _strip_exif_prefix(data[start:end])
                break
    if not block:
        return 1
    value = _tiff_tags(block, (_EXIF_ORIENTATION,)).get(_EXIF_ORIENTATION, 1)
    return value if 1 <= value <= 8 else 1


def apply_orientation(array: np.ndarray, orientation: int) -> np.ndarray:
    """Turn stored pixels upright as EXIF ``orientation`` says (works for H×W and H×W×C).

    1 as stored · 2 mirrored left-right · 3 turned 180° · 4 mirrored top-bottom ·
    5 transposed (mirrored about the main diagonal) · 6 turned 90° clockwise ·
    7 transversed (mirrored about the anti-diagonal) · 8 turned 90° counter-clockwise.
    """
    ops = {
        1: lambda a: a,
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1],
        5: lambda a: np.swapaxes(a, 0, 1),
        6: lambda a: np.rot90(a, -1),
        7: lambda a: np.swapaxes(a[::-1, ::-1], 0, 1),
        8: lambda a: np.rot90(a, 1),
    }
    if orientation not in ops:
        raise ValueError(f"EXIF orientation must be 1..8, got {orientation}")
    return np.ascontiguousarray(ops[orientation](array))


def _truncated(kind: str, data: bytes) -> bool:
    if kind == "png":
        return b"IEND" not in data[-32:]
    if kind == "jpeg":
        return not data.rstrip(b"\x00\r\n\t ").endswith(b"\xff\xd9")
    return False


def check_pixels(w: int, h: int, max_pixels: int) -> None:
    if w <= 0 or h <= 0:
        raise ImageCodecError(f"image header says {w}×{h}")
    if w * h > max_pixels:
        raise ImageCodecError(
            f"image is {w}×{h} = {w * h} pixels; the limit is {max_pixels}", "image-too-large"
        )


# -- native stderr -----------------------------------------------------------------------
class _StderrCapture:
    """Redirects file descriptor 2 into a scratch file around one native call.

    libjpeg and libpng report through ``fprintf(stderr)``, which neither OpenCV's log
    level nor Python can intercept. Calls are serialised by a lock (one decode at a time
    per process: a few milliseconds each). Another thread writing to stderr meanwhile
    lands in the scratch file too; complete JSON lines are handed back to stderr
    unchanged, anything else is logged (so the log stays one JSON object per line).
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self._scratch: IO[bytes] | None = None
        self._pid = -1

    def _file(self) -> IO[bytes]:
        if self._scratch is None or self._pid != os.getpid():  # new process after fork
            if hasattr(os, "memfd_create"):
                self._scratch = os.fdopen(os.memfd_create("flexlive-codec-stderr"), "w+b")
            else:  # pragma: no cover - not Linux
                self._scratch = tempfile.TemporaryFile()  # noqa: SIM115 - kept open
            self._pid = os.getpid()
        return self._scratch

    def call(self, fn: Callable[..., object], *args: object) -> tuple[object, list[str]]:
        with self.lock:
            scratch = self._file()
            scratch.seek(0)
            scratch.truncate()
            with contextlib.suppress(AttributeError, OSError, ValueError):
                sys.stderr.flush()  # Python's own buffered text goes to the real stderr
            try:
                saved = os.dup(2)
            except OSError:  # no stderr at all (closed by a supervisor): nothing to keep clean
                return fn(*args), []
            try:
                os.dup2(scratch.fileno(), 2)
                try:
                    result = fn(*args)
                finally:
                    os.dup2(saved, 2)
            finally:
                os.close(saved)
            scratch.seek(0)
            captured = scratch.read().decode("utf-8", "replace")
        codec: list[str] = []
        for line in captured.splitlines():
            if not line.strip():
                continue
            if line.startswith("{") and _is_json(line):
                with contextlib.suppress(OSError):  # another thread's log line
                    os.write(2, (line + "\n").encode("utf-8"))
            else:
                codec.append(line.strip())
        return result, codec


def _is_json(line: str) -> bool:
    try:
        json.loads(line)
    except ValueError:
        return False
    return True


_STDERR = _StderrCapture()


def _decode_capturing(data: bytes, flags: int) -> tuple[np.ndarray | None, list[str]]:
    """``cv2.imdecode`` with what the codec wrote to stderr (a list of lines)."""
    buf = np.frombuffer(data, dtype=np.uint8)
    result, lines = _STDERR.call(cv2.imdecode, buf, flags)
    return result if isinstance(result, np.ndarray) else None, lines


_POOL: tuple[int, ThreadPoolExecutor] | None = None


def _codec_pool() -> ThreadPoolExecutor:
    global _POOL
    if _POOL is None or _POOL[0] != os.getpid():  # threads do not survive a fork
        _POOL = (os.getpid(), ThreadPoolExecutor(max_workers=2, thread_name_prefix="codec"))
    return _POOL[1]


def _imdecode(data: bytes) -> np.ndarray | None:
    try:
        result = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    except cv2.error:  # refused by the codec: the verdict is "corrupt data"
        return None
    return result if isinstance(result, np.ndarray) else None


def _decode_together(files: Mapping[str, bytes]) -> tuple[dict[str, np.ndarray | None], list[str]]:
    """``cv2.imdecode`` of every file inside one stderr capture: the first in this thread,
    the others on the codec threads at the same time; with all the codec lines."""

    def run() -> dict[str, np.ndarray | None]:
        names = list(files)
        futures = {n: _codec_pool().submit(_imdecode, files[n]) for n in names[1:]}
        first = _imdecode(files[names[0]])
        return {names[0]: first, **{n: f.result() for n, f in futures.items()}}

    result, lines = _STDERR.call(run)
    assert isinstance(result, dict)
    return result, lines


# -- decoding ----------------------------------------------------------------------------
def _load_npy(data: bytes, max_pixels: int) -> np.ndarray:
    fh = io.BytesIO(data)
    try:
        version = np.lib.format.read_magic(fh)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(fh)
        else:
            shape, _, dtype = np.lib.format.read_array_header_2_0(fh)
    except Exception as exc:
        raise ImageCodecError(f"malformed .npy header ({exc})") from None
    if dtype.hasobject:
        raise ImageCodecError(".npy arrays of Python objects are not accepted", "unsupported-dtype")
    if len(shape) < 2:
        raise ImageCodecError(
            f".npy array has shape {shape}; an image is H×W or H×W×C", "bad-shape"
        )
    check_pixels(int(shape[1]), int(shape[0]), max_pixels)
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(data) - fh.tell() < expected:
        raise ImageCodecError(
            f".npy file is truncated ({len(data) - fh.tell()} of {expected} data bytes)",
            "truncated-image",
        )
    try:
        arr = np.load(io.BytesIO(data), allow_pickle=False)
    except Exception as exc:
        raise ImageCodecError(f"could not read .npy ({exc})") from None
    return np.ascontiguousarray(arr)


def _accepted_list(accept: Collection[str]) -> str:
    names = [FORMAT_NAMES[k] for k in FORMAT_NAMES if k in accept]
    return ", ".join(names[:-1]) + " or " + names[-1] if len(names) > 1 else names[0]


def _checked(data: bytes, max_pixels: int, accept: Collection[str]) -> DecodedImage | str:
    """Everything before the native decode: a finished ``.npy`` image, or the format of a
    file whose signature, header size and end marker passed (raises otherwise)."""
    if not data:
        raise ImageCodecError("the file is empty", "empty-file")
    kind = sniff(data)
    if kind is None:
        raise ImageCodecError(
            f"not a {_accepted_list(accept)} image ({len(data)} bytes that match none of "
            "their signatures)"
        )
    if kind not in accept or kind not in DECODABLE:
        raise ImageCodecError(
            f"{FORMAT_NAMES[kind]} is not accepted; send {_accepted_list(accept)}",
            "unsupported-format",
        )
    if kind == "npy":
        return DecodedImage(_load_npy(data, max_pixels), kind)
    name = FORMAT_NAMES[kind]
    size = image_size(kind, data)
    if size is None:
        raise ImageCodecError(f"corrupt {name} header")
    check_pixels(size[0], size[1], max_pixels)
    if _truncated(kind, data):
        raise ImageCodecError(
            f"{name} data is truncated (no end-of-image marker)", "truncated-image"
        )
    return kind


def _finished(
    data: bytes, kind: str, arr: np.ndarray | None, codec_lines: list[str]
) -> DecodedImage:
    """The corrupt-data verdict from what the codec said, then the EXIF orientation."""
    name = FORMAT_NAMES[kind]
    corrupt = [line for line in codec_lines if _CORRUPT_JPEG.match(line)] if kind == "jpeg" else []
    if codec_lines:
        log.warning(
            "%s decoder: %s",
            name,
            "; ".join(codec_lines)[:500],
            extra={"codec_messages": codec_lines[:10]},
        )
    if arr is None:
        reason = f" ({codec_lines[0][:120]})" if codec_lines else ""
        raise ImageCodecError(f"corrupt {name} data{reason}")
    if corrupt:
        raise ImageCodecError(f"corrupt {name} data ({corrupt[0][:120]})")
    orientation = exif_orientation(kind, data)
    if orientation != 1:
        arr = apply_orientation(arr, orientation)
    return DecodedImage(arr, kind, orientation)


def decode_image(
    data: bytes,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    accept: Collection[str] = DECODABLE,
) -> DecodedImage:
    """Decode one image file's bytes, upright; raise :class:`ImageCodecError` otherwise.

    Order: signature → accepted format → header size against ``max_pixels`` → truncation
    → decode (codec stderr captured) → corrupt-data verdict → EXIF orientation.
    """
    checked = _checked(data, max_pixels, accept)
    if isinstance(checked, DecodedImage):
        return checked
    # IMREAD_UNCHANGED keeps 16 bits and alpha, and ignores the EXIF orientation, which is
    # applied below (TIFF excepted: OpenCV's TIFF reader turns the image upright itself).
    arr, codec_lines = _decode_capturing(data, cv2.IMREAD_UNCHANGED)
    return _finished(data, checked, arr, codec_lines)


def decode_images(
    files: Mapping[str, bytes],
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    accept: Collection[str] = DECODABLE,
) -> dict[str, DecodedImage | ImageCodecError]:
    """:func:`decode_image` for several files (the modalities of one frame), their native
    decodes run side by side on the codec threads; each name maps to its image or error.

    The codecs release the GIL, so a frame's colour JPEG and depth and IR PNGs decode in
    the time of the slowest. Codec messages cannot be told apart when several decodes
    share the captured stderr: if the shared window caught any, each of those files is
    decoded again on its own, so every verdict and message belongs to its file.
    """
    out: dict[str, DecodedImage | ImageCodecError] = {}
    native: dict[str, str] = {}
    for name, data in files.items():
        try:
            checked = _checked(data, max_pixels, accept)
        except ImageCodecError as exc:
            out[name] = exc
            continue
        if isinstance(checked, DecodedImage):
            out[name] = checked
        else:
            native[name] = checked
    if len(native) == 1:
        (name,) = native
        arrays, lines = _decode_together({name: files[name]})
        shared = {name: (arrays[name], lines)}
    elif native:
        arrays, lines = _decode_together({name: files[name] for name in native})
        if lines:  # whose were they? decode each again, alone
            shared = {n: _decode_capturing(files[n], cv2.IMREAD_UNCHANGED) for n in native}
        else:
            shared = {n: (arrays[n], []) for n in native}
    else:
        shared = {}
    for name, (arr, codec_lines) in shared.items():
        try:
            out[name] = _finished(files[name], native[name], arr, codec_lines)
        except ImageCodecError as exc:
            out[name] = exc
    return {name: out[name] for name in files}
