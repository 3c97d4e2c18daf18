"""``liveness predict``: score one capture without a server.

The answer is the JSON body ``POST /liveness`` gives for the same files and options (built
by :class:`service.oneshot.LocalScorer`, the API's own decoder, pipeline, policy and
response schema), or a short table when stdout is a terminal. Settings come from the same
``LIVENESS_*`` environment as ``liveness serve``. Bad input (a missing file, an image that
does not decode, modalities of different sizes) is one line on stderr and exit code 2.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

import click

logger = logging.getLogger(__name__)

#: Exit code of bad input (the same as a command-line usage error).
EXIT_BAD_INPUT = 2


class BadInput(click.ClickException):
    """One line on stderr and exit code 2."""

    exit_code = EXIT_BAD_INPUT


def _table(body: dict[str, Any]) -> str:
    model = body["model"]
    op = body["operating_point"]
    used = "+".join(body["modalities_used"]) or "none"
    received = "+".join(body["modalities_received"]) or "none"
    lines = [
        f"model {model['name']} {model['version']} ({model['sha256'][:12]}), modalities used "
        f"{used} (received {received}), operating point {op['name']} "
        f"(threshold {op['threshold']:.4f} ± {op['uncertain_margin']:.2f}), scoring "
        f"{body['scoring']}"
    ]
    if not body["faces"]:
        reasons = ", ".join(body["reasons"]) or "none"
        lines.append(f"no face scored (reasons: {reasons})")
        return "\n".join(lines)
    lines.append(f"{'face':<5}{'decision':<11}{'score':>7}  {'box (x1 y1 x2 y2)':<24}reasons")
    for i, face in enumerate(body["faces"], 1):
        score = "-" if face["score"] is None else f"{face['score']:.3f}"
        box = " ".join(f"{v:.0f}" for v in face["box"])
        reasons = ", ".join(face["reasons"]) or "-"
        lines.append(f"{i:<5}{face['decision']:<11}{score:>7}  {box:<24}{reasons}")
    if body["reasons"]:
        lines.append("frame reasons: " + ", ".join(body["reasons"]))
    return "\n".join(lines)


def _path_option(name: str, help_text: str) -> Any:
    # Existence is checked by the command, so that a missing file is one line with exit 2
    # (click's own check prints usage lines first).
    return click.option(
        f"--{name}", name, type=click.Path(path_type=Path), default=None, help=help_text
    )


@click.command("predict")
@click.argument("image", required=False, type=click.Path(path_type=Path))
@_path_option("depth", "Registered depth image: 16-bit PNG or .npy (units of --depth-scale).")
@_path_option("ir", "Registered IR image: PNG/JPEG 8-bit, 16-bit PNG or .npy.")
@click.option(
    "--depth-scale",
    type=float,
    default=0.001,
    show_default=True,
    help="Metres per depth unit (RealSense z16: 0.001).",
)
@click.option("--cropped", is_flag=True, help="The images are one aligned face crop.")
@click.option("--max-faces", type=int, default=None, help="Faces analysed at most.")
@click.option(
    "--operating-point", default=None, help="Operating point name (default: the model's)."
)
@click.option(
    "--model",
    "model_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="ONNX model [env LIVENESS_MODEL_PATH, the bundled model].",
)
@click.option(
    "--json/--table",
    "as_json",
    default=None,
    help="Print the API's JSON body, or a table [default: a table on a terminal, JSON otherwise].",
)
def predict(
    image: Path | None,
    depth: Path | None,
    ir: Path | None,
    depth_scale: float,
    cropped: bool,
    max_faces: int | None,
    operating_point: str | None,
    model_path: Path | None,
    as_json: bool | None,
) -> None:
    """Score the faces of IMAGE (RGB, PNG/JPEG) and/or --depth/--ir, without a server.

    Prints the same JSON as POST /liveness for the same files. Exit code 2 on bad input.
    """
    from service.cli import log_level_option
    from service.oneshot import InvalidInputError, LocalScorer, read_image_input
    from service.settings import SettingsError, load_settings

    if log_level_option(click.get_current_context()) is None:
        # A one-shot answer, not a service: start-up lines only with --log-level INFO.
        logging.getLogger().setLevel(logging.WARNING)
    given = {"rgb": image, "depth": depth, "ir": ir}
    if not any(v is not None for v in given.values()):
        raise BadInput("give an RGB image (liveness predict photo.jpg) and/or --depth / --ir")
    try:
        files = {m: read_image_input(m, p) for m, p in given.items() if p is not None}
    except InvalidInputError as exc:
        raise BadInput(exc.detail) from None
    try:
        settings = load_settings(**({"model_path": model_path} if model_path else {}))
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None
    from service.engine import ModelLoadError

    try:
        scorer = LocalScorer(settings)
    except ModelLoadError as exc:
        raise click.ClickException(str(exc)) from None
    except InvalidInputError as exc:
        raise click.ClickException(exc.detail) from None
    try:
        response = scorer.score(
            files,
            depth_scale=depth_scale,
            cropped=cropped,
            max_faces=max_faces,
            operating_point=operating_point,
        )
    except InvalidInputError as exc:
        raise BadInput(exc.detail) from None
    finally:
        scorer.close()
    body = response.model_dump(mode="json")
    if as_json is None:
        as_json = not sys.stdout.isatty()
    click.echo(json.dumps(body, indent=2) if as_json else _table(body))
