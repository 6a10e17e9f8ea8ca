"""Run moodscape commands in-process, as a user would type them."""

from typer.testing import CliRunner

from moodscape.cli import app


def invoke(*args):
    """Run ``moodscape ARGS...`` and return the click result (output, exit_code)."""
    return CliRunner().invoke(app, [str(arg) for arg in args], catch_exceptions=False)


def one_line_error(result) -> str:
    """The error line of a failed command, after checking it failed cleanly: status 2, one line ``error: ...``."""
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith("error:"), result.output
    return lines[0]
