"""The RGB expert in the service: components in the response, fusion, the setting that
turns it off, /v1/models and metrics — through a real uvicorn server."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import httpx
import pytest

from models import DEFAULT_MODEL_PATH
from models.rgb_expert import EXPERT_DIR
from service.api import create_app
from service.settings import Settings

SAMPLES = Path(__file__).resolve().parents[1] / "fixtures" / "minifasnet_samples"


def _serve(live_server: Any, **settings: Any) -> Any:
    return live_server(create_app(Settings(model_path=DEFAULT_MODEL_PATH, **settings)))


def _ready(client: httpx.Client) -> None:
    for _ in range(600):
        if client.get("/readyz").status_code == 200:
            return
        time.sleep(0.05)
    raise AssertionError("server never became ready")


@pytest.fixture(scope="module")
def client(live_server: Any) -> Iterator[httpx.Client]:
    with _serve(live_server, max_faces=1) as url, httpx.Client(base_url=url, timeout=60) as c:
        _ready(c)
        yield c


def _sample(name: str) -> dict[str, tuple[str, bytes]]:
    return {"rgb": (f"{name}.jpg", (SAMPLES / f"{name}.jpg").read_bytes())}


def _face(client: httpx.Client, files: dict[str, Any], **data: str) -> dict[str, Any]:
    r = client.post("/liveness", files=files, data=data)
    assert r.status_code == 200, r.text
    body = r.json()
    assert len(body["faces"]) == 1, body
    return {**body["faces"][0], "_body": body}


@pytest.mark.parametrize("name", ["live_T1", "poster_F1", "replay_F2"])
def test_real_camera_samples_rgb_only(client: httpx.Client, name: str) -> None:
    """The publisher's real photographs (a live person, a poster, a tablet replay; phone
    JPEGs with an EXIF orientation), sent RGB-only as full frames: the live person is
    live, the attacks are never live (the poster's face is turned: uncertain for pose, or
    spoof), and both components are reported."""
    face = _face(client, _sample(name))
    if name.startswith("live"):
        assert face["decision"] == "live", face
    else:
        assert face["decision"] == "spoof" or (
            face["decision"] == "uncertain" and face["reasons"]
        ), face
        assert face["scores"]["rgb_expert"] < 0.3, face
    assert set(face["scores"]) == {"flexmodal", "rgb_expert"}
    assert all(0.0 <= v <= 1.0 for v in face["scores"].values())
    assert face["_body"]["scoring"] == "flexmodal+rgb_expert"
    assert face["_body"]["timings_ms"]["rgb_expert"] > 0


def test_the_fused_score_moves_with_the_expert(client: httpx.Client) -> None:
    live = _face(client, _sample("live_T1"))
    poster = _face(client, _sample("poster_F1"))
    assert live["scores"]["rgb_expert"] > 0.9 > 0.2 > poster["scores"]["rgb_expert"]
    assert live["score"] > poster["score"]
    # The threshold reported is the fused one of the subset used.
    thr = live["_body"]["operating_point"]["threshold"]
    assert 0.0 < thr < 1.0


def test_cropped_requests_run_the_flexmodal_model_only(client: httpx.Client) -> None:
    bgr = cv2.imread(str(SAMPLES / "live_T1.jpg"))
    crop = cv2.resize(bgr[150:470, 90:410], (128, 128))
    files = {"rgb": ("c.png", cv2.imencode(".png", crop)[1].tobytes())}
    face = _face(client, files, cropped="true")
    assert set(face["scores"]) == {"flexmodal"}
    assert face["_body"]["scoring"] == "flexmodal"


def test_models_endpoint_lists_the_expert_with_sha256(client: httpx.Client) -> None:
    card = client.get("/v1/models").json()
    (expert,) = card["experts"]
    assert expert["name"] == "minifasnet"
    files = {f["name"]: f["sha256"] for f in expert["files"]}
    for name, sha in files.items():
        assert hashlib.sha256((EXPERT_DIR / name).read_bytes()).hexdigest() == sha
    assert set(files) == {"minifasnet_v2.onnx"}  # V2 alone by default
    assert expert["version"] == "v2"
    assert expert["fused_subsets"] == ["rgb"]
    assert "Apache-2.0" in expert["licence"]


def test_metrics_per_component(client: httpx.Client) -> None:
    _face(client, _sample("live_T1"))
    text = client.get("/metrics").text
    for component in ("flexmodal", "rgb_expert", "fused"):
        assert f'liveness_component_score_count{{component="{component}"}}' in text
    assert 'liveness_stage_duration_seconds_count{stage="rgb_expert"}' in text


def test_the_setting_turns_the_expert_off(live_server: Any) -> None:
    with (
        _serve(live_server, max_faces=1, rgb_expert=False) as url,
        httpx.Client(base_url=url, timeout=60) as c,
    ):
        _ready(c)
        face = _face(c, _sample("live_T1"))
        assert set(face["scores"]) == {"flexmodal"}
        assert face["score"] == face["scores"]["flexmodal"]
        assert face["_body"]["scoring"] == "flexmodal"
        assert c.get("/v1/models").json()["experts"] == []


def test_an_expert_the_fusion_was_not_calibrated_for_is_reported_not_fused(
    live_server: Any,
) -> None:
    """The bundled fusion was fitted on V2's scores: running the publisher's pair instead
    must not apply those weights to another score."""
    with (
        _serve(live_server, max_faces=1, rgb_expert_networks="v1se+v2") as url,
        httpx.Client(base_url=url, timeout=60) as c,
    ):
        _ready(c)
        face = _face(c, _sample("live_T1"))
        assert set(face["scores"]) == {"flexmodal", "rgb_expert"}
        assert face["score"] == face["scores"]["flexmodal"]
        assert face["_body"]["scoring"] == "flexmodal"
        (expert,) = c.get("/v1/models").json()["experts"]
        assert expert["version"] == "v2+v1se" and expert["fused_subsets"] == []
        assert {f["name"] for f in expert["files"]} == {
            "minifasnet_v2.onnx",
            "minifasnet_v1se.onnx",
        }


def test_expert_networks_setting_is_checked() -> None:
    with pytest.raises(ValueError, match="v3"):
        Settings(rgb_expert_networks="v2+v3")
    assert Settings(rgb_expert_networks="V1SE+v2").rgb_expert_networks == "v2+v1se"


def test_the_expert_scores_beside_the_flexmodal_model() -> None:
    """The expert runs on its own thread while the flexible-modal model scores the same
    face (the model waits for the expert to start: run one after the other, it would not
    see it), and its score still lands on that face."""
    import threading

    from service.oneshot import LocalScorer

    scorer = LocalScorer(Settings(model_path=DEFAULT_MODEL_PATH, max_faces=1))
    pipeline = scorer.pipeline
    assert pipeline.expert is not None
    real_expert, real_engine = pipeline.expert.score, pipeline.engine.score
    expert_started = threading.Event()
    seen: dict[str, Any] = {}

    def expert_score(rgb: Any, boxes: Any) -> Any:
        seen["expert_thread"] = threading.get_ident()
        seen["boxes"] = [list(b) for b in boxes]
        expert_started.set()
        return real_expert(rgb, boxes)

    def engine_score(crops: Any) -> Any:
        seen["overlap"] = expert_started.wait(timeout=10)
        return real_engine(crops)

    pipeline.expert.score = expert_score  # type: ignore[method-assign]
    pipeline.engine.score = engine_score  # type: ignore[method-assign]
    frame = (SAMPLES / "live_T1.jpg").read_bytes()
    body = scorer.score({"rgb": frame})
    assert seen["overlap"] is True
    assert seen["expert_thread"] != threading.get_ident()
    face = body.faces[0]
    rgb = cv2.cvtColor(cv2.imread(str(SAMPLES / "live_T1.jpg")), cv2.COLOR_BGR2RGB)
    assert face.scores is not None
    alone = real_expert(rgb, [seen["boxes"][0]])[0]
    assert isinstance(alone, float)
    assert abs(face.scores["rgb_expert"] - alone) < 0.02  # EXIF-turned vs not: close only


def _real_person_frame() -> dict[str, bytes]:
    """A real live person the bundled model has never seen (062 of the independent half of
    ``benchmarks/real_people``: the network scores her face just below its spoof point with
    depth and IR, 0.46, while depth and IR alone do not accuse her and the RGB expert says
    live, 0.97), with a live depth and NIR rendered from her mesh. (Model 2.6.0 did the same
    with the held-out spacesuit portrait, which 2.7.0 decides live.)"""
    from pathlib import Path

    from synth.realcheck import live_depth_ir, people_photos

    root = Path(__file__).resolve().parents[2] / "benchmarks" / "real_people"
    photo = next(p.photo for p in people_photos(root) if p.name == "062")
    assert photo is not None
    depth, ir = live_depth_ir(photo)
    bgr = cv2.cvtColor(photo.rgb, cv2.COLOR_RGB2BGR)
    return {
        "rgb": cv2.imencode(".jpg", bgr)[1].tobytes(),
        "depth": cv2.imencode(".png", depth)[1].tobytes(),
        "ir": cv2.imencode(".png", ir)[1].tobytes(),
    }


@pytest.mark.parametrize(("veto", "decision"), [(0.5, "uncertain"), (1.0, "spoof")])
def test_a_spoof_resting_on_colour_alone_is_uncertain_when_the_expert_says_live(
    veto: float, decision: str
) -> None:
    """A real live person with rendered depth and IR: the network calls the face spoof, but
    scored without colour it does not, and the RGB expert says live — uncertain
    (components_disagree), never live. With the veto off (1) the network's spoof stands."""
    from service.oneshot import LocalScorer

    scorer = LocalScorer(Settings(model_path=DEFAULT_MODEL_PATH, max_faces=1, rgb_expert_veto=veto))
    body = scorer.score(_real_person_frame())
    assert body.modalities_used == ["rgb", "depth", "ir"] and body.scoring == "flexmodal"
    face = body.faces[0]
    assert face.scores is not None and face.scores["rgb_expert"] > 0.5
    assert (
        face.score is not None and face.score < body.operating_point.spoof_below
    )  # network: spoof
    assert face.decision == decision, face
    assert ("components_disagree" in face.reasons) == (decision == "uncertain"), face


def test_physical_evidence_outweighs_the_expert() -> None:
    """A print that depth and IR alone call spoof stays spoof however live the colour
    looks to the expert (it cannot see flatness or material). From colour alone there is
    no physical evidence: a fused spoof that the expert contradicts is uncertain
    (components_disagree), one it agrees with stays spoof."""
    import dataclasses

    from service.oneshot import LocalScorer
    from synth import render_scene
    from synth.bundle import scene_to_bundle

    pipeline = LocalScorer(Settings(model_path=DEFAULT_MODEL_PATH, max_faces=1)).pipeline
    assert pipeline.expert is not None
    calls: list[int] = []
    real_score = pipeline.engine.score

    def counted(crops: Any) -> Any:
        calls.append(len(crops))
        return real_score(crops)

    pipeline.engine.score = counted  # type: ignore[method-assign]
    # (a print that depth and IR alone call spoof: 2.7.0 scores the print of seed
    # 3_000_000_011 at 0.26 from all three, but not spoof from depth and IR alone)
    bundle = scene_to_bundle(render_scene("print_flat", "d435", 3_000_000_017, split="test"))
    for expert, model_calls in ((0.99, 2), (0.2, 1)):
        pipeline.expert.score = lambda rgb, boxes, e=expert: [e] * len(boxes)  # type: ignore[method-assign]
        calls.clear()
        face = pipeline.analyze(bundle, cropped=False).faces[0]
        assert face.scores == {"flexmodal": face.score, "rgb_expert": expert}
        assert face.decision == "spoof", face
        # the face is scored again without colour only when the expert says live
        assert len(calls) == model_calls, (expert, calls)

    replay = scene_to_bundle(render_scene("replay_tablet", "d435", 3_000_000_011, split="test"))
    colour = dataclasses.replace(replay, depth=None, ir=None)
    for expert, decision in ((0.2, "spoof"), (0.9, "uncertain")):
        pipeline.expert.score = lambda rgb, boxes, e=expert: [e] * len(boxes)  # type: ignore[method-assign]
        calls.clear()
        analysis = pipeline.analyze(colour, cropped=False)
        assert analysis.scoring == "flexmodal+rgb_expert"  # fused: the expert is in the score
        face = analysis.faces[0]
        # the fused score accuses either way (the network is sure: a screen)
        assert analysis.spoof_below is not None
        assert face.score is not None and face.score < analysis.spoof_below
        assert face.decision == decision, (expert, face)
        assert ("components_disagree" in face.reasons) == (decision == "uncertain"), face
        assert len(calls) == 1  # nothing to re-score without colour


def test_components_agree_live_needs_every_key() -> None:
    from service.pipeline import components_agree_live

    # fused 0.8 vs 0.6, flexible-modal 0.75 vs 0.55, expert 0.9; margin 0.05
    assert components_agree_live(0.8, 0.6, 0.75, 0.55, 0.9, 0.05)
    assert not components_agree_live(0.64, 0.6, 0.75, 0.55, 0.9, 0.05)  # fused in the band
    assert not components_agree_live(0.8, 0.6, 0.59, 0.55, 0.9, 0.05)  # network not live
    assert not components_agree_live(0.8, 0.6, 0.75, 0.55, 0.5, 0.05)  # expert at its argmax


def test_out_of_distribution_face_is_live_only_when_both_components_and_the_fusion_agree() -> None:
    """A real portrait (RGB alone, fused) whose embedding is out of distribution: with
    LIVENESS_RGB_EXPERT_OOD_AGREEMENT off it is uncertain (out_of_distribution); on, it is
    live because the fused score, the network alone and the expert alone all say live —
    and the distance is still reported. With the expert's key closed it stays uncertain."""
    import matplotlib as mpl

    from service.oneshot import LocalScorer

    data = (Path(mpl.get_data_path()) / "sample_data" / "grace_hopper.jpg").read_bytes()
    off = LocalScorer(
        Settings(model_path=DEFAULT_MODEL_PATH, max_faces=1, rgb_expert_ood_agreement=False)
    )
    ood_face = off.score({"rgb": data}).faces[0]
    assert ood_face.reasons == ["out_of_distribution"] and ood_face.decision == "uncertain"

    on = LocalScorer(Settings(model_path=DEFAULT_MODEL_PATH, max_faces=1))
    body = on.score({"rgb": data})
    face = body.faces[0]
    assert body.scoring == "flexmodal+rgb_expert"
    threshold = on.pipeline.engine.spec.ood_threshold(["rgb"])
    assert face.ood_distance == ood_face.ood_distance and face.ood_distance > threshold
    assert face.scores is not None and face.scores["rgb_expert"] > 0.5
    op = body.operating_point
    assert face.score is not None and face.score >= op.threshold + op.uncertain_margin
    assert face.decision == "live" and face.reasons == [], face

    pipeline = on.pipeline
    assert pipeline.expert is not None
    pipeline.expert.score = lambda rgb, boxes: [0.45] * len(boxes)  # type: ignore[method-assign]
    closed = on.score({"rgb": data}).faces[0]
    assert closed.decision == "uncertain" and closed.reasons == ["out_of_distribution"], closed


def test_a_face_decided_by_agreement_is_counted(client: httpx.Client) -> None:
    """Over HTTP: the out-of-distribution portrait decided live by agreement carries no
    reason in the answer, so /metrics counts it apart (liveness_ood_agreements_total)."""
    import matplotlib as mpl

    def count() -> float:
        for line in client.get("/metrics").text.splitlines():
            if line.startswith("liveness_ood_agreements_total "):
                return float(line.split()[1])
        raise AssertionError("liveness_ood_agreements_total not exposed")

    before = count()
    data = (Path(mpl.get_data_path()) / "sample_data" / "grace_hopper.jpg").read_bytes()
    r = client.post("/liveness", files={"rgb": ("portrait.jpg", data, "image/jpeg")})
    assert r.status_code == 200, r.text
    face = r.json()["faces"][0]
    assert face["decision"] == "live" and face["reasons"] == []
    assert "ood_agreement" not in face  # internal, not part of the response
    assert count() == before + 1
    _face(client, _sample("live_T1"))  # an in-distribution live face is not counted
    assert count() == before + 1
