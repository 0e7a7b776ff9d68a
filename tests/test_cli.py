import subprocess
import sys


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "kernelkit", *args], capture_output=True, text=True)


def test_help_lists_commands_and_exits_zero():
    result = run_cli("--help")
    assert result.returncode == 0
    assert "COMMAND" in result.stdout


def test_unknown_command_is_a_usage_error():
    result = run_cli("no-such-command")
    assert result.returncode == 2
    assert "invalid choice" in result.stderr


def test_every_command_has_help():
    from kernelkit.cli import _commands

    for module in _commands():
        result = run_cli(module.NAME, "--help")
        assert result.returncode == 0, (module.NAME, result.stderr)
        assert "usage:" in result.stdout
