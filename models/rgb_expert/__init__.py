"""The RGB expert: MiniFASNet V2 + V1SE (Minivision, Apache-2.0), trained on real captures.

``models/rgb_expert/*.onnx`` are converted from the published state dicts by
:mod:`models.rgb_expert.convert`; provenance, licence and checksums are in ``README.md``
beside them. :mod:`models.rgb_expert.crop` builds the publisher's crop from a FlexLive
face box. The service runs the ONNX files with :mod:`service.rgb_expert`.
"""

from pathlib import Path

EXPERT_DIR = Path(__file__).resolve().parent
