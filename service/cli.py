"""The ``liveness`` command: one CLI, subcommands loaded lazily.

Each subcommand lives in the module that owns it; importing it only when it is invoked
keeps ``liveness --help`` and ``liveness serve`` free of torch.
"""

from __future__ import annotations

import copy
import functools
import importlib
import logging
from typing import Any

import click

from service import __version__
from service.extras import install_hint, require_modules

#: subcommand → "module:attribute" of a click.Command
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "serve": ("service.commands:serve", "Run the REST liveness service."),
    "daemon": ("service.daemon.command:daemon", "Run the live camera daemon on a source."),
    "synth": ("synth.command:synth", "Generate the synthetic multi-sensor PAD benchmark."),
    "train": ("models.commands:train", "Train a flexible-modal network (needs the train extra)."),
    "eval": ("models.commands:evaluate", "Evaluate a model on a protocol (PAD metrics)."),
    "export": ("models.commands:export", "Export a trained checkpoint to ONNX with metadata."),
    "checkpoints": (
        "models.commands:checkpoints",
        "Rebuild training checkpoints from an exported model (fine-tune it).",
    ),
    "quantize": ("models.commands:quantize_command", "INT8 copy of an exported model (CPU)."),
    "bench": ("service.commands:bench", "Measure latency/throughput of the serving path."),
    "expert": ("service.expert_eval:expert", "Calibrate/evaluate the RGB expert's fusion."),
    "predict": ("service.predict:predict", "Score one photo (+ depth/IR) without a server."),
}

#: Optional packages a subcommand imports only once it runs: checked after its arguments
#: are parsed and before it does any work (options that need more check for themselves,
#: e.g. ``bench --url``, ``synth recordings``).
NEEDS: dict[str, tuple[str, ...]] = {
    "train": ("torch",),
    "eval": ("onnx",),
    "checkpoints": ("torch", "onnx"),
    "export": ("onnx",),  # and torch, checked by the command unless it writes --triton
    "quantize": ("onnx",),
}


def _checked(name: str, command: click.Command) -> click.Command:
    """``command`` with its callback preceded by the check of ``NEEDS[name]``."""
    inner = command.callback
    if inner is None or not NEEDS.get(name):
        return command

    @functools.wraps(inner)
    def callback(*args: Any, **kwargs: Any) -> Any:
        require_modules(f"'liveness {name}'", *NEEDS[name])
        return inner(*args, **kwargs)

    checked = copy.copy(command)
    checked.callback = callback
    return checked


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(SUBCOMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in SUBCOMMANDS:
            return None
        target, _ = SUBCOMMANDS[cmd_name]
        module_name, attr = target.split(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            missing = exc.name or "a dependency"

            @click.command(cmd_name, help=SUBCOMMANDS[cmd_name][1])
            def _unavailable() -> None:
                raise click.ClickException(
                    f"'liveness {cmd_name}' is unavailable: module '{missing}' is not "
                    f"installed: {install_hint(missing)}"
                )

            return _unavailable
        command = getattr(module, attr)
        assert isinstance(command, click.Command)
        return _checked(cmd_name, command)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, SUBCOMMANDS[name][1]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


#: Levels ``--log-level`` accepts (any case); the service's settings accept the same.
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def log_level_option(ctx: click.Context) -> str | None:
    """The top-level ``--log-level`` when it was given (None: the command's own default,
    e.g. ``LIVENESS_LOG_LEVEL`` for ``serve``)."""
    value = ctx.find_root().params.get("log_level")
    return str(value) if value else None


#: Libraries whose INFO lines are noise to a CLI user.
QUIET_LIBRARIES = ("onnxscript", "onnx_ir", "torch.onnx")


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="liveness")
@click.option(
    "--log-level",
    type=click.Choice(LOG_LEVELS, case_sensitive=False),
    default=None,
    help="Logging level of every subcommand, `serve` included (overrides "
    "LIVENESS_LOG_LEVEL)  [default: INFO]",
)
def main(log_level: str | None) -> None:
    """FlexLive: multi-sensor (RGB / Depth / IR) face liveness with one flexible-modal model."""
    level = getattr(logging, log_level or "INFO")
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # The ONNX exporter's optimiser logs one INFO line per graph rewrite (~20 per export):
    # library detail, shown only when DEBUG is asked for.
    for name in QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(level if level <= logging.DEBUG else logging.WARNING)


if __name__ == "__main__":  # pragma: no cover
    main()
