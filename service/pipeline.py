"""The liveness pipeline: the ONE place where the face stage, the model and the decision meet.

``LivenessPipeline.analyze(bundle, cropped=...)`` turns a :class:`~sensors.bundle.FrameBundle`
into an :class:`Analysis` (plain dataclasses, no HTTP): per face its box, landmarks,
bona fide score, decision at an operating point, quality values and reason codes, plus
the modalities received and used, frame-level reasons and timings per stage. The REST
API and the camera daemon both call it.

Decision semantics (``t`` = operating-point threshold, ``m`` = uncertain margin, ``s`` =
the threshold of the *spoof point*, by default ``bpcer1``: the score below which 1 % of dev
bona fide presentations fall): ``live`` when score ≥ t + m, ``spoof`` when score <
min(t − m, s), otherwise ``uncertain``. A live person is called an attack only on evidence
that few live people give; in between, the answer is "try again". A face with any quality
reason, or a modality subset the model does not support, is ``uncertain`` whatever its
score. A face that only the depth map shows (colour was usable and showed no face there)
is never ``live``: ``uncertain`` with reason ``face_only_in_depth``. A ``spoof`` that
rests on colour (colour was the only modality used, or the same face scored without
colour is not ``spoof``) and that the RGB expert contradicts (its score above
``LIVENESS_RGB_EXPERT_VETO``) is ``uncertain`` with reason ``components_disagree`` (see
:func:`expert_vetoes`). A face whose features are out of distribution is ``uncertain``
(``out_of_distribution``) unless the subset is fused with the RGB expert and the fused
score, the flexible-modal score alone and the expert alone all say live
(:func:`components_agree_live`, ``LIVENESS_RGB_EXPERT_OOD_AGREEMENT``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from typing import Any, Protocol

import numpy as np

from models.spec import MODALITIES, subset_name
from sensors.bundle import FrameBundle
from service.decision import Decision, Reason, reason_code
from service.engine import InferenceEngine, ModelInfo, Scored
from service.errors import InputError
from service.face.config import FaceStageConfig
from service.face.types import FaceStageResult
from service.rgb_expert import RgbExpert, parse_networks

logger = logging.getLogger(__name__)

#: Reason codes the pipeline adds (members of :class:`service.decision.Reason`).
REASON_NEAR_THRESHOLD = Reason.SCORE_NEAR_THRESHOLD.value
REASON_INFERENCE_FAILED = Reason.INFERENCE_FAILED.value
REASON_OUT_OF_DISTRIBUTION = Reason.OUT_OF_DISTRIBUTION.value
#: Operating point that bounds ``spoof`` when ``LIVENESS_SPOOF_OPERATING_POINT`` is unset.
DEFAULT_SPOOF_POINT = "bpcer1"
#: The RGB expert's score above which an unfused ``spoof`` is ``uncertain`` (its argmax).
DEFAULT_EXPERT_VETO = 0.5
#: The RGB expert's own decision point (the argmax of its two classes).
EXPERT_DECISION_POINT = 0.5
#: Names of the score components in ``FaceAnalysis.scores``.
COMPONENT_FLEXMODAL = "flexmodal"
COMPONENT_RGB_EXPERT = "rgb_expert"


class FaceStageLike(Protocol):
    """What the pipeline needs from :class:`service.face.stage.FaceStage`."""

    config: FaceStageConfig

    def process(self, bundle: FrameBundle, max_faces: int | None = None) -> FaceStageResult: ...

    def process_cropped(self, bundle: FrameBundle) -> FaceStageResult: ...

    def warmup(self) -> None: ...


def load_rgb_expert(settings: Any) -> RgbExpert | None:
    """The RGB expert when ``settings.rgb_expert`` is on (the default), else None."""
    if not bool(getattr(settings, "rgb_expert", True)):
        return None
    return RgbExpert.load(
        intra_op_threads=int(getattr(settings, "rgb_expert_threads", 1)),
        networks=parse_networks(str(getattr(settings, "rgb_expert_networks", "v2"))),
    )


def build_face_stage(config: FaceStageConfig, input_size: int) -> FaceStageLike:
    """The face stage for a model with ``input_size`` inputs (imported lazily)."""
    from service.face.stage import FaceStage

    stage: FaceStageLike = FaceStage(config, input_size)
    return stage


@dataclass
class FaceAnalysis:
    """One face: geometry in input pixels, score, decision and why."""

    box: list[float]  # [x1, y1, x2, y2]
    landmarks: list[list[float]]  # 5 × [x, y]
    score: float | None  # probability of bona fide in [0, 1]; None when not scored
    decision: Decision
    quality: dict[str, float] = field(default_factory=dict)
    reasons: list[str] = field(default_factory=list)
    ood_distance: float | None = None  # distance to the training data; None without OOD
    #: The components behind ``score``: "flexmodal" and, when it ran, "rgb_expert".
    scores: dict[str, float | None] = field(default_factory=dict)
    #: Out of distribution, yet decided because every component said live
    #: (:func:`components_agree_live`); counted in metrics, not part of the response.
    ood_agreement: bool = False


@dataclass
class Analysis:
    """The result of one bundle; ``asdict`` gives a JSON-ready dict."""

    model: ModelInfo
    operating_point: str
    threshold: float
    uncertain_margin: float
    modalities_received: list[str]
    modalities_used: list[str]
    faces: list[FaceAnalysis]
    reasons: list[str]
    timings_ms: dict[str, float]
    detector: str = ""
    #: How ``score`` was made: "flexmodal", or "flexmodal+rgb_expert" when fused.
    scoring: str = COMPONENT_FLEXMODAL
    #: Scores below this are decided ``spoof`` (min(t − m, spoof point)); None = t − m.
    spoof_below: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def spoof_bound(threshold: float, margin: float, spoof_point: float | None) -> float:
    """The score below which a face is ``spoof``: t − m, or the spoof point when lower."""
    bound = threshold - margin
    return bound if spoof_point is None else min(bound, spoof_point)


def decide(
    score: float, threshold: float, margin: float, spoof_point: float | None = None
) -> Decision:
    """live ≥ t+m, spoof < min(t−m, spoof point), else uncertain (see module docstring)."""
    if score >= threshold + margin:
        return "live"
    if score < spoof_bound(threshold, margin, spoof_point):
        return "spoof"
    return "uncertain"


def decide_for_subset(
    spec: Any, score: float, subset: list[str], op: str, margin: float, spoof_op: str | None
) -> Decision:
    """:func:`decide` with ``subset``'s own thresholds for the operating point ``op`` and
    the spoof point ``spoof_op`` (None: t − m only)."""
    spoof_point = spec.threshold(spoof_op, subset) if spoof_op else None
    return decide(score, spec.threshold(op, subset), margin, spoof_point)


#: What ``without_colour`` answers when colour was the only modality used: the accusation
#: rests on colour alone by construction.
COLOUR_ONLY = "colour_only"


def expert_vetoes(
    expert: float | None, veto: float, without_colour: Callable[[], str | None]
) -> bool:
    """Whether the RGB expert stops a ``spoof`` (the decision becomes ``uncertain``).

    Only where the accusation rests on colour: ``without_colour()`` gives the decision on
    the same face scored by the same model with colour absent (depth and/or IR alone),
    :data:`COLOUR_ONLY` when colour was the only modality used, None when it cannot tell;
    it is called only when the expert says live. If depth/IR alone say spoof, the physical
    evidence stands — the expert sees colour only and cannot judge a mask's material or a
    flat surface. If they do not (or there is no depth/IR), and the expert (trained on real
    captures) says live (score above ``veto``), the colour branch of a model trained on
    renders is contradicted by a colour model trained on cameras: no confident answer.
    Never turns anything ``live``."""
    if expert is None or expert <= veto:
        return False
    alone = without_colour()
    return alone is not None and alone != "spoof"


def components_agree_live(
    fused: float,
    fused_threshold: float,
    flexmodal: float,
    flexmodal_threshold: float,
    expert: float,
    margin: float,
) -> bool:
    """Whether an out-of-distribution face is decided ``live`` all the same: the fused score,
    the flexible-modal score alone (at the subset's own threshold) and the RGB expert alone
    (above :data:`EXPERT_DECISION_POINT`) all say live.

    ``out_of_distribution`` says the flexible-modal score may be unreliable; a second model
    trained on real captures agreeing with it is a second key. Neither key alone opens: the
    expert alone calls a sharp phone replay live (measured, docs/rgb-expert.md), and the
    flexible-modal score alone is what the distance put in doubt. Never turns anything
    ``spoof``; a face it does not open stays ``uncertain``."""
    return (
        fused >= fused_threshold + margin
        and flexmodal >= flexmodal_threshold + margin
        and expert > EXPERT_DECISION_POINT
    )


def score_without_colour(engine: InferenceEngine, crops: Any, used: list[str]) -> float | None:
    """The model's score on ``crops`` with colour removed: how the same face scores on
    depth and/or IR alone. None unless colour was used together with another modality the
    model supports without colour, or when scoring fails. The service's colour-free check
    (:func:`expert_vetoes`) and ``liveness expert eval`` both use it."""
    rest = [m for m in used if m != "rgb"]
    if "rgb" not in used or not rest or not engine.spec.supports(rest):
        return None
    scored = engine.score([replace(crops, rgb=None)])[0]
    return None if isinstance(scored, Exception) else scored.score


def _ms(t0: float) -> float:
    return round((time.perf_counter() - t0) * 1000.0, 3)


_reason = reason_code


def require_operating_point(
    spec: Any, name: str, field: str, *, kind: str = "invalid-input", extra: str = ""
) -> str:
    """``name`` when the model has that operating point; else :class:`InputError` naming
    ``field`` and the model's points (``extra``: another accepted value, e.g. 'none')."""
    if name not in spec.operating_points:
        choices = f"{sorted(spec.operating_points)}" + (f" (or {extra})" if extra else "")
        label = field.replace("_", " ")
        message = f"unknown {label} '{name}': this model has {choices}"
        raise InputError(message, field=field, kind=kind)
    return name


def deployment_operating_points(spec: Any, settings: Any) -> tuple[str, str | None]:
    """The deployment's default and spoof operating points, checked against the model (the
    one check, used by the pipeline and by ``liveness serve`` before it binds)."""
    default = getattr(settings, "operating_point", None) or spec.default_operating_point
    require_operating_point(spec, default, "operating_point")
    spoof = getattr(settings, "spoof_operating_point", None)
    if spoof is None:  # unset: the BPCER-1 % point when the model has one
        has = DEFAULT_SPOOF_POINT in spec.operating_points
        return default, DEFAULT_SPOOF_POINT if has else None
    if spoof.lower() == "none":
        return default, None
    return default, require_operating_point(spec, spoof, "spoof_operating_point", extra="'none'")


class LivenessPipeline:
    """Face stage → model → decision, for any non-empty modality subset."""

    def __init__(
        self,
        engine: InferenceEngine,
        face_stage: FaceStageLike,
        settings: Any,
        expert: RgbExpert | None = None,
    ) -> None:
        self.engine = engine
        self.face_stage = face_stage
        self.settings = settings
        self.expert = expert
        self.fusion = engine.spec.expert_fusion() if expert is not None else None
        if self.fusion is not None and expert is not None:
            running = f"{expert.name} {expert.version}"
            if self.fusion.expert != running:
                # Weights fitted on another expert's scores would be wrong for this one.
                logger.warning(
                    "the model's fusion was calibrated for '%s' but the RGB expert runs '%s': "
                    "its score is reported, not fused",
                    self.fusion.expert,
                    running,
                )
                self.fusion = None
        spec = engine.spec
        self.default_operating_point, spoof_op = deployment_operating_points(spec, settings)
        margin = getattr(settings, "uncertain_margin", None)
        self.uncertain_margin = spec.uncertain_margin if margin is None else float(margin)
        #: Operating point whose threshold bounds ``spoof`` from above (None: t − m only).
        self.spoof_operating_point: str | None = spoof_op
        self.max_faces = int(getattr(settings, "max_faces", 5))
        #: Unfused ``spoof`` becomes ``uncertain`` when the expert's score is above this.
        self.expert_veto = float(getattr(settings, "rgb_expert_veto", DEFAULT_EXPERT_VETO))
        #: An out-of-distribution face may be ``live`` when both components and the fusion
        #: agree (:func:`components_agree_live`).
        self.ood_agreement = bool(getattr(settings, "rgb_expert_ood_agreement", True))
        self._pool: ThreadPoolExecutor | None = None  # the RGB expert's threads, made on use
        self._pool_lock = threading.Lock()

    def _expert_pool(self) -> ThreadPoolExecutor:
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="rgb-expert")
            return self._pool

    @staticmethod
    def _timed_expert(
        expert: RgbExpert, rgb: np.ndarray, boxes: list[Any]
    ) -> tuple[list[float | Exception], float]:
        t0 = time.perf_counter()
        result = list(expert.score(rgb, boxes))
        return result, _ms(t0)

    def warmup(self) -> None:
        self.engine.warmup()
        self.face_stage.warmup()
        if self.expert is not None:
            self.expert.warmup()

    @property
    def ready(self) -> bool:
        return self.engine.ready

    def _without_colour(self, crops: Any, used: list[str], op: str) -> str | None:
        """The decision on ``crops`` scored without colour; :data:`COLOUR_ONLY` when colour
        was the only modality used; None when colour was not used, the model lacks the
        colour-free subset, or scoring fails."""
        if "rgb" not in used:
            return None
        rest = [m for m in used if m != "rgb"]
        if not rest:
            return COLOUR_ONLY
        score = score_without_colour(self.engine, crops, used)
        if score is None:
            return None
        return decide_for_subset(
            self.engine.spec, score, rest, op, self.uncertain_margin,
            self.spoof_operating_point,
        )  # fmt: skip

    def resolve_operating_point(self, name: str | None) -> tuple[str, float]:
        op = require_operating_point(
            self.engine.spec, name or self.default_operating_point, "operating_point",
            kind="unknown-operating-point",
        )  # fmt: skip
        return op, self.engine.spec.operating_points[op]

    def analyze(
        self,
        bundle: FrameBundle,
        *,
        cropped: bool,
        max_faces: int | None = None,
        operating_point: str | None = None,
        decode_ms: float = 0.0,
    ) -> Analysis:
        """Score every face of ``bundle`` (``cropped``: the bundle is one aligned face).

        Raises :class:`sensors.bundle.BundleError` for an invalid bundle and
        :class:`service.errors.InputError` for a bad option.
        """
        t_start = time.perf_counter()
        op, threshold = self.resolve_operating_point(operating_point)
        margin = self.uncertain_margin
        if max_faces is not None and max_faces < 1:
            raise InputError("max_faces must be at least 1", field="max_faces")
        limit = self.max_faces if max_faces is None else min(int(max_faces), self.max_faces)
        bundle.validate()

        t0 = time.perf_counter()
        staged = (
            self.face_stage.process_cropped(bundle)
            if cropped
            else self.face_stage.process(bundle, max_faces=limit)
        )
        face_ms = _ms(t0)

        used: list[str] = [m for m in MODALITIES if m in staged.modalities_used]
        frame_reasons = [_reason(r) for r in staged.reasons]
        # Faces that only the depth map shows: colour was usable and searched, and the face
        # detector found no face in it (a small print or screen held up, the back of a head).
        only_depth = (
            staged.detector == "depth"
            and "rgb" in used
            and self.face_stage.config.detector == "auto"
        )
        supported = bool(used) and self.engine.spec.supports(used)
        if used and not supported:
            frame_reasons.append(Reason.UNSUPPORTED_SUBSET.value)
        # Score distributions differ by modality subset: use the subset's own
        # dev-calibrated threshold when the model carries one (the global one otherwise).
        threshold = self.engine.spec.threshold(op, used)
        flexmodal_threshold = threshold
        spoof_op = self.spoof_operating_point
        spoof_point = self.engine.spec.threshold(spoof_op, used) if spoof_op else None
        ood_threshold = self.engine.spec.ood_threshold(used)

        # The RGB expert needs the colour frame around each face (its crops are 2.7 and 4
        # times the face box), so it runs on full frames only, not on aligned crops. It
        # runs on its own thread while the flexible-modal model scores the same faces.
        run_expert = (
            self.expert is not None
            and not cropped
            and supported
            and "rgb" in used
            and bundle.rgb is not None
            and bool(staged.faces)
        )
        expert_job: Future[tuple[list[float | Exception], float]] | None = None
        if run_expert:
            assert self.expert is not None and bundle.rgb is not None
            expert_job = self._expert_pool().submit(
                self._timed_expert, self.expert, bundle.rgb, [f.detection.box for f in staged.faces]
            )
        t0 = time.perf_counter()
        scores: list[Scored | Exception | None] = [None] * len(staged.faces)
        if supported and staged.faces:
            scores = list(self.engine.score([f.crops for f in staged.faces]))
        inference_ms = _ms(t0)
        expert_scores: list[float | Exception | None] = [None] * len(staged.faces)
        expert_ms = 0.0
        if expert_job is not None:
            expert_result, expert_ms = expert_job.result()
            expert_scores = list(expert_result)
        subset_fusion = self.fusion.for_subset(used) if (self.fusion and run_expert) else None
        fused_threshold = (
            subset_fusion.operating_points.get(op) if subset_fusion is not None else None
        )
        if fused_threshold is None or subset_fusion is None:
            subset_fusion = None
        else:
            threshold = fused_threshold
            if spoof_op:
                spoof_point = subset_fusion.operating_points.get(spoof_op)

        faces: list[FaceAnalysis] = []
        for cand, score, expert in zip(staged.faces, scores, expert_scores, strict=True):
            reasons = [_reason(r) for r in cand.reasons]
            value: float | None = None
            distance: float | None = None
            components: dict[str, float | None] = {}
            agreed = False
            if isinstance(expert, Exception):
                logger.warning("RGB expert failed on a face: %s", expert)
            if isinstance(score, Exception):
                logger.warning("face not scored: %s", score)
                reasons.append(REASON_INFERENCE_FAILED)
            elif score is not None:
                value = round(score.score, 6)
                components[COMPONENT_FLEXMODAL] = value
                if run_expert:
                    e = round(expert, 6) if isinstance(expert, float) else None
                    components[COMPONENT_RGB_EXPERT] = e
                    if subset_fusion is not None:
                        # Without the expert's score the fused threshold does not apply.
                        if e is None:
                            reasons.append(REASON_INFERENCE_FAILED)
                        else:
                            value = round(subset_fusion.fuse(score.score, e), 6)
                if score.ood_distance is not None:
                    distance = round(score.ood_distance, 4)
                    if ood_threshold is not None and distance > ood_threshold:
                        reasons.append(REASON_OUT_OF_DISTRIBUTION)
            if not supported:
                reasons.append(Reason.UNSUPPORTED_SUBSET.value)
            if (
                reasons == [REASON_OUT_OF_DISTRIBUTION]
                and self.ood_agreement
                and subset_fusion is not None
                and value is not None
                and isinstance(score, Scored)
                and components.get(COMPONENT_RGB_EXPERT) is not None
                and components_agree_live(
                    value,
                    threshold,
                    score.score,
                    flexmodal_threshold,
                    float(components[COMPONENT_RGB_EXPERT] or 0.0),
                    margin,
                )
            ):
                reasons = []  # both keys open; ood_distance still shows the distance
                agreed = True
            if value is None or reasons:
                decision: Decision = "uncertain"
            else:
                decision = decide(value, threshold, margin, spoof_point)
                if decision == "uncertain":
                    reasons.append(REASON_NEAR_THRESHOLD)
                elif decision == "live" and only_depth:
                    # Nothing confirms a live face there; an accusation may stand.
                    decision = "uncertain"
                    reasons.append(Reason.FACE_ONLY_IN_DEPTH.value)
                elif decision == "spoof" and expert_vetoes(
                    components.get(COMPONENT_RGB_EXPERT),
                    self.expert_veto,
                    partial(self._without_colour, cand.crops, used, op),
                ):
                    decision = "uncertain"
                    reasons.append(Reason.COMPONENTS_DISAGREE.value)
            det = cand.detection
            faces.append(
                FaceAnalysis(
                    box=[round(float(v), 2) for v in det.box],
                    landmarks=[[round(float(x), 2), round(float(y), 2)] for x, y in det.landmarks],
                    score=value,
                    decision=decision,
                    quality={k: round(float(v), 4) for k, v in cand.quality.items()},
                    reasons=list(dict.fromkeys(reasons)),
                    ood_distance=distance,
                    scores=components,
                    ood_agreement=agreed,
                )
            )
        timings = {
            "decode": round(decode_ms, 3),
            "face": face_ms,
            "inference": inference_ms,
            "rgb_expert": expert_ms,
            "total": round(decode_ms + _ms(t_start), 3),
        }
        return Analysis(
            model=self.engine.info,
            operating_point=op,
            threshold=threshold,
            uncertain_margin=margin,
            modalities_received=list(staged.modalities_received),
            modalities_used=used,
            faces=faces,
            reasons=list(dict.fromkeys(frame_reasons)),
            timings_ms=timings,
            detector=getattr(staged, "detector", ""),
            scoring=(
                f"{COMPONENT_FLEXMODAL}+{COMPONENT_RGB_EXPERT}"
                if subset_fusion is not None
                else COMPONENT_FLEXMODAL
            ),
            spoof_below=round(spoof_bound(threshold, margin, spoof_point), 6),
        )

    @staticmethod
    def subset_label(modalities: list[str]) -> str:
        return subset_name(modalities) if modalities else "none"
