"""Flexible-modal networks: per-modality branches → fusion → heads, behind one registry.

Importing this package registers every network (one module per family). Add a family by
writing a new module with ``@register_model`` builders and importing it here.
"""

from models.nets import (  # noqa: F401  (each module registers its family)
    cdcn,
    efficientnet,
    ensemble,
    lite,
    resnet,
    vit,
)
from models.nets.base import FlexModalNet
from models.nets.fusion import FUSIONS, create_fusion
from models.nets.registry import (
    create_model,
    is_large,
    list_models,
    register_large_model,
    register_model,
)

__all__ = [
    "FUSIONS",
    "FlexModalNet",
    "create_fusion",
    "create_model",
    "is_large",
    "list_models",
    "register_large_model",
    "register_model",
]
