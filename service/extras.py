"""Optional packages and the install extra that provides each.

A command that needs one checks for it with :func:`require_modules` *before* doing any
work, so a missing package is one line naming the extra to install, never a traceback
after minutes of rendering or loading. The check finds the module without importing it.
"""

from __future__ import annotations

import importlib.util

import click

#: top-level module → extra of pyproject.toml that installs it
EXTRA_OF: dict[str, str] = {
    "torch": "train",
    "onnx": "train",
    "onnxscript": "train",
    "pyrealsense2": "realsense",
    "httpx": "bench",
    "paho": "mqtt",
}


def is_installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a broken install, or a module without a spec
        return False


def install_hint(module: str) -> str:
    """``pip install 'flexlive[extra]'`` for ``module`` (its own name when no extra has it)."""
    extra = EXTRA_OF.get(module.split(".")[0])
    if extra is None:
        return f"pip install {module.split('.')[0]}"
    return f"pip install 'flexlive[{extra}]' (in a clone: .venv/bin/pip install -e '.[{extra}]')"


def missing_message(what: str, module: str) -> str:
    return f"{what} needs the package '{module}', which is not installed: {install_hint(module)}"


def require_modules(what: str, *modules: str) -> None:
    """Raise a one-line :class:`click.ClickException` naming the extra of the first missing
    module (``what`` says who needs it, e.g. ``'liveness train'``)."""
    for module in modules:
        if not is_installed(module):
            raise click.ClickException(missing_message(what, module))
