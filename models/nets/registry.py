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
#: Names registered with :func:`register_large_model`: paper-scale GPU networks.
_LARGE: set[str] = set()


def register_model(fn: Builder) -> Builder:
    """Register a model builder under its function name; a duplicate name is an error."""
    name = fn.__name__
    if name in _BUILDERS:
        raise ValueError(f"model '{name}' is already registered")
    _BUILDERS[name] = fn
    return fn


def register_large_model(fn: Builder) -> Builder:
    """Register a paper-scale network (tens to hundreds of GFLOP per face: a GPU model).

    It is created like any other, but :func:`list_models` leaves it out unless asked:
    code that builds every listed model at its default size on a CPU (the parametrised
    network tests, ``--list-networks`` smoke runs) would otherwise spend minutes per name.
    Tests build these at a tiny size through overrides instead.
    """
    register_model(fn)
    _LARGE.add(fn.__name__)
    return fn


def list_models(include_large: bool = False) -> list[str]:
    """Names of the registered models, sorted; the paper-scale ones only with
    ``include_large`` (see :func:`register_large_model`)."""
    return sorted(n for n in _BUILDERS if include_large or n not in _LARGE)


def is_large(name: str) -> bool:
    """Whether ``name`` is a paper-scale network (see :func:`register_large_model`)."""
    return name in _LARGE


def create_model(name: str, **overrides: Any) -> FlexModalNet:
    """Build a registered model; ``overrides`` go to its builder (e.g. ``fusion='concat'``)."""
    if name not in _BUILDERS:
        known = ", ".join(list_models(include_large=True))
        raise KeyError(f"unknown model '{name}'; registered: {known}")
    model = _BUILDERS[name](**overrides)
    model.model_name = name
    model.model_overrides = dict(overrides)
    return model
