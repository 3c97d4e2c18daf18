"""The daemon with the real pipeline and the bundled model on the synthetic camera — no
SDK: a bona fide sequence ends ``live``, a print and a replay end ``spoof``, with exactly
one decision event each. (test_daemon_e2e.py does the same through SDK recordings.)"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from sensors.config import SyntheticConfig, create_source
from service.daemon.config import DaemonConfig
from service.daemon.outputs import Output
from service.daemon.runner import LivenessDaemon

N_FRAMES = 20
CASES = [("bona_fide", "live", 11), ("print_flat", "spoof", 12), ("replay_tablet", "spoof", 13)]


class Decisions(Output):
    name = "decisions"

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.frames = 0

    def frame(self, event: dict[str, Any]) -> None:
        self.frames += 1

    def decision(self, event: dict[str, Any]) -> None:
        self.events.append(event)

    def close(self, timeout: float) -> None:
        pass


@pytest.fixture(scope="module")
def analyzer() -> Iterator[Any]:
    from service.daemon.analysis import build_pipeline_analyzer

    a = build_pipeline_analyzer()  # the bundled model
    yield a
    a.close()


@pytest.mark.parametrize(("species", "expected", "seed"), CASES)
def test_synthetic_camera_sequence_ends_with_the_expected_decision(
    analyzer: Any, species: str, expected: str, seed: int
) -> None:
    config = SyntheticConfig(
        profile="d435", species=species, n_frames=N_FRAMES, seed=seed, real_time=False,
        loop=False,
    )  # fmt: skip
    out = Decisions()
    daemon = LivenessDaemon(
        lambda: create_source(config), analyzer, [out], DaemonConfig(http_port=None)
    )
    summary = daemon.run()
    assert summary.frames_processed == out.frames == N_FRAMES
    decided = [e["decision"] for e in out.events]
    assert decided == [expected], decided
