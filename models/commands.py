"""``liveness train`` / ``liveness eval`` / ``liveness export`` (click commands).

Heavy modules (torch, onnx, onnxruntime) are imported inside the command functions, so
``liveness --help`` stays light.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from models.cli_options import renamed_option


def _json_or_text(value: str) -> object:
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return value


def _pairs(items: object, option: str, form: str, convert: Callable[[str], Any]) -> dict[str, Any]:
    """``NAME=VALUE`` arguments of a repeatable option as a mapping; a malformed one (no
    ``=``, no name, or a value ``convert`` refuses) is a usage error naming the form."""
    out: dict[str, Any] = {}
    for item in items:  # type: ignore[attr-defined]
        key, sep, value = str(item).partition("=")
        try:
            if not sep or not key:
                raise ValueError(item)
            out[key] = convert(value)
        except ValueError:
            raise click.BadParameter(f"expected {form}, got {item!r}", param_hint=option) from None
    return out


@click.command("train")
@click.option(
    "--data",
    default=None,
    type=click.Path(exists=True, file_okay=False),
    help="Data root holding crops/ and protocols/ (required unless --list-networks).",
)
@click.option(
    "--protocol",
    default="intra",
    show_default=True,
    help="Protocol name under DATA/protocols/ (train/dev/test lists).",
)
@click.option(
    "--extra-data",
    multiple=True,
    type=click.Path(exists=True, file_okay=False),
    help="Another data root whose train split (same protocol) joins DATA's; the dev split "
    "stays DATA's. Repeatable.",
)
@click.option(
    "--network",
    "model_name",
    default="flexlive_lite",
    show_default=True,
    help="Registered network name (see --list-networks).",
)
@renamed_option("--model", "--network", "everywhere else --model names an ONNX file")
@renamed_option("--workers", "--loader-workers", "'serve --workers' is server processes")
@click.option(
    "--fusion",
    default=None,
    help="Override the network's fusion (concat, se_concat, cross_attention).",
)
@click.option(
    "--override",
    "overrides",
    multiple=True,
    help="Builder override KEY=VALUE (VALUE parsed as JSON), e.g. widths=[24,48,96].",
)
@click.option("--epochs", default=10, show_default=True)
@click.option("--batch-size", default=64, show_default=True)
@click.option("--lr", default=3e-3, show_default=True)
@click.option("--weight-decay", default=0.05, show_default=True)
@click.option("--pixel-weight", default=0.5, show_default=True, help="Weight of the pixel-map BCE.")
@click.option("--seed", default=0, show_default=True)
@click.option("--p-drop-rgb", default=0.2, show_default=True, help="Modality dropout: P(drop RGB).")
@click.option("--p-drop-depth", default=0.5, show_default=True)
@click.option("--p-drop-ir", default=0.5, show_default=True)
@click.option("--no-augment", is_flag=True, help="Disable raw-crop augmentation.")
@click.option(
    "--subset", default=None, help="Train a specialist on one modality subset, e.g. rgb+depth."
)
@click.option(
    "--depth-encoding",
    type=click.Choice(["mm16", "normalised8", "normalised8_far"]),
    default="mm16",
    show_default=True,
    help="mm16: 16-bit PNG in mm; normalised8: 8-bit pre-normalised (CASIA-SURF/CeFA).",
)
@click.option(
    "--loader-workers", "workers", default=0, show_default=True, help="DataLoader worker processes."
)
@click.option("--threads", default=2, show_default=True, help="torch intra-op threads.")
@click.option(
    "--device",
    type=click.Choice(["auto", "cpu", "cuda"]),
    default="auto",
    show_default=True,
    help="Where to train; on a GPU with bf16 mixed precision (--no-amp: fp32).",
)
@click.option("--no-amp", is_flag=True, help="On a GPU, train in fp32 instead of bf16 autocast.")
@click.option("--max-steps", default=None, type=int, help="Stop after this many steps.")
@click.option(
    "--init",
    default=None,
    type=click.Path(exists=True, dir_okay=False),
    help="Start from this checkpoint.pt's weights (fine-tune a trained network on new data; "
    "the bundled model's networks: 'liveness checkpoints').",
)
@click.option(
    "--species-weight",
    "species_weights",
    multiple=True,
    help="Oversample a species, SPECIES=WEIGHT (e.g. mask_silicone=3; bona_fide for live "
    "faces; others weigh 1). Repeatable.",
)
@click.option(
    "--hide-glints",
    default=0.0,
    show_default=True,
    type=click.FloatRange(0.0, 1.0),
    help="Rate at which a sample's NIR eyes lose their corneal glints (a blink, glasses), "
    "every species alike: a missing glint must not read as an attack.",
)
@click.option(
    "--freeze-batchnorm",
    is_flag=True,
    help="Keep batch norms in eval mode (statistics fixed); required with an --init "
    "checkpoint rebuilt from an ONNX file by 'liveness checkpoints'.",
)
@click.option("--out", default="runs/flexlive-lite", show_default=True, type=click.Path())
@click.option(
    "--config",
    "config_file",
    default=None,
    type=click.Path(exists=True, dir_okay=False),
    help="YAML file of training settings (configs/*.yaml); options given here override it.",
)
@click.option(
    "--resume",
    is_flag=True,
    help="Continue from OUT/last.pt (written after every epoch) when it exists.",
)
@click.option(
    "--list-networks", "list_models", is_flag=True, help="List registered networks and exit."
)
@click.pass_context
def train(ctx: click.Context, **kw: object) -> None:
    """Train a flexible-modal network; writes OUT/checkpoint.pt (and OUT/last.pt each epoch)."""
    from models.nets import list_models
    from models.nets.registry import is_large
    from models.train import SetupError, TrainConfig
    from models.train import train as run

    if kw.pop("list_models"):
        for name in list_models(include_large=True):
            click.echo(f"{name}  (paper scale: a GPU model)" if is_large(name) else name)
        return
    config_file = kw.pop("config_file")
    given = {k for k in kw if ctx.get_parameter_source(k) is not click.core.ParameterSource.DEFAULT}
    if config_file is None and not kw["data"]:
        raise click.UsageError("Missing option '--data' (or a --config file that names it).")
    model_overrides: dict[str, object] = {}
    model_overrides.update(_pairs(kw["overrides"], "--override", "KEY=VALUE", _json_or_text))
    if kw["fusion"]:
        model_overrides["fusion"] = kw["fusion"]
    species_weight = _pairs(kw["species_weights"], "--species-weight", "SPECIES=WEIGHT", float)
    # CLI option → TrainConfig field
    values: dict[str, object] = {
        "data": kw["data"],
        "extra_data": list(kw["extra_data"]),  # type: ignore[call-overload]
        "protocol": kw["protocol"],
        "out": kw["out"],
        "model": kw["model_name"],
        "epochs": kw["epochs"],
        "batch_size": kw["batch_size"],
        "lr": kw["lr"],
        "weight_decay": kw["weight_decay"],
        "pixel_weight": kw["pixel_weight"],
        "seed": kw["seed"],
        "p_drop_rgb": kw["p_drop_rgb"],
        "p_drop_depth": kw["p_drop_depth"],
        "p_drop_ir": kw["p_drop_ir"],
        "augment": not kw["no_augment"],
        "subset": kw["subset"],
        "depth_encoding": kw["depth_encoding"],
        "num_workers": kw["workers"],
        "threads": kw["threads"],
        "max_steps": kw["max_steps"],
        "resume": kw["resume"],
        "device": kw["device"],
        "amp": not kw["no_amp"],
        "init": kw["init"],
        "species_weight": species_weight,
        "hide_glints": kw["hide_glints"],
        "freeze_batchnorm": kw["freeze_batchnorm"],
    }
    source = {
        "model": "model_name",
        "augment": "no_augment",
        "num_workers": "workers",
        "amp": "no_amp",
        "species_weight": "species_weights",
    }
    try:
        if config_file is None:
            cfg = TrainConfig(model_overrides=model_overrides, **values)  # type: ignore[arg-type]
        else:
            explicit = {k: v for k, v in values.items() if source.get(k, k) in given}
            if model_overrides:
                explicit["model_overrides"] = model_overrides
            cfg = TrainConfig.from_yaml(config_file, **explicit)
    except (ValueError, TypeError) as exc:
        raise click.ClickException(f"training settings: {exc}") from None
    try:
        path = run(cfg)
    except SetupError as exc:
        raise click.ClickException(str(exc)) from None
    if os.environ.get("RANK", "0") == "0":  # under torchrun, rank 0 wrote it
        click.echo(f"checkpoint: {path}")


@click.command("eval")
@click.option(
    "--model",
    "model_paths",
    required=True,
    multiple=True,
    type=click.Path(exists=True, dir_okay=False),
    help="Exported ONNX model; give it more than once to compare models side by side.",
)
@click.option("--data", required=True, type=click.Path(exists=True, file_okay=False))
@click.option("--protocol", default="intra", show_default=True)
@click.option("--split", default="test", show_default=True)
@click.option(
    "--subset",
    "subsets",
    multiple=True,
    help="Modality subset(s) to evaluate, e.g. rgb+ir (default: all non-empty).",
)
@click.option(
    "--thresholds",
    type=click.Choice(["dev", "model"]),
    default="dev",
    show_default=True,
    help="dev: calibrate per subset on the dev split; model: the model's stored points.",
)
@click.option(
    "--depth-encoding",
    type=click.Choice(["mm16", "normalised8", "normalised8_far"]),
    default="mm16",
    show_default=True,
)
@click.option("--threads", default=2, show_default=True)
@click.option(
    "--json",
    "json_out",
    type=click.Path(dir_okay=False),
    default=None,
    help='Also write the full report as JSON (several models: {"models": [...]}).',
)
@click.option(
    "--plots",
    "plots_dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Write DET and ROC curves and score histograms per modality subset (PNG) here; "
    "with several models, one sub-folder per model.",
)
def evaluate(
    model_paths: tuple[str, ...],
    data: str,
    protocol: str,
    split: str,
    subsets: tuple[str, ...],
    thresholds: str,
    depth_encoding: str,
    threads: int,
    json_out: str | None,
    plots_dir: str | None,
) -> None:
    """Evaluate ONNX models on every modality subset (ISO/IEC 30107-3 metrics)."""
    from models.evaluate import evaluate as run
    from models.evaluate import format_comparison, format_table

    reports = []
    for i, model_path in enumerate(model_paths):
        plots: Path | None = None
        if plots_dir is not None:
            plots = Path(plots_dir)
            if len(model_paths) > 1:
                plots = plots / f"{i + 1}-{Path(model_path).stem}"
        report = run(
            model_path,
            data,
            protocol,
            split,
            subsets or None,
            thresholds,
            depth_encoding,
            threads,
            plots=plots,
        )
        reports.append(report)
        click.echo(
            f"{report['model_name']} {report['model_version']} ({model_path}) on "
            f"{protocol}/{split} (thresholds: {thresholds})"
        )
        click.echo(format_table(report["subsets"]))
        if plots is not None:
            click.echo(f"plots: {plots} ({len(report['plots'])} PNG files)")
        click.echo("")
    if len(reports) > 1:
        click.echo(f"side by side, {protocol}/{split}:")
        click.echo(format_comparison(reports))
    if json_out:
        Path(json_out).parent.mkdir(parents=True, exist_ok=True)
        body = reports[0] if len(reports) == 1 else {"models": reports}
        Path(json_out).write_text(json.dumps(body, indent=2))
        click.echo(f"report: {json_out}")


@click.command("export")
@click.option(
    "--checkpoint",
    "checkpoints",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False),
    help="checkpoint.pt from liveness train; give it more than once to export an ensemble "
    "that averages the networks' logits (same recipe, different seeds).",
)
@click.option("--out", type=click.Path(dir_okay=False), help="ONNX file to write.")
@click.option(
    "--data",
    type=click.Path(exists=True, file_okay=False),
    help="Data root; the dev split calibrates thresholds, test is summarised.",
)
@click.option(
    "--triton",
    "triton_repo",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Instead of exporting a checkpoint, write an NVIDIA Triton model repository for "
    "--model (default: the bundled model): DIR/<name>/1/model.onnx + DIR/<name>/config.pbtxt "
    "(docs/deployment.md).",
)
@click.option(
    "--model",
    "triton_model",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="With --triton: the exported ONNX model to put in the repository.",
)
@click.option(
    "--triton-max-batch",
    default=32,
    show_default=True,
    type=click.IntRange(1),
    help="With --triton: max_batch_size of the dynamic batcher.",
)
@click.option(
    "--triton-gpus",
    default=1,
    show_default=True,
    type=click.IntRange(0),
    help="With --triton: GPUs of the KIND_GPU instance group (0: CPU instances only).",
)
@click.option("--protocol", default="intra", show_default=True)
@click.option("--name", default="flexlive-lite", show_default=True)
@click.option("--version", "version", default="0.1.0", show_default=True)
@click.option("--training-data", default=None, help="Training data description for the metadata.")
@click.option("--no-test", is_flag=True, help="Do not evaluate the test split into the metadata.")
@click.option(
    "--operating-point",
    default="eer",
    show_default=True,
    type=click.Choice(["eer", "apcer5", "apcer1", "bpcer1"]),
    help="Default operating point stored in the model.",
)
@click.option(
    "--ood-percentile",
    default=99.5,
    show_default=True,
    type=click.FloatRange(50, 100),
    help="Out-of-distribution threshold per modality subset: this percentile of the dev "
    "split's distances (the distance model is fitted on the train split).",
)
@click.option("--no-ood", is_flag=True, help="Export without the out-of-distribution output.")
def export(
    checkpoints: tuple[str, ...],
    out: str,
    data: str,
    protocol: str,
    name: str,
    version: str,
    training_data: str | None,
    no_test: bool,
    operating_point: str,
    ood_percentile: float,
    no_ood: bool,
    triton_repo: Path | None,
    triton_model: Path | None,
    triton_max_batch: int,
    triton_gpus: int,
) -> None:
    """Export a checkpoint to ONNX with calibrated operating points and full metadata.

    With --triton DIR: write a Triton model repository for an already exported model.
    """
    if triton_repo is not None:
        _export_triton(triton_repo, triton_model, name, triton_max_batch, triton_gpus)
        return
    for flag, value in (("--checkpoint", checkpoints), ("--out", out), ("--data", data)):
        if not value:
            raise click.UsageError(f"Missing option '{flag}'.")
    from service.extras import require_modules

    # A Triton repository needs onnx only; exporting a checkpoint needs torch too.
    require_modules("'liveness export'", "torch")
    from models.export import export as run

    try:
        spec = run(
            list(checkpoints),
            out,
            data,
            protocol,
            name,
            version,
            training_data,
            not no_test,
            operating_point,
            ood_percentile=None if no_ood else ood_percentile,
        )
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(
        f"wrote {out}: {spec.name} {spec.version}, operating points "
        + ", ".join(f"{k}={v:.4f}" for k, v in spec.operating_points.items())
    )
    for subset, s in spec.evaluation.get("subsets", {}).items():
        if "acer" in s:
            click.echo(
                f"  {subset:<14} test ACER {s['acer']:.2%}  EER {s['eer']:.2%}  AUC {s['auc']:.4f}"
            )


def _export_triton(repo: Path, model: Path | None, name: str, max_batch: int, gpus: int) -> None:
    from models.triton import write_repository

    if model is None:
        from service.settings import Settings

        model = Settings().model_path
    try:
        model_dir = write_repository(model, repo, name, max_batch_size=max_batch, gpus=gpus)
    except (ValueError, OSError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"wrote Triton model repository {repo}: {model_dir.name}/config.pbtxt, 1/model.onnx")


@click.command("quantize")
@click.option(
    "--model",
    "model_path",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Exported (float) ONNX model.",
)
@click.option(
    "--data",
    required=True,
    type=click.Path(exists=True, file_okay=False),
    help="Data root: train crops calibrate the int8 ranges, dev crops the operating points.",
)
@click.option("--protocol", default="combined", show_default=True)
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="INT8 ONNX file to write.",
)
@click.option("--samples", default=256, show_default=True, help="Calibration crops.")
def quantize_command(model_path: Path, data: str, protocol: str, out: Path, samples: int) -> None:
    """INT8 (static, QDQ) copy of a model for the CPU; compare both with `liveness eval`."""
    from models.quantize import quantize

    if out.resolve() == model_path.resolve():
        raise click.BadParameter("write the int8 model next to the float one", param_hint="--out")
    info = quantize(model_path, out, data, protocol, samples)
    click.echo(
        f"wrote {out} ({info['bytes']['int8'] / 1e6:.1f} MB; "
        f"float {info['bytes']['float'] / 1e6:.1f} MB); "
        f"operating points recalibrated on {protocol}/dev. Compare: liveness eval --model "
        f"{model_path} --model {out} --data {data} --protocol {protocol}"
    )


@click.command("checkpoints")
@click.argument("model", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--out",
    required=True,
    type=click.Path(file_okay=False),
    help="Folder for the checkpoints (OUT/member-K/checkpoint.pt for an ensemble).",
)
def checkpoints(model: str, out: str) -> None:
    """Rebuild training checkpoints from an exported MODEL (e.g. the bundled one) to
    fine-tune it: 'liveness train --init OUT/member-0/checkpoint.pt --freeze-batchnorm'.

    Batch norms are folded into the exported convolutions; the rebuilt networks reproduce
    the file's scores (checked with ONNX Runtime before writing) and train with their
    batch norms frozen."""
    from models.from_onnx import RecoveryError, checkpoints_from_onnx

    try:
        paths = checkpoints_from_onnx(model, out)
    except RecoveryError as exc:
        raise click.ClickException(str(exc)) from None
    for path in paths:
        click.echo(f"checkpoint: {path}")
