"""The decision vocabulary: one definition of what a face can be decided and why.

The pipeline decides, the API returns, the daemon aggregates and the deployment policy
overrides with these — every reason code a client can see is a member of :class:`Reason`
(its string value is what the JSON carries), and :data:`Decision` is the one decision type.
"""

from __future__ import annotations

from enum import Enum
from typing import Literal, get_args

#: What a face is decided.
Decision = Literal["live", "spoof", "uncertain"]
DECISIONS: tuple[Decision, ...] = get_args(Decision)


class Reason(str, Enum):
    """Machine-readable reason codes, returned to clients as their string value."""

    # frame level
    NO_FACE = "no_face"
    # face quality
    FACE_TOO_SMALL = "face_too_small"  # too far from the camera
    FACE_TOO_CLOSE = "face_too_close"
    FACE_CUT_BY_EDGE = "face_cut_by_edge"
    TOO_DARK = "too_dark"
    TOO_BRIGHT = "too_bright"
    BLURRED = "blurred"
    POSE_TOO_LARGE = "pose_too_large"
    DEPTH_HOLES = "depth_holes"
    IR_SATURATED = "ir_saturated"
    # modality health: a received modality was dropped before inference
    RGB_UNUSABLE = "rgb_unusable"
    DEPTH_UNUSABLE = "depth_unusable"
    IR_UNUSABLE = "ir_unusable"
    NO_USABLE_MODALITY = "no_usable_modality"
    UNSUPPORTED_SUBSET = "unsupported_modality_subset"
    # the pipeline's decision
    SCORE_NEAR_THRESHOLD = "score_near_threshold"
    INFERENCE_FAILED = "inference_failed"
    #: The face's embedding is farther from the training data of its modality subset than
    #: the model's dev-calibrated OOD threshold (``models.ood``): no confident answer.
    OUT_OF_DISTRIBUTION = "out_of_distribution"
    #: The decision would be ``spoof`` on colour evidence alone (colour was the only
    #: modality, or the face scored without colour is not ``spoof``) but the RGB expert
    #: (trained on real captures) says live: no confident answer.
    COMPONENTS_DISAGREE = "components_disagree"
    #: The score says live, but only the depth map shows a head here: the colour image was
    #: usable and the face detector found no face in it (a small print or screen held up,
    #: the back of a head). A spoof decision on such a face stands.
    FACE_ONLY_IN_DEPTH = "face_only_in_depth"
    # the deployment's modality policy (``LIVENESS_ACCEPTED_MODALITIES``)
    MODALITY_NOT_ACCEPTED = "modality_not_accepted"
    # the camera daemon: a frame whose analysis raised
    ANALYSIS_FAILED = "analysis_failed"


def reason_code(reason: Reason | str) -> str:
    """The string a client sees for ``reason``."""
    return reason.value if isinstance(reason, Reason) else str(reason)


__all__ = ["DECISIONS", "Decision", "Reason", "reason_code"]
