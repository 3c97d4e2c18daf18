"""Flex-Modal protocol lists in their public on-disk format (CRLF, relative paths)."""

from __future__ import annotations

from pathlib import Path

import pytest

from models.datasets.protocol import ProtocolEntry, ProtocolError, read_protocol, write_protocol


def test_reads_public_crlf_format(tmp_path: Path) -> None:
    lst = tmp_path / "train_list.txt"
    lst.write_bytes(
        b"Training/real_part/CLKJ_AS0137/real.rssdk/color/31.jpg "
        b"Training/real_part/CLKJ_AS0137/real.rssdk/depth/31.jpg "
        b"Training/real_part/CLKJ_AS0137/real.rssdk/ir/31.jpg 1\r\n"
        b"Training/fake_part/CLKJ_AS0137/02_en_b.rssdk/color/111.jpg "
        b"Training/fake_part/CLKJ_AS0137/02_en_b.rssdk/depth/111.jpg "
        b"Training/fake_part/CLKJ_AS0137/02_en_b.rssdk/ir/111.jpg 0\r\n\r\n"
    )
    entries = read_protocol(lst)
    assert [e.label for e in entries] == [1, 0]
    assert entries[0].is_bona_fide and entries[0].species == "bona_fide"
    assert entries[1].species == "attack"
    assert entries[1].ir.endswith("ir/111.jpg")


def test_round_trip_with_species(tmp_path: Path) -> None:
    items = [
        ProtocolEntry("rgb/a.png", "depth/a.png", "ir/a.png", 1, "bona_fide"),
        ProtocolEntry("rgb/b.png", "depth/b.png", "ir/b.png", 0, "mask_rigid"),
    ]
    path = write_protocol(tmp_path / "p" / "test.txt", items)
    assert b"\r\n" in path.read_bytes()
    assert read_protocol(path) == items


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ("a b c\r\n", "expected 'rgb_path depth_path ir_path label'"),
        ("a b c 2\r\n", "label must be 0"),
        ("\r\n", "empty"),
    ],
)
def test_malformed_lists_name_file_and_line(tmp_path: Path, content: str, needle: str) -> None:
    lst = tmp_path / "bad.txt"
    lst.write_text(content)
    with pytest.raises(ProtocolError, match=needle):
        read_protocol(lst)


def test_missing_list(tmp_path: Path) -> None:
    with pytest.raises(ProtocolError, match="not found"):
        read_protocol(tmp_path / "nope.txt")
