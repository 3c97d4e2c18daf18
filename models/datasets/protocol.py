"""Flex-Modal protocol lists: one sample per line, ``rgb_path depth_path ir_path label``.

Label 1 = bona fide, 0 = attack. Paths are relative to a data root. Public lists use CRLF
line ends; both CRLF and LF are read. An optional side file (same stem, suffix
``_species.txt``) gives ``rgb_path species`` per line for per-species APCER.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

BONA_FIDE = "bona_fide"


class ProtocolError(ValueError):
    """A protocol list is malformed; the message names the file and line."""


@dataclass(frozen=True)
class ProtocolEntry:
    rgb: str
    depth: str
    ir: str
    label: int  # 1 bona fide, 0 attack
    species: str = ""  # attack instrument species; BONA_FIDE for label 1

    @property
    def is_bona_fide(self) -> bool:
        return self.label == 1


def species_path(list_path: Path) -> Path:
    return list_path.with_name(list_path.stem + "_species.txt")


def read_protocol(list_path: str | Path) -> list[ProtocolEntry]:
    """Parse a protocol list (and its species side file when present)."""
    path = Path(list_path)
    if not path.is_file():
        raise ProtocolError(f"{path}: protocol list not found")
    species: dict[str, str] = {}
    side = species_path(path)
    if side.is_file():
        for n, line in enumerate(side.read_text().splitlines(), 1):
            if not line.strip():
                continue
            parts = line.split()
            if len(parts) != 2:
                raise ProtocolError(f"{side}:{n}: expected 'rgb_path species', got {line!r}")
            species[parts[0]] = parts[1]
    entries: list[ProtocolEntry] = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 4:
            raise ProtocolError(
                f"{path}:{n}: expected 'rgb_path depth_path ir_path label', got {line!r}"
            )
        rgb, depth, ir, label_s = parts
        if label_s not in {"0", "1"}:
            raise ProtocolError(
                f"{path}:{n}: label must be 0 (attack) or 1 (bona fide), got {label_s!r}"
            )
        label = int(label_s)
        sp = species.get(rgb, BONA_FIDE if label == 1 else "attack")
        entries.append(ProtocolEntry(rgb, depth, ir, label, sp))
    if not entries:
        raise ProtocolError(f"{path}: protocol list is empty")
    return entries


def write_protocol(list_path: str | Path, entries: Iterable[ProtocolEntry]) -> Path:
    """Write a list in the public format (CRLF) plus the species side file."""
    path = Path(list_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    items = list(entries)
    with path.open("w", newline="") as f:
        for e in items:
            f.write(f"{e.rgb} {e.depth} {e.ir} {e.label}\r\n")
    with species_path(path).open("w", newline="") as f:
        for e in items:
            f.write(f"{e.rgb} {e.species or (BONA_FIDE if e.label else 'attack')}\r\n")
    return path
