"""The `liveness` console script: lazy subcommands, readable help."""

from __future__ import annotations

import subprocess
import sys

from click.testing import CliRunner

from service.cli import SUBCOMMANDS, main


def test_help_lists_every_subcommand_without_importing_torch() -> None:
    code = (
        "import sys; from click.testing import CliRunner; from service.cli import main;"
        "r = CliRunner().invoke(main, ['--help']); print(r.output);"
        "assert 'torch' not in sys.modules, 'torch imported by --help'"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    for name in SUBCOMMANDS:
        assert name in out.stdout


def test_unknown_subcommand_is_a_usage_error() -> None:
    result = CliRunner().invoke(main, ["frobnicate"])
    assert result.exit_code == 2
    assert "No such command" in result.output
