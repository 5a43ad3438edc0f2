"""The `tokenclean` command: every command's help reads as plain text, `--version`, and a light import
(torch is what made `--help` take 7-9 s; without it `tokenclean --help` takes about 0.1 s)."""

import subprocess
import sys

import pytest

from tokenclean import __version__
from tokenclean.cli.main import COMMANDS, main


@pytest.mark.parametrize("command", [c.__name__.rsplit(".", 1)[-1] for c in COMMANDS])
def test_each_command_s_help_is_plain_text(command, capsys):
    with pytest.raises(SystemExit) as done:
        main([command, "--help"])
    out = capsys.readouterr().out
    assert done.value.code == 0 and f"tokenclean {command}" in out
    assert "``" not in out, "reST double backticks shown raw"


def test_version_and_examples(capsys):
    with pytest.raises(SystemExit):
        main(["--version"])
    assert capsys.readouterr().out.strip() == f"tokenclean {__version__}"
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "examples:" in capsys.readouterr().out


def test_the_command_line_imports_no_torch():
    code = "import sys, tokenclean.cli.main; print(sorted({'torch', 'transformers', 'dvc'} & set(sys.modules)))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "[]"
