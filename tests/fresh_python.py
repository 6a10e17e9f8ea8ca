"""Run a snippet in a fresh interpreter that imports this checkout's moodscape, bounded in time."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
TIMEOUT = 120


def run_python(code: str, *args) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter; fail the test if it blocks for ``TIMEOUT`` seconds."""
    env = {**os.environ, "PYTHONPATH": str(SRC), "NUMBA_CPU_NAME": "generic"}
    try:
        return subprocess.run([sys.executable, "-c", textwrap.dedent(code), *map(str, args)], env=env,
                              capture_output=True, text=True, timeout=TIMEOUT)
    except subprocess.TimeoutExpired as expired:
        pytest.fail(f"blocked for {TIMEOUT} s (a FIFO was opened for reading?); output so far: {expired.output!r}")
