"""The `mlops` command line dispatches lazily: only the chosen subcommand's module loads."""

import subprocess
import sys

import pytest

from mlops_platform import cli


def test_help_lists_every_subcommand_without_importing_heavy_modules():
    probe = (
        "import sys, contextlib, io\n"
        "from mlops_platform import cli\n"
        "with contextlib.redirect_stdout(io.StringIO()) as out:\n"
        "    try: cli.main(['--help'])\n"
        "    except SystemExit: pass\n"
        "print(out.getvalue())\n"
        "print(sorted(m for m in ('pulumi', 'mlflow', 'kfp', 'sklearn') if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    for name in cli.SUBCOMMANDS:
        assert f"    {name}" in result.stdout
    assert result.stdout.rstrip().endswith("[]")


def test_unknown_subcommand_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as caught:
        cli.main(["deploy"])
    assert caught.value.code == 2
    assert "invalid choice: 'deploy'" in capsys.readouterr().err
