"""Contract 1: the CLI surface. `kernelkit --help`, `--version`, `coverage` and every command's `--help` (COLUMNS=100)
are pinned as text: the set of commands, their options, metavars and defaults must not change."""

from __future__ import annotations

import json

import pytest

from contract_checks import available, check_golden, golden_paths
from contract_support import GOLDEN, help_runs, parse_commands


@pytest.mark.parametrize("path", golden_paths("cli/"))
def test_cli_text_is_unchanged(contract, path):
    check_golden(contract, path)


def test_every_command_answers_help(contract):
    runs = available(help_runs, contract)
    pinned = json.loads((GOLDEN / "cli" / "commands.json").read_text())["commands"]
    assert parse_commands(runs["kernelkit"].stdout) == pinned
    for command in pinned:
        run = runs[command]
        assert run.code == 0 and run.stderr == "", f"`kernelkit {command} --help`: exit {run.code}\n{run.stderr}"
        assert run.stdout.startswith(f"usage: kernelkit {command} "), run.stdout[:200]
