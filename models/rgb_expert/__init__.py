"""The RGB expert: MiniFASNet V2 + V1SE (Minivision, Apache-2.0), trained on real captures.

``models/rgb_expert/*.onnx`` are converted from the published state dicts by
:mod:`models.rgb_expert.convert`; provenance, licence and checksums are in ``README.md``
beside them. :mod:`models.rgb_expert.crop` builds the publisher's crop from a FlexLive
face box. The service runs the ONNX files with :mod:`service.rgb_expert`.
"""

from dataclasses import dataclass
from pathlib import Path

EXPERT_DIR = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Variant:
    """One published network: its state-dict file, the ONNX file name, the crop scale."""

    source: str
    onnx: str
    scale: float
    #: Short name (settings, the fusion's record): "v2", "v1se".
    name: str = ""


#: Both networks (here, not in the converter: the service must not import torch).
VARIANTS = (
    Variant("2.7_80x80_MiniFASNetV2.pth", "minifasnet_v2.onnx", 2.7, "v2"),
    Variant("4_0_0_80x80_MiniFASNetV1SE.pth", "minifasnet_v1se.onnx", 4.0, "v1se"),
)
