"""Click helpers shared by the ``liveness`` subcommands (no heavy imports)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click


def renamed_option(old: str, new: str, why: str = "") -> Callable[[Any], Any]:
    """A hidden ``old`` option that stops with a one-line usage error naming ``new``.

    An option that was renamed so that each name means one thing across the subcommands
    keeps answering its old spelling with the fix instead of "no such option".
    """

    def refuse(ctx: click.Context, param: click.Parameter, value: Any) -> None:
        if value is None:
            return None
        raise click.UsageError(f"{old} is now {new} ({value}){': ' + why if why else ''}", ctx=ctx)

    return click.option(
        old,
        param_decl_name(old),
        default=None,
        hidden=True,
        expose_value=False,
        is_eager=True,
        callback=refuse,
    )


def param_decl_name(option: str) -> str:
    return "renamed_" + option.lstrip("-").replace("-", "_")
