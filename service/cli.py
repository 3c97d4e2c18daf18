"""The ``liveness`` command: one CLI, subcommands loaded lazily.

Each subcommand lives in the module that owns it; importing it only when it is invoked
keeps ``liveness --help`` and ``liveness serve`` free of torch.
"""

from __future__ import annotations

import importlib
import logging

import click

from service import __version__

#: subcommand → "module:attribute" of a click.Command
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "serve": ("service.commands:serve", "Run the REST liveness service."),
    "daemon": ("service.daemon.command:daemon", "Run the live camera daemon on a source."),
    "synth": ("synth.command:synth", "Generate the synthetic multi-sensor PAD benchmark."),
    "train": ("models.commands:train", "Train a flexible-modal network (needs the train extra)."),
    "eval": ("models.commands:evaluate", "Evaluate a model on a protocol (PAD metrics)."),
    "export": ("models.commands:export", "Export a trained checkpoint to ONNX with metadata."),
    "bench": ("service.commands:bench", "Measure latency/throughput of the serving path."),
    "expert": ("service.expert_eval:expert", "Calibrate/evaluate the RGB expert's fusion."),
}


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
            hint = ""
            if missing.split(".")[0] in {"torch", "onnx", "onnxscript"}:
                hint = " Install the training extra: pip install 'flexlive[train]'."
            elif missing.split(".")[0] == "pyrealsense2":
                hint = " Install the RealSense extra: pip install 'flexlive[realsense]'."

            @click.command(cmd_name, help=SUBCOMMANDS[cmd_name][1])
            def _unavailable() -> None:
                raise click.ClickException(
                    f"'liveness {cmd_name}' is unavailable: module '{missing}' is not "
                    f"installed.{hint}"
                )

            return _unavailable
        command = getattr(module, attr)
        assert isinstance(command, click.Command)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, SUBCOMMANDS[name][1]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="liveness")
@click.option("--log-level", default="INFO", show_default=True, help="Python logging level.")
def main(log_level: str) -> None:
    """FlexLive: multi-sensor (RGB / Depth / IR) face liveness with one flexible-modal model."""
    logging.basicConfig(
        level=getattr(logging, log_level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


if __name__ == "__main__":  # pragma: no cover
    main()
