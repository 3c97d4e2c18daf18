"""The shared image decoder (sensors.imagecodec): EXIF orientation, corrupt data, stderr.

Orientation is checked on a real photograph (a held-out congressional portrait, public
domain, synth/assets/SOURCE.md) stored turned and tagged with each of the eight EXIF
orientations, written both by Pillow and by hand (big-endian APP1), and in PNG/WebP
containers; the oracle is the upright original, not the decoder's own arithmetic.
"""

from __future__ import annotations

import io
import json
import os
import struct
import threading
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from sensors.base import SourceError
from sensors.config import FolderConfig, create_source
from sensors.imagecodec import (
    ImageCodecError,
    apply_orientation,
    decode_image,
    decode_images,
    exif_orientation,
)

ROOT = Path(__file__).resolve().parents[2]
PORTRAIT = ROOT / "synth" / "assets" / "holdout" / "015112.jpg"

#: stored = STORE[o](upright) is what a camera writes for orientation o (the inverse of
#: what a viewer applies), written independently of the decoder's table.
STORE = {
    1: lambda a: a,
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1],
    5: lambda a: np.transpose(a, (1, 0, 2)) if a.ndim == 3 else a.T,
    6: lambda a: np.rot90(a, 1),  # the viewer turns it 90° clockwise
    7: lambda a: np.rot90(a, -1)[::-1],
    8: lambda a: np.rot90(a, -1),  # the viewer turns it 90° counter-clockwise
}


def upright_bgr() -> np.ndarray:
    bgr = cv2.imread(str(PORTRAIT), cv2.IMREAD_COLOR)
    assert bgr is not None and bgr.shape[0] != bgr.shape[1]  # not square: turns show
    return bgr


def exif_tiff(orientation: int, big_endian: bool) -> bytes:
    """A minimal EXIF TIFF block: IFD0 with one Orientation (SHORT) entry, by hand."""
    e = ">" if big_endian else "<"
    head = (b"MM" if big_endian else b"II") + struct.pack(e + "HI", 42, 8)
    ifd = struct.pack(e + "H", 1) + struct.pack(e + "HHIHH", 0x0112, 3, 1, orientation, 0)
    return head + ifd + struct.pack(e + "I", 0)


def jpeg_with_app1(bgr: np.ndarray, orientation: int) -> bytes:
    """OpenCV's JPEG with a hand-made big-endian APP1 Exif segment right after SOI."""
    data = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, 95])[1].tobytes()
    payload = b"Exif\x00\x00" + exif_tiff(orientation, big_endian=True)
    app1 = b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload
    return data[:2] + app1 + data[2:]


def jpeg_by_pillow(bgr: np.ndarray, orientation: int) -> bytes:
    pil = pytest.importorskip("PIL.Image")
    exif = pil.Exif()
    exif[0x0112] = orientation
    buf = io.BytesIO()
    pil.fromarray(np.ascontiguousarray(bgr[:, :, ::-1])).save(
        buf, "JPEG", quality=95, exif=exif.tobytes()
    )
    return buf.getvalue()


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_with_exif(arr: np.ndarray, orientation: int) -> bytes:
    data = cv2.imencode(".png", arr)[1].tobytes()
    end_of_ihdr = 8 + 8 + 13 + 4
    chunk = png_chunk(b"eXIf", exif_tiff(orientation, big_endian=False))
    return data[:end_of_ihdr] + chunk + data[end_of_ihdr:]


@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize("writer", [jpeg_by_pillow, jpeg_with_app1])
def test_every_jpeg_orientation_comes_back_upright(orientation: int, writer: object) -> None:
    upright = upright_bgr()
    stored = np.ascontiguousarray(STORE[orientation](upright))
    data = writer(stored, orientation)  # type: ignore[operator]
    assert exif_orientation("jpeg", data) == orientation
    image = decode_image(data)
    assert image.format == "jpeg" and image.orientation == orientation
    assert image.array.shape == upright.shape
    # lossy JPEG: close to the upright photograph, far from any other orientation
    err = np.abs(image.array.astype(int) - upright.astype(int)).mean()
    assert err < 4.0, err
    if orientation != 1:
        wrong = np.asarray(STORE[orientation](upright), dtype=int)
        if wrong.shape == upright.shape:
            assert np.abs(image.array.astype(int) - wrong).mean() > 20
    # OpenCV's own orientation support (8-bit colour only) agrees pixel for pixel
    assert np.array_equal(
        image.array, cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    )


@pytest.mark.parametrize("orientation", range(1, 9))
def test_png_exif_orientation_turns_16_bit_depth_exactly(orientation: int) -> None:
    depth = np.arange(30 * 50, dtype=np.uint16).reshape(30, 50) * 17
    data = png_with_exif(np.ascontiguousarray(STORE[orientation](depth)), orientation)
    image = decode_image(data)
    assert image.array.dtype == np.uint16 and np.array_equal(image.array, depth)


def test_webp_exif_orientation_is_applied() -> None:
    pil = pytest.importorskip("PIL.Image")
    upright = upright_bgr()
    exif = pil.Exif()
    exif[0x0112] = 6
    buf = io.BytesIO()
    stored = np.ascontiguousarray(STORE[6](upright)[:, :, ::-1])
    pil.fromarray(stored).save(buf, "WEBP", lossless=True, exif=exif.tobytes())
    image = decode_image(buf.getvalue())
    assert image.format == "webp" and image.orientation == 6
    assert np.array_equal(image.array, upright)


def test_tiff_is_upright_without_a_second_turn() -> None:
    """OpenCV's TIFF reader applies the tag itself: the decoder must not turn it again."""
    pil = pytest.importorskip("PIL.Image")
    upright = upright_bgr()
    for orientation in (3, 6, 8):
        exif = pil.Exif()
        exif[0x0112] = orientation
        buf = io.BytesIO()
        stored = np.ascontiguousarray(STORE[orientation](upright)[:, :, ::-1])
        pil.fromarray(stored).save(buf, "TIFF", exif=exif.tobytes())
        assert np.array_equal(decode_image(buf.getvalue()).array, upright)


def test_malformed_or_out_of_range_exif_is_ignored_not_fatal() -> None:
    bgr = upright_bgr()
    assert decode_image(jpeg_with_app1(bgr, 9)).orientation == 1
    data = bytearray(jpeg_with_app1(bgr, 6))
    data[2 + 4 + 6 + 4 : 2 + 4 + 6 + 8] = b"\xff\xff\xff\xf0"  # IFD offset past the end
    image = decode_image(bytes(data))
    assert image.orientation == 1 and image.array.shape == bgr.shape


def test_apply_orientation_matches_the_store_table_inverse() -> None:
    a = np.arange(6 * 4 * 3).reshape(6, 4, 3)
    for o, store in STORE.items():
        assert np.array_equal(apply_orientation(np.ascontiguousarray(store(a)), o), a), o


# -- corrupt data --------------------------------------------------------------------------
def zeroed_inside(data: bytes, n: int = 2000) -> bytes:
    mid = len(data) // 2
    return data[:mid] + b"\x00" * n + data[mid + n :]


def test_a_jpeg_with_zeroed_bytes_is_refused_as_undecodable() -> None:
    data = PORTRAIT.read_bytes()
    assert cv2.imdecode(np.frombuffer(zeroed_inside(data), np.uint8), cv2.IMREAD_COLOR) is not None
    with pytest.raises(ImageCodecError, match="corrupt JPEG data") as info:
        decode_image(zeroed_inside(data))
    assert info.value.kind == "undecodable-image"
    assert "Corrupt JPEG data" in info.value.detail  # libjpeg's own words, for the client
    decode_image(data)  # the intact file still decodes


def test_codec_warnings_are_logged_not_written_to_stderr(
    capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    with pytest.raises(ImageCodecError):
        decode_image(zeroed_inside(PORTRAIT.read_bytes()))
    out, err = capfd.readouterr()
    assert "Corrupt JPEG" not in err and "Corrupt JPEG" not in out
    record = next(r for r in caplog.records if r.name == "sensors.imagecodec")
    assert record.levelname == "WARNING" and "Corrupt JPEG data" in record.getMessage()
    # a PNG whose image data fails its check: libpng's error line is logged too
    png = bytearray(cv2.imencode(".png", upright_bgr())[1].tobytes())
    png[200:400] = b"\x00" * 200
    with pytest.raises(ImageCodecError, match="corrupt PNG data"):
        decode_image(bytes(png))
    assert "libpng" not in capfd.readouterr().err


def test_a_frames_files_decode_together_each_with_its_own_verdict(
    capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    """Side by side on the codec threads, a frame's files give what one-by-one gives; a
    codec message caught in the shared window is pinned to the file that caused it."""
    bgr = upright_bgr()
    depth = (np.arange(bgr.shape[0] * bgr.shape[1], dtype=np.uint32) % 65536).astype(np.uint16)
    depth = depth.reshape(bgr.shape[:2])
    good = {
        "rgb": PORTRAIT.read_bytes(),
        "depth": cv2.imencode(".png", depth)[1].tobytes(),
        "ir": cv2.imencode(".png", bgr[:, :, 1])[1].tobytes(),
    }
    together = decode_images(good)
    assert list(together) == ["rgb", "depth", "ir"]
    for name, data in good.items():
        image = together[name]
        assert not isinstance(image, ImageCodecError)
        assert np.array_equal(image.array, decode_image(data).array)
    assert together["depth"].array.dtype == np.uint16  # type: ignore[union-attr]

    # a corrupt JPEG beside two good PNGs: only the JPEG is refused, in libjpeg's words
    caplog.clear()
    bad = {**good, "rgb": zeroed_inside(good["rgb"])}
    result = decode_images(bad)
    assert isinstance(result["rgb"], ImageCodecError)
    assert "Corrupt JPEG data" in result["rgb"].detail
    for name in ("depth", "ir"):
        assert np.array_equal(result[name].array, together[name].array)  # type: ignore[union-attr]
    warned = [r.getMessage() for r in caplog.records if r.name == "sensors.imagecodec"]
    assert warned and all(m.startswith("JPEG decoder") for m in warned)
    assert "Corrupt JPEG" not in capfd.readouterr().err

    # a damaged PNG among them: its own error; a bad header is refused before any decode
    png = bytearray(good["ir"])
    png[200:400] = b"\x00" * 200
    result = decode_images({**good, "ir": bytes(png), "depth": b"not an image"})
    assert isinstance(result["ir"], ImageCodecError) and "corrupt PNG data" in result["ir"].detail
    assert isinstance(result["depth"], ImageCodecError) and "signatures" in result["depth"].detail
    assert not isinstance(result["rgb"], ImageCodecError)
    assert "libpng" not in capfd.readouterr().err


def test_another_threads_json_line_during_a_decode_reaches_stderr_intact(
    capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """While fd 2 is borrowed, a JSON log line written by another thread is handed back."""
    import sensors.imagecodec as codec

    line = json.dumps({"level": "INFO", "msg": "from another thread"})
    real = codec.cv2.imdecode

    def imdecode_with_a_neighbour(buf: np.ndarray, flags: int) -> object:
        t = threading.Thread(target=lambda: os.write(2, (line + "\n").encode()))
        t.start()
        t.join()
        return real(buf, flags)

    monkeypatch.setattr(codec.cv2, "imdecode", imdecode_with_a_neighbour)
    decode_image(PORTRAIT.read_bytes())
    assert line in capfd.readouterr().err.splitlines()


def test_the_pixel_limit_is_checked_before_decoding() -> None:
    data = bytearray(cv2.imencode(".jpg", np.zeros((16, 16, 3), np.uint8))[1].tobytes())
    i = data.index(b"\xff\xc0")
    data[i + 5 : i + 9] = struct.pack(">HH", 60000, 60000)
    with pytest.raises(ImageCodecError) as info:
        decode_image(bytes(data), max_pixels=4096 * 4096)
    assert info.value.kind == "image-too-large"


def test_only_accepted_formats_are_decoded() -> None:
    bmp = cv2.imencode(".bmp", np.zeros((8, 8, 3), np.uint8))[1].tobytes()
    assert decode_image(bmp).array.shape == (8, 8, 3)
    with pytest.raises(ImageCodecError, match="BMP is not accepted; send PNG, JPEG") as info:
        decode_image(bmp, accept={"png", "jpeg", "npy"})
    assert info.value.kind == "unsupported-format"


# -- the folder source uses it ---------------------------------------------------------------
def test_folder_source_turns_a_tagged_phone_photo_upright(tmp_path: Path) -> None:
    upright = upright_bgr()
    (tmp_path / "0001_rgb.jpg").write_bytes(jpeg_by_pillow(STORE[6](upright), 6))
    (tmp_path / "0002_rgb.jpg").write_bytes(zeroed_inside(PORTRAIT.read_bytes()))
    with create_source(FolderConfig(path=tmp_path)) as source:
        bundles = list(source)
    assert len(bundles) == 1  # the corrupt one is skipped, as any undecodable bundle
    rgb = bundles[0].rgb
    assert rgb is not None and rgb.shape == upright.shape
    assert np.abs(rgb.astype(int) - upright[:, :, ::-1].astype(int)).mean() < 4.0


def test_folder_source_names_the_file_it_cannot_decode(tmp_path: Path) -> None:
    from sensors.folder import load_image

    bad = tmp_path / "0001_rgb.jpg"
    bad.write_bytes(zeroed_inside(PORTRAIT.read_bytes()))
    with pytest.raises(SourceError, match=r"0001_rgb\.jpg: corrupt JPEG data"):
        load_image(bad, "rgb")
