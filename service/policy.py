"""The deployment policy: which modality sets a decision may rest on, and who may choose
the operating point.

A client must not be able to downgrade a deployment by leaving images out (a silicone
mask refused with RGB + depth + IR can pass on RGB alone) or by asking for a laxer
operating point. The policy is read from :class:`service.settings.Settings`:

- ``accepted_modalities``: ``any`` (default: every non-empty subset, as before) or a list
  of *required sets*, e.g. ``rgb+depth+ir,depth+ir``. A modality subset is accepted when
  it contains every modality of at least one listed set (more evidence is never refused).
- ``client_operating_point``: ``allow`` (default) or ``deny``; with ``deny`` a request
  may only name the deployment's own operating point, except with an API key listed in
  ``client_operating_point_keys``.

Where a request falls short: the REST API refuses a *sent* set the policy does not accept
(422 ``modality-not-accepted``: the integrator must fix the client), and
:meth:`ModalityPolicy.enforce` decides every face ``uncertain`` with reason
``modality_not_accepted``, without a score, when the subset actually *used* falls short
because modality health dropped a broken image. The API and the camera daemon both apply
it to the pipeline's analysis (in the daemon a sensor dropout must not silently downgrade).
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from models.spec import MODALITIES, parse_subset, subset_name
from service.decision import Reason
from service.errors import ServiceError

if TYPE_CHECKING:
    from service.pipeline import Analysis

#: Reason code of a face (and frame) whose used modality subset the policy does not accept.
REASON_MODALITY_NOT_ACCEPTED = Reason.MODALITY_NOT_ACCEPTED.value
ANY = "any"
#: Face fields that carry what the model said; a face decided on a refused subset keeps
#: none of them, so no client can read (and threshold itself) a downgraded score.
_MODEL_OUTPUTS: dict[str, Any] = {"score": None, "ood_distance": None, "scores": {}}


class ModalityNotAcceptedError(ServiceError):
    """The modalities sent do not satisfy the deployment's policy (422)."""

    status = 422
    kind = "modality-not-accepted"
    title = "Modality set not accepted"


class OperatingPointNotAllowedError(ServiceError):
    """The request names an operating point this client may not choose (403)."""

    status = 403
    kind = "operating-point-not-allowed"
    title = "Operating point not allowed"


def parse_accepted_modalities(text: str) -> tuple[tuple[str, ...], ...] | None:
    """``"any"`` → None; ``"rgb+depth+ir, depth+ir"`` → canonical required sets.

    Sets are separated by ``,`` or ``;`` or ``|``, modalities inside a set by ``+``. Raises
    ``ValueError`` naming the bad entry.
    """
    raw = text.strip().lower()
    if raw in ("", ANY):
        return None
    sets: list[tuple[str, ...]] = []
    for entry in raw.replace(";", ",").replace("|", ",").split(","):
        entry = entry.strip()
        if not entry:
            continue
        subset = parse_subset(entry)  # raises on unknown names
        if subset not in sets:
            sets.append(subset)
    if not sets:
        raise ValueError("no modality set given; use 'any' or e.g. 'rgb+depth+ir,depth+ir'")
    return tuple(sets)


@dataclass(frozen=True)
class ModalityPolicy:
    """Required modality sets (None = any non-empty subset is accepted)."""

    required: tuple[tuple[str, ...], ...] | None = None

    @classmethod
    def parse(cls, text: str) -> ModalityPolicy:
        return cls(parse_accepted_modalities(text))

    @classmethod
    def from_settings(cls, settings: Any) -> ModalityPolicy:
        return cls.parse(str(getattr(settings, "accepted_modalities", None) or ANY))

    @property
    def restricts(self) -> bool:
        return self.required is not None

    def accepts(self, modalities: Iterable[str]) -> bool:
        if self.required is None:
            return True
        have = set(modalities)
        return any(set(req) <= have for req in self.required)

    def describe(self) -> str:
        """The accepted sets in words, e.g. ``rgb+depth+ir or depth+ir`` (for messages)."""
        if self.required is None:
            return "any non-empty subset of rgb, depth, ir"
        return " or ".join(subset_name(s) for s in self.required)

    def names(self) -> list[str]:
        """The required sets as canonical names (``["any"]`` when unrestricted)."""
        if self.required is None:
            return [ANY]
        return [subset_name(s) for s in self.required]

    def enforce(self, analysis: Analysis) -> Analysis:
        """The analysis as the policy lets it stand.

        When the subset actually *used* (after modality health) falls short, every face
        becomes ``uncertain`` with reason ``modality_not_accepted`` and loses its score,
        and the frame carries the reason too. Otherwise the analysis is returned as is.
        """
        if self.accepts(analysis.modalities_used):
            return analysis
        faces = []
        for face in analysis.faces:
            names = {f.name for f in dataclasses.fields(face)}
            cleared: dict[str, Any] = {
                k: copy.copy(v) for k, v in _MODEL_OUTPUTS.items() if k in names
            }
            reasons = list(dict.fromkeys([*face.reasons, REASON_MODALITY_NOT_ACCEPTED]))
            faces.append(
                dataclasses.replace(face, decision="uncertain", reasons=reasons, **cleared)
            )
        frame_reasons = list(dict.fromkeys([*analysis.reasons, REASON_MODALITY_NOT_ACCEPTED]))
        return dataclasses.replace(analysis, faces=faces, reasons=frame_reasons)

    def check_sent(self, modalities: Iterable[str]) -> None:
        """Raise :class:`ModalityNotAcceptedError` when the sent set falls short."""
        sent = [m for m in MODALITIES if m in set(modalities)]
        if not sent or self.accepts(sent):
            return  # an empty request is the decoder's 422 (empty-request)
        raise ModalityNotAcceptedError(
            f"this deployment decides on {self.describe()} (a request must include every "
            f"image of one of these sets); the request sent {subset_name(sent)}",
            field="modalities",
        )


def parse_key_names(text: str) -> frozenset[str]:
    return frozenset(n.strip() for n in text.split(",") if n.strip())


def check_operating_point(
    requested: str | None, deployment_default: str, settings: Any, key_name: str | None
) -> None:
    """Raise :class:`OperatingPointNotAllowedError` when a client may not choose ``requested``.

    Naming the deployment's own operating point is always allowed (it changes nothing).
    """
    if requested is None or requested == deployment_default:
        return
    if getattr(settings, "client_operating_point", "allow") == "allow":
        return
    allowed = parse_key_names(getattr(settings, "client_operating_point_keys", "") or "")
    if key_name is not None and key_name in allowed:
        return
    raise OperatingPointNotAllowedError(
        f"this deployment pins the operating point '{deployment_default}'; leave "
        f"operating_point out (this client may not choose '{requested}')",
        field="operating_point",
    )
