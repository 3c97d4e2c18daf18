"""Name-keyed model registry (after timm): builders register by decorator, one factory.

A builder is a function returning a :class:`~models.nets.base.FlexModalNet`; its
``__name__`` is the model name. ``create_model(name, **overrides)`` passes the overrides
to the builder, so a checkpoint only needs the name and the overrides to rebuild a net.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from models.nets.base import FlexModalNet

Builder = TypeVar("Builder", bound=Callable[..., "FlexModalNet"])

_BUILDERS: dict[str, Callable[..., FlexModalNet]] = {}


def register_model(fn: Builder) -> Builder:
    """Register a model builder under its function name; a duplicate name is an error."""
    name = fn.__name__
    if name in _BUILDERS:
        raise ValueError(f"model '{name}' is already registered")
    _BUILDERS[name] = fn
    return fn


def list_models() -> list[str]:
    """Names of every registered model, sorted."""
    return sorted(_BUILDERS)


def create_model(name: str, **overrides: Any) -> FlexModalNet:
    """Build a registered model; ``overrides`` go to its builder (e.g. ``fusion='concat'``)."""
    if name not in _BUILDERS:
        raise KeyError(f"unknown model '{name}'; registered: {', '.join(list_models())}")
    model = _BUILDERS[name](**overrides)
    model.model_name = name
    model.model_overrides = dict(overrides)
    return model
