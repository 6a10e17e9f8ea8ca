"""Run moodscape commands in-process, as a user would type them."""

from typer.testing import CliRunner

from moodscape.cli import app


def invoke(*args):
    """Run ``moodscape ARGS...`` and return the click result (output, exit_code)."""
    return CliRunner().invoke(app, [str(arg) for arg in args], catch_exceptions=False)
