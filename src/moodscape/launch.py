"""How this process was started: alone, or as one of the processes ``torchrun`` started.

Torch-free, so that the CLI can ask before it decides whether to import torch.
"""

from __future__ import annotations

import os


def under_torchrun() -> bool:
    """Whether this process was started by ``torchrun`` (which sets ``LOCAL_RANK`` and ``WORLD_SIZE``)."""
    return "LOCAL_RANK" in os.environ and "WORLD_SIZE" in os.environ
